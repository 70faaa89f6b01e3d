"""Classification metrics (accuracy, macro-F1, confusion matrix) and the two baselines every strategy must beat."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.rates import search_rate
from ..core.stats import macro_f1


def classification_metrics(labels: Sequence[int], preds: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro-F1 (every class weighs the same) of predictions against labels."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    return {"accuracy": float((labels == preds).mean()), "macro_f1": macro_f1(labels, preds)}


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
                   test_labels: Sequence[int], seed: int = 0, balanced: bool = False, c: float = 1.0) -> dict:
    """TF-IDF + logistic regression (`balanced`: class-weighted; `c`: inverse L2 strength, scikit-learn's default 1):
    accuracy, macro-F1, the predictions and the seconds it took."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    start = time.perf_counter()
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000, random_state=seed, C=c,
                                                               class_weight="balanced" if balanced else None))
    pipe.fit(list(train_texts), list(train_labels))
    preds = pipe.predict(list(test_texts))
    return classification_metrics(test_labels, preds) | {"preds": [int(p) for p in preds],
                                                         "seconds": time.perf_counter() - start}


def tfidf_tuned(dataset, train_split, seed: int = 0, balanced: bool = True) -> dict:
    """TF-IDF + logistic regression with its regularisation C chosen on the validation split (a bracketed grid of
    factors of 3 around 1, the course's one rate rule), then scored once on test: test scores, predictions, C and
    the search table."""
    def validation_f1(c: float) -> float:
        return tfidf_baseline(train_split["text"], train_split["label"], dataset["validation"]["text"],
                              dataset["validation"]["label"], seed, balanced, c)["macro_f1"]

    search = search_rate(validation_f1, 1.0, factor=3.0, candidates=3, extensions=4).rename(columns={"lr": "C"})
    c = float(search.loc[search["chosen"], "C"].iloc[0])
    test = tfidf_baseline(train_split["text"], train_split["label"], dataset["test"]["text"], dataset["test"]["label"],
                          seed, balanced, c)
    return test | {"C": c, "search": search}


def predicts_one_class(preds: Sequence[int]) -> bool:
    """True when a model predicts the same class for every input (it has not learned anything useful)."""
    return len(set(np.asarray(preds).tolist())) <= 1


@dataclass(frozen=True)
class TrainingCheck:
    """Did a classifier train? Only if it predicts more than one class and its macro-F1 beats both always guessing
    the majority class and guessing at random (the 95th percentile of random guesses drawn with the training
    classes' frequencies): a run can end "ok" having learned nothing (peft issue 2642)."""
    name: str
    macro_f1: float
    majority_macro_f1: float
    chance_macro_f1: float  # the 95th percentile of macro-F1 for random guesses with the training frequencies
    classes_predicted: int
    classes: int

    @property
    def trained(self) -> bool:
        """True when the predictions cover more than one class and beat the majority class and chance."""
        return self.classes_predicted > 1 and self.macro_f1 > max(self.majority_macro_f1, self.chance_macro_f1)

    def line(self) -> str:
        """One unmistakable line: trained, or COLLAPSED with the likely causes and what to change."""
        bar = max(self.majority_macro_f1, self.chance_macro_f1)
        if self.trained:
            return (f"did it train? yes: {self.name} predicts {self.classes_predicted} of {self.classes} classes, "
                    f"macro-F1 {self.macro_f1:.3f} > {bar:.3f} (majority class {self.majority_macro_f1:.3f}, random "
                    f"guessing's 95th percentile {self.chance_macro_f1:.3f})")
        what = ("one class for every text" if self.classes_predicted <= 1
                else f"{self.classes_predicted} of {self.classes} classes")
        return (f"COLLAPSED: {self.name} predicts {what} and its macro-F1 {self.macro_f1:.3f} does not beat "
                f"{bar:.3f} (majority class {self.majority_macro_f1:.3f}, random guessing's 95th percentile "
                f"{self.chance_macro_f1:.3f}): it did not learn the task. Likely causes: a learning rate chosen for "
                f"other data or too small (-p lr, or run the rate search), too few steps (-p epochs), or unbalanced "
                f"classes (-p class_weights balanced)")

    def to_json(self) -> dict:
        """The check as stored in a result JSON (`training_checks`), `trained` included."""
        return asdict(self) | {"trained": self.trained}


def chance_macro_f1(labels: Sequence[int], train_labels: Sequence[int], draws: int = 1000, seed: int = 0,
                    quantile: float = 0.95) -> float:
    """The `quantile` of macro-F1 over random guesses drawn with the training classes' frequencies (vectorised)."""
    y = np.asarray(labels)
    classes = np.unique(np.concatenate([y, np.asarray(train_labels)]))
    freq = np.array([np.mean(np.asarray(train_labels) == c) for c in classes])
    guesses = np.random.default_rng(seed).choice(classes, size=(draws, len(y)), p=freq / freq.sum())
    scores = []
    for c in np.unique(y):  # macro-F1 over the classes present in the labels, as classification_metrics averages
        tp = ((guesses == c) & (y == c)).sum(1)
        predicted, actual = (guesses == c).sum(1), (y == c).sum()
        scores.append(np.where(predicted + actual > 0, 2 * tp / np.maximum(predicted + actual, 1), 0.0))
    return float(np.quantile(np.mean(scores, axis=0), quantile))


def training_check(name: str, labels: Sequence[int], preds: Sequence[int], train_labels: Sequence[int]
                   ) -> TrainingCheck:
    """The did-it-train check of predictions against labels, with the majority class and chance from the
    training labels."""
    majority = majority_baseline(train_labels, labels)["macro_f1"]
    return TrainingCheck(name, classification_metrics(labels, preds)["macro_f1"], majority,
                         chance_macro_f1(labels, train_labels), len(set(np.asarray(preds).tolist())),
                         len(set(np.asarray(labels).tolist())))
