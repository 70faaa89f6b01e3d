"""Hard prompts with SmolLM2: the generated template × verbalizer space, one-pass scoring (= word-by-word scoring,
with and without the shared few-shot prefix), the search and the evaluation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from companion.core.errors import CourseError
from companion.core.stats import bootstrap_score, macro_f1, paired_bootstrap
from companion.engine.metrics import classification_metrics
from companion.lessons.n08_hard_prompts import (FRAMINGS, MEDICAL_VERBALIZER, QUESTIONS, admissible,
                                               build_prompt, domain_words, first_token_ids, hard_prompt_eval,
                                               label_logprobs, next_token_logprobs, pick_demos,
                                               search_spread, shared_prefix, template_search, template_space,
                                               verbalizer_for, verbalizer_sets, winners_curse)

MEDICAL_NAMES = ["neoplasms", "digestive system diseases", "nervous system diseases", "cardiovascular diseases",
                 "general pathological conditions"]
HEADLINES = ["Sports", "Business news", "science"]


def test_template_space_is_every_framing_times_every_question():
    plain = template_space(HEADLINES)
    assert len(plain) == (len(FRAMINGS) - 1) * len(QUESTIONS)  # no noun: the noun framing is left out
    assert all(t.count("{text}") == 1 for t in plain.values())
    assert not any("Abstract" in t for t in plain.values())
    assert "Sports, Business news, science" in plain["text / choice"]
    with_noun = template_space(HEADLINES, noun="Headline")
    assert len(with_noun) == len(FRAMINGS) * len(QUESTIONS)
    assert with_noun["noun / topic"].format(text="X") == "Headline: X\nTopic:"
    braces = template_space(["a{b}", "c"])  # braces in label names stay literal
    assert "a{b}" in braces["bare / choice"].format(text="t")


def test_verbalizer_sets_derive_from_the_label_names():
    sets = verbalizer_sets(HEADLINES)
    assert sets["first word"] == ["sports", "business", "science"]
    assert sets["last word"] == ["sports", "news", "science"]
    assert sets["First word"] == ["Sports", "Business", "Science"]
    assert "longest word" not in sets  # the same words as "first word": kept once
    medical = verbalizer_sets(MEDICAL_NAMES, {"domain words": domain_words(MEDICAL_NAMES)})
    assert medical["domain words"] == MEDICAL_VERBALIZER
    assert "last word" not in medical  # "diseases" names three classes: dropped
    assert domain_words(HEADLINES) is None and verbalizer_for(HEADLINES) == ["sports", "business", "science"]
    assert verbalizer_for(MEDICAL_NAMES) == MEDICAL_VERBALIZER


def test_space_has_at_least_twenty_combinations_for_medical_and_other_data(smollm2):
    _, tokenizer = smollm2
    for names, noun, extra in ((MEDICAL_NAMES, "Abstract", {"domain words": MEDICAL_VERBALIZER}),
                               (HEADLINES, None, None)):
        combos = len(template_space(names, noun)) * len(admissible(tokenizer, verbalizer_sets(names, extra)))
        assert combos >= 20, (names, combos)


def test_admissible_drops_sets_whose_words_share_a_first_token(smollm2):
    _, tokenizer = smollm2
    assert first_token_ids(tokenizer, ["neoplasms"]) == [tokenizer(" ne", add_special_tokens=False)["input_ids"][0]]
    kept = admissible(tokenizer, {"clash": ["neoplasms", "ne"], "fine": ["cancer", "heart"]})
    assert list(kept) == ["fine"]
    with pytest.raises(CourseError, match="same token"):
        admissible(tokenizer, {"clash": ["neoplasms", "ne"]})


def test_shared_prefix():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix([[1, 2], [1, 2, 3]]) == 1  # at least one token of each list stays after the prefix
    assert shared_prefix([[1, 2]]) == 0


@pytest.mark.slow
def test_one_pass_scoring_equals_word_by_word_scoring(smollm2):
    model, tokenizer = smollm2
    words = ["heart", "cancer", "brain", "neoplasms"]
    texts = ["The patient had a heart attack after surgery.", "Tumour growth.",
             "Seizures and headache in children were common in the trial of the new drug."]
    demos = [("A tumour of the lung was removed in the clinic.", "cancer"), ("Stroke patients improved.", "brain")]
    for shown in ((), demos):  # zero-shot (no shared prefix) and few-shot (shared prefix run once, cached)
        prompts = [build_prompt("Text: {text}\nTopic:", t, shown) for t in texts]
        if shown:
            assert shared_prefix([tokenizer(p)["input_ids"] for p in prompts]) >= 16
        one_pass = next_token_logprobs(model, tokenizer, prompts, first_token_ids(tokenizer, words), batch_size=2)
        per_word = label_logprobs(model, tokenizer, prompts, words, first_token_only=True)
        assert one_pass.shape == (3, 4) and torch.allclose(one_pass, per_word, atol=1e-4)
    single = label_logprobs(model, tokenizer, prompts[:1], ["heart", "neoplasms"])  # whole words: tokens summed
    assert single[0, 0] == pytest.approx(float(per_word[0, 0]), abs=1e-4) and single[0, 1] < per_word[0, 3]


def test_few_shot_prompt_layout():
    demos = pick_demos(["t0", "t1", "t2"], [0, 1, 0], ["a", "b"], per_class=1, seed=0)
    assert sorted(w for _, w in demos) == ["a", "b"]
    prompt = build_prompt("X: {text}\nY:", "query one two", [("first", "a")], words=2)
    assert prompt == "X: first\nY: a\n\nX: query one …\nY:"


def test_template_search_scores_every_combination_once_per_template(smollm2, medical):
    model, tokenizer = smollm2
    texts, labels = medical["validation"]["text"][:4], medical["validation"]["label"][:4]
    templates = dict(list(template_space(MEDICAL_NAMES, "Abstract").items())[:3])
    verbalizers = admissible(tokenizer, verbalizer_sets(MEDICAL_NAMES, {"domain words": MEDICAL_VERBALIZER}))
    table = template_search(model, tokenizer, texts, labels, templates, verbalizers, words=8)
    assert len(table) == len(templates) * len(verbalizers) and table["macro_f1"].is_monotonic_decreasing
    row = table[(table["template"] == "text / topic") & (table["verbalizer"] == "domain words")].iloc[0]
    alone = hard_prompt_eval(model, tokenizer, texts, labels, templates["text / topic"], MEDICAL_VERBALIZER, words=8)
    assert row["macro_f1"] == pytest.approx(alone["macro_f1"]) and alone["texts"] == 4 and alone["seconds"] > 0
    spread = search_spread(table)
    assert spread["combinations"] == len(table) and spread["worst"] <= spread["median"] <= spread["best"]


def test_fast_macro_f1_equals_the_engines_macro_f1():
    rng = np.random.default_rng(0)
    for n, classes in ((3, 2), (40, 5), (399, 5), (25, 3)):
        for _ in range(50):
            y, p = rng.integers(0, classes, n), rng.integers(0, classes - 1, n)  # a class never predicted, too
            assert macro_f1(y, p) == pytest.approx(classification_metrics(y, p)["macro_f1"], abs=1e-12)
    assert macro_f1([0, 0, 1], [2, 2, 2]) == classification_metrics([0, 0, 1], [2, 2, 2])["macro_f1"] == 0.0


def test_bootstrap_intervals_of_one_run_and_of_a_paired_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    good = np.where(rng.random(300) < 0.8, y, rng.integers(0, 4, 300))  # right 80 % of the time (and by chance)
    poor = np.where(rng.random(300) < 0.3, y, rng.integers(0, 4, 300))
    one = bootstrap_score(y, good, seed=0)
    assert one.low < one.mean < one.high and one.mean == pytest.approx(macro_f1(y, good)) and one.n == 300
    assert bootstrap_score(y, good, seed=0) == one  # seeded
    difference = paired_bootstrap(y, good, poor, macro_f1, seed=0)
    assert difference.excludes_zero() and difference.mean == pytest.approx(macro_f1(y, good) - macro_f1(y, poor))
    assert not paired_bootstrap(y, good, good.copy(), macro_f1, seed=0).excludes_zero()  # identical: 0 difference


def test_winners_curse_puts_validation_and_test_side_by_side():
    validation = pd.DataFrame({"template": ["a", "b", "a", "c"], "verbalizer": ["x", "x", "y", "y"],
                               "macro_f1": [0.60, 0.55, 0.50, 0.20]})
    test = pd.DataFrame({"template": ["a", "a", "b"], "verbalizer": ["x", "y", "x"], "macro_f1": [0.40, 0.45, 0.50]})
    table = winners_curse(validation, test, top=3)
    assert list(table["validation rank"]) == [1, 2, 3] and list(table["test rank"]) == [3, 1, 2]
    assert table["test − validation"].tolist() == pytest.approx([-0.20, -0.05, -0.05])
    with pytest.raises(CourseError, match="lacks some of the best"):
        winners_curse(validation, test, top=4)  # c / y was never scored on test
