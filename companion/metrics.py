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
                   test_labels: Sequence[int], seed: int = 0, max_features: int = 50_000, c: float = 4.0
                   ) -> dict[str, float]:
    """TF-IDF word uni+bigrams + logistic regression (balanced classes): scores on the test set and seconds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=max_features),
                         LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed))
    pipe.fit(list(train_texts), list(train_labels))
    preds = pipe.predict(list(test_texts))
    return classification_metrics(test_labels, preds) | {"seconds": time.perf_counter() - start}


def predicts_one_class(preds: Sequence[int]) -> bool:
    """True when a model predicts the same class for every input (it has not learned anything useful)."""
    return len(set(np.asarray(preds).tolist())) <= 1
