"""Hard prompts with SmolLM2: label-word log-probabilities by hand, verbalizer tokens, template search."""
from __future__ import annotations

import pytest
import torch

from companion.prompting import (MEDICAL_VERBALIZER, TEMPLATES, build_prompt, hard_prompt_eval, label_logprobs,
                                 pick_demos, template_search, verbalizer_for, word_token_ids)


def test_medical_verbalizer_words_are_single_tokens(smollm2):
    _, tokenizer = smollm2
    assert all(len(ids) == 1 for ids in word_token_ids(tokenizer, MEDICAL_VERBALIZER))
    assert verbalizer_for(["Neoplasms", "b", "c", "d", "e"]) == MEDICAL_VERBALIZER
    assert verbalizer_for(["positive review", "negative review"]) == ["positive", "negative"]


def test_label_logprobs_match_the_model_by_hand(smollm2):
    model, tokenizer = smollm2
    prompts = ["The patient had a heart attack. Topic:", "Tumour. Topic:"]
    scores = label_logprobs(model, tokenizer, prompts, ["heart", "cancer"])
    with torch.no_grad():
        ids = tokenizer(prompts[0], return_tensors="pt")
        logp = model(**ids).logits[0, -1].log_softmax(-1)
    heart = tokenizer(" heart", add_special_tokens=False)["input_ids"][0]
    assert scores.shape == (2, 2) and scores[0, 0] == pytest.approx(float(logp[heart]), abs=1e-4)
    multi = label_logprobs(model, tokenizer, prompts[:1], ["heart", "cardiovascular disease"])  # multi-token path
    assert multi[0, 0] == pytest.approx(float(logp[heart]), abs=1e-4) and multi[0, 1] < multi[0, 0] + 5


def test_few_shot_prompt_layout():
    demos = pick_demos(["t0", "t1", "t2"], [0, 1, 0], ["a", "b"], per_class=1, seed=0)
    assert sorted(w for _, w in demos) == ["a", "b"]
    prompt = build_prompt("X: {text}\nY:", "query", [("first", "a")])
    assert prompt == "X: first\nY: a\n\nX: query\nY:"


def test_template_search_and_eval(smollm2, medical):
    model, tokenizer = smollm2
    texts, labels = medical["validation"]["text"][:4], medical["validation"]["label"][:4]
    table = template_search(model, tokenizer, texts, labels, TEMPLATES, MEDICAL_VERBALIZER, words=8)
    assert set(table["template"]) == set(TEMPLATES) and table["macro_f1"].is_monotonic_decreasing
    out = hard_prompt_eval(model, tokenizer, texts, labels, TEMPLATES["topic"], MEDICAL_VERBALIZER, words=8)
    assert len(out["preds"]) == 4 and 0 <= out["accuracy"] <= 1
