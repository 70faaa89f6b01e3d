"""Text data augmentation for the domain task (notebook 05): EDA-style token operations (Wei & Zou 2019) and a
with/without-augmentation experiment with a fast classifier on small training subsets."""
from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..core.errors import CourseError
from ..engine.metrics import classification_metrics

OPS = ("swap", "delete", "insert")


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    """Swap two random positions, n times (EDA's random swap)."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    """Drop each word with probability p, but never return an empty text (EDA's random deletion)."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() >= p]
    return kept if kept else [rng.choice(words)]


def random_insertion(words: list[str], n: int, rng: random.Random, pool: Sequence[str] | None = None) -> list[str]:
    """Insert n words at random positions; they come from `pool` (e.g. synonyms) or from the text itself.
    EDA inserts WordNet synonyms; without a thesaurus offline we insert words of the same text (or a given pool)."""
    out = list(words)
    source = list(pool) if pool else list(words)
    if not source:
        return out
    for _ in range(n):
        out.insert(rng.randint(0, len(out)), rng.choice(source))
    return out


def eda(text: str, alpha: float = 0.1, n_aug: int = 4, rng: random.Random | None = None,
        ops: Sequence[str] = OPS) -> list[str]:
    """`n_aug` variants of a text, each made by one EDA operation (chosen in turn) that changes ~alpha of its words."""
    unknown = [op for op in ops if op not in OPS]
    if unknown or not ops:
        raise CourseError(f"unknown augmentation op(s) {unknown}: use some of {', '.join(OPS)}")
    if not 0 <= alpha < 1:
        raise CourseError(f"alpha={alpha} must be in [0, 1): it is the share of words changed")
    rng = rng or random.Random(0)
    words = text.split()
    n_changed = max(1, int(alpha * len(words)))
    variants = []
    for k in range(n_aug):
        op = ops[k % len(ops)]
        if op == "swap":
            new = random_swap(words, n_changed, rng)
        elif op == "delete":
            new = random_deletion(words, alpha, rng)
        else:
            new = random_insertion(words, n_changed, rng)
        variants.append(" ".join(new))
    return variants


def augment(texts: Sequence[str], labels: Sequence[int], n_aug: int = 4, alpha: float = 0.1, seed: int = 0,
            ops: Sequence[str] = OPS) -> tuple[list[str], list[int]]:
    """The originals followed by n_aug EDA variants of each text, labels copied (a seeded, repeatable run)."""
    rng = random.Random(seed)
    out_texts, out_labels = list(texts), list(labels)
    for text, label in zip(texts, labels):
        variants = eda(text, alpha, n_aug, rng, ops)
        out_texts += variants
        out_labels += [label] * len(variants)
    return out_texts, out_labels


def per_class_subset(labels: Sequence[int], per_class: int, seed: int = 0) -> list[int]:
    """Indices of a seeded, class-balanced subset: up to `per_class` rows of each label."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    chosen = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        chosen += rng.choice(rows, size=min(per_class, len(rows)), replace=False).tolist()
    return sorted(chosen)


def tfidf_classifier(seed: int = 0):
    """TF-IDF word uni+bigrams + logistic regression: a fast, strong text classifier for small data."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
                         LogisticRegression(C=10.0, max_iter=3000, random_state=seed))


def augmentation_experiment(train_texts: Sequence[str], train_labels: Sequence[int], val_texts: Sequence[str],
                            val_labels: Sequence[int], per_class: Sequence[int] = (10, 40), seeds: Sequence[int] = (0,),
                            n_aug: int = 4, alpha: float = 0.1, make_classifier: Callable = tfidf_classifier,
                            progress: bool = False) -> pd.DataFrame:
    """For each training size and seed, train the classifier on the subset with and without EDA; validation scores."""
    from tqdm.auto import tqdm

    rows = []
    grid = [(k, s) for k in per_class for s in seeds]
    for k, s in tqdm(grid, disable=not progress, desc="augmentation", mininterval=5):
        idx = per_class_subset(train_labels, k, seed=s)
        texts, labels = [train_texts[i] for i in idx], [int(train_labels[i]) for i in idx]
        for augmented in (False, True):
            x, y = augment(texts, labels, n_aug, alpha, seed=s) if augmented else (texts, labels)
            clf = make_classifier(seed=s).fit(x, y)
            scores = classification_metrics(list(val_labels), clf.predict(list(val_texts)))
            rows.append({"per_class": k, "seed": s, "augmented": augmented, "train_rows": len(x), **scores})
    return pd.DataFrame(rows)


def augmentation_gain(table: pd.DataFrame, metric: str = "macro_f1") -> pd.DataFrame:
    """Mean score with and without augmentation per training size, and the gain (with − without)."""
    wide = table.pivot_table(index="per_class", columns="augmented", values=metric, aggfunc="mean")
    wide.columns = ["without" if not c else "with EDA" for c in wide.columns]
    return wide.assign(gain=wide["with EDA"] - wide["without"])


def augmentation_vs_more_data(table: pd.DataFrame, n_aug: int, metric: str = "macro_f1") -> pd.DataFrame:
    """Paired by seed, per training size k: EDA's gain at k (k originals + n_aug·k copies vs k originals), and EDA
    against the same number of *real* examples ((1 + n_aug)·k originals), where the table has that size."""
    from ..core.stats import paired_difference

    wide = table.pivot_table(index="seed", columns=["augmented", "per_class"], values=metric)
    rows = []
    for k in sorted(table["per_class"].unique()):
        row = {"per_class": k, "gain": paired_difference(wide[(True, k)], wide[(False, k)])}
        if (False, (1 + n_aug) * k) in wide:
            row["vs_real"] = paired_difference(wide[(True, k)], wide[(False, (1 + n_aug) * k)])
        rows.append(row)
    out = []
    for row in rows:
        flat = {"per_class": row["per_class"], "eda_gain": row["gain"].mean, "eda_gain_low": row["gain"].low,
                "eda_gain_high": row["gain"].high}
        if "vs_real" in row:
            flat |= {"eda_minus_real": row["vs_real"].mean, "eda_minus_real_low": row["vs_real"].low,
                     "eda_minus_real_high": row["vs_real"].high}
        out.append(flat)
    return pd.DataFrame(out).set_index("per_class")


