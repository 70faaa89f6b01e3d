"""Exercise checks of notebook 00."""
from __future__ import annotations

import pandas as pd
from datasets import DatasetDict

from ..lessons.n00_tour import _words
from . import Verdict, check_close, check_equal, check_prediction, exercise


@exercise("00", "majority_share")
def check_majority_share(answer: float | None, dataset: DatasetDict) -> Verdict:
    """Exercise: the share of the most frequent class in the training split."""
    labels = pd.Series(dataset["train"]["label"])
    expected = labels.value_counts().iloc[0] / len(labels)
    return check_close(answer, expected, "majority_share", "count each label in dataset['train']['label'], "
                       "take the largest count and divide by the number of rows", atol=1e-3)


@exercise("00", "head_params")
def check_head_params(answer: int | None, classifier) -> Verdict:
    """Exercise: how many parameters the new classification head adds (weights + biases)."""
    expected = sum(p.numel() for p in classifier.classifier.parameters())
    return check_equal(answer, expected, "head_params", "the head is one Linear layer: hidden_size × num_labels "
                       "weights plus num_labels biases (hidden_size is in model.config)")


@exercise("00", "subword_count")
def check_subword_count(answer: int | None, tokenizer, word: str) -> Verdict:
    """Exercise: how many subword pieces the tokenizer splits a word into."""
    expected = len(tokenizer.tokenize(word))
    return check_equal(answer, expected, "subword_count", f"call tokenizer.tokenize({word!r}) and count the pieces")


@exercise("00", "most_similar_pair")
def check_most_similar_pair(prediction: tuple[str, str] | None, names: list[str], sentences: list[str],
                            similarity) -> Verdict:
    """Predict-then-measure: which two sentences the encoder finds the most similar (cosine of their embeddings)."""
    pairs = {(names[i], names[j]): float(similarity[i][j]) for i in range(len(names)) for j in range(i + 1, len(names))}
    measured = max(pairs, key=pairs.get)
    shared = {(names[i], names[j]): len(_words(sentences[i]) & _words(sentences[j]))
              for i in range(len(names)) for j in range(i + 1, len(names))}
    listing = " · ".join(f"{a} / {b}: cosine {c:.2f}, {shared[(a, b)]} shared words" for (a, b), c in pairs.items())
    by_words = [pair for pair, n in shared.items() if n == max(shared.values())]
    words = ("shared words alone would have picked it too" if by_words == [measured] else
             "shared words alone could not have picked it")
    explanation = (f"Measured: {listing}. The encoder maps sentences by meaning, so the pair that says the same "
                   f"thing in different words wins; {words}.")
    guess = tuple(sorted(prediction)) if isinstance(prediction, (tuple, list)) and len(prediction) == 2 else prediction
    return check_prediction(guess, tuple(sorted(measured)), "most_similar_pair", explanation)
