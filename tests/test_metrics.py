"""Metrics and baselines against hand-computed values."""
from __future__ import annotations

import pytest

from companion.engine.metrics import classification_metrics, confusion_table, majority_baseline, predicts_one_class, tfidf_baseline


def test_accuracy_and_macro_f1_by_hand():
    labels, preds = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    out = classification_metrics(labels, preds)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1 / (2 / 3 + 1), 0.0]  # per class: p, r from the table
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["macro_f1"] == pytest.approx(sum(f1) / 3)


def test_confusion_table_rows_are_true_classes():
    table = confusion_table([0, 0, 1], [0, 1, 1], ["a", "b"])
    assert table.values.tolist() == [[1, 1], [0, 1]]
    assert list(table.index) == ["true: a", "true: b"]


def test_majority_baseline():
    out = majority_baseline([2, 2, 1], [2, 1, 0, 2])
    assert out["predicted_class"] == 2 and out["accuracy"] == 0.5
    assert out["macro_f1"] == pytest.approx((2 * 0.5 * 1 / 1.5) / 3)


def test_tfidf_baseline_learns_words():
    texts = ["tumour cancer cells", "cancer chemotherapy", "heart artery", "cardiac artery heart"] * 5
    labels = [0, 0, 1, 1] * 5
    out = tfidf_baseline(texts, labels, ["cancer cells", "artery of the heart"], [0, 1])
    assert out["accuracy"] == 1.0 and out["macro_f1"] == 1.0


def test_predicts_one_class():
    assert predicts_one_class([3, 3, 3]) and not predicts_one_class([3, 1, 3])
