"""Classification metrics (accuracy, macro-F1, confusion matrix) and the two baselines every strategy must beat."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd


def classification_metrics(labels: Sequence[int], preds: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro-F1 (every class weighs the same) of predictions against labels."""
    from sklearn.metrics import accuracy_score, f1_score

    labels, preds = np.asarray(labels), np.asarray(preds)
    classes = np.unique(np.concatenate([labels, preds]))
    return {"accuracy": float(accuracy_score(labels, preds)),
            "macro_f1": float(f1_score(labels, preds, average="macro", labels=classes, zero_division=0))}


def confusion_table(labels: Sequence[int], preds: Sequence[int], names: Sequence[str]) -> pd.DataFrame:
    """Confusion matrix as a DataFrame: rows are true classes, columns predicted classes."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(labels, preds, labels=list(range(len(names))))
    return pd.DataFrame(matrix, index=[f"true: {n}" for n in names], columns=[f"pred: {n}" for n in names])


def majority_baseline(train_labels: Sequence[int], test_labels: Sequence[int]) -> dict[str, float]:
    """Always predict the most frequent training class; its scores on the test labels."""
    majority = int(pd.Series(list(train_labels)).value_counts().idxmax())
    out = classification_metrics(test_labels, [majority] * len(test_labels))
    return out | {"predicted_class": majority}


def tfidf_baseline(train_texts: Sequence[str], train_labels: Sequence[int], test_texts: Sequence[str],
                   test_labels: Sequence[int], seed: int = 0, balanced: bool = False) -> dict[str, float]:
    """TF-IDF + logistic regression with scikit-learn defaults (`balanced`: class-weighted, a tuned variant)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000, random_state=seed,
                                                               class_weight="balanced" if balanced else None))
    pipe.fit(list(train_texts), list(train_labels))
    preds = pipe.predict(list(test_texts))
    return classification_metrics(test_labels, preds) | {"seconds": time.perf_counter() - start}


def predicts_one_class(preds: Sequence[int]) -> bool:
    """True when a model predicts the same class for every input (it has not learned anything useful)."""
    return len(set(np.asarray(preds).tolist())) <= 1


def assert_trained(name: str, preds: Sequence[int], macro_f1: float, majority_f1: float, strict: bool = True) -> str:
    """Fail loudly if a model predicts one class only or does not beat the majority baseline (peft issue 2642).

    `strict=False` (tiny smoke runs, which cannot learn) reports the problem instead of raising.
    """
    if not strict:
        try:
            return assert_trained(name, preds, macro_f1, majority_f1)
        except AssertionError as err:
            return f"not enforced in this tiny run: {err}"
    if predicts_one_class(preds):
        raise AssertionError(f"{name} predicts only class {int(np.asarray(preds)[0])} for every input: it did not "
                             f"train. Soft prompts need large learning rates (1e-2…3e-1) and enough steps.")
    if macro_f1 <= majority_f1:
        raise AssertionError(f"{name} macro-F1 {macro_f1:.3f} does not beat the majority class ({majority_f1:.3f})")
    return f"{name}: trained ({len(set(np.asarray(preds).tolist()))} classes predicted, macro-F1 {macro_f1:.3f} > {majority_f1:.3f})"
