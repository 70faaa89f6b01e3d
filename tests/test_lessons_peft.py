"""Notebook 08's soft prompts: multi-task prompts on one frozen MiniLM encoder (data, training through the one
loop, swapping, storage)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from companion import load_model, load_tokenizer
from companion.engine.training import TrainConfig
from companion.lessons.n08_soft_prompts import (TaskPrompt, batches, domain_identification, evaluate_task_prompt, folder_bytes,
                                              train_task_prompt)
from companion.checks.n08 import check_storage_ratio

MEDICAL = [f"Patients with chronic disease {i} received treatment and the tumour responded in the trial."
           for i in range(12)]
GENERAL = [f"The river {i} flows through the old town, past the castle and the market square in the valley."
           for i in range(12)] + ["too short"]


def test_domain_identification_is_balanced_and_short():
    texts, labels = domain_identification(MEDICAL, GENERAL, per_class=5, seed=1, words=6)
    assert len(texts) == 10 and sorted(labels) == [0] * 5 + [1] * 5
    assert all(len(t.split()) <= 6 for t in texts) and "too short" not in texts
    assert domain_identification(MEDICAL, GENERAL, 5, seed=1, words=6) == (texts, labels)  # seeded


def test_batches_pad_and_cover_every_text():
    tok = load_tokenizer("minilm")
    out = batches(tok, ["a", "b c d", "e"], [0, 1, 0], batch_size=2, max_length=8)
    assert [len(b["labels"]) for b in out] == [2, 1]
    assert out[0]["input_ids"].shape == out[0]["attention_mask"].shape


@pytest.fixture(scope="module")
def shared():
    """Two prompt-tuning adapters on one frozen encoder, one task trained a little."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    backbone = load_model("minilm", "encoder")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    config = PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=4)
    model = get_peft_model(backbone, config, adapter_name="a")
    model.add_adapter("b", config)
    return model, backbone, before


@pytest.mark.slow
def test_training_moves_only_the_task_prompt_and_head(shared):
    model, backbone, before = shared
    tok = load_tokenizer("minilm")
    texts, labels = domain_identification(MEDICAL, GENERAL, per_class=8, seed=0)
    torch.manual_seed(0)
    head = nn.Linear(384, 2)
    other = model.prompt_encoder["b"].embedding.weight.detach().clone()
    prompt = model.prompt_encoder["a"].embedding.weight.detach().clone()
    task = TaskPrompt(model, "a", head)
    losses = train_task_prompt(task, tok, texts, labels, TrainConfig(epochs=3, lr=3e-2, batch_size=8, progress=False,
                                                                     mixed_precision="fp32"), max_length=24)
    assert len(losses) == 6 and losses[-1] < losses[0]  # one loss per step: the engine's history
    assert not torch.equal(prompt, model.prompt_encoder["a"].embedding.weight)  # task a's prompt trained
    assert torch.equal(other, model.prompt_encoder["b"].embedding.weight)  # task b's prompt untouched
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())  # frozen backbone
    scores = evaluate_task_prompt(task, tok, texts, labels, max_length=24)
    assert scores["accuracy"] > 0.5 and len(scores["preds"]) == len(texts)
    evaluate_task_prompt(TaskPrompt(model, "b", nn.Linear(384, 3)), tok, texts, [0] * len(texts), max_length=24)
    assert evaluate_task_prompt(task, tok, texts, labels, max_length=24)["preds"] == scores["preds"]


def test_folder_bytes(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 5)
    assert folder_bytes(tmp_path) == 15


def test_storage_ratio_check():
    full, task = 90_000_000, 40_000
    assert check_storage_ratio(2_100, full, task, 7_680, 1_925)  # within 25 % of 2,250
    assert not check_storage_ratio(22_000, full, task, 7_680, 1_925)
    assert not check_storage_ratio(None, full, task, 7_680, 1_925)


def test_task_prompt_reads_a_texts_head_and_tail_like_the_protocol():
    from companion.engine.batches import encode_texts
    from companion.lessons.n08_soft_prompts import encoded

    tok = load_tokenizer("minilm")
    long = " ".join(f"word{i}" for i in range(200))
    rows = encoded(tok, [long, "short text"], [1, 0], max_length=16, truncation="head+tail")
    assert rows[0]["input_ids"] == encode_texts(tok, [long], 16, "head+tail")["input_ids"][0]
    assert len(rows[0]["input_ids"]) == 16
    assert rows[0]["input_ids"] != encoded(tok, [long], [1], max_length=16)[0]["input_ids"]  # head only differs
    out = batches(tok, [long, "short text"], [1, 0], batch_size=2, max_length=16, truncation="head+tail")
    assert out[0]["input_ids"][0].tolist() == rows[0]["input_ids"]
    assert out[0]["attention_mask"][1].sum() == len(rows[1]["input_ids"]) < 16  # the short text padded on the right


def test_task_prompt_trains_under_a_protocol_config_with_class_weights(shared):
    from companion.engine.protocol import protocol

    model, _, _ = shared
    tok = load_tokenizer("minilm")
    texts, labels = domain_identification(MEDICAL, GENERAL, per_class=8, seed=2)
    texts, labels = texts[:12], labels[:12]  # unbalanced on purpose
    config = protocol("smoke").config(3e-2, 0, len(texts), progress=False, epochs=None, max_steps=5)
    assert config.class_weights == "balanced" and config.mixed_precision == "fp32"
    torch.manual_seed(0)
    task = TaskPrompt(model, "b", nn.Linear(384, 2))
    losses = train_task_prompt(task, tok, texts, labels, config, max_length=24, truncation="head+tail")
    assert len(losses) == 5 and all(loss == loss for loss in losses)  # max_steps honoured, finite losses


def test_rate_search_table_reads_new_and_old_tables():
    import pandas as pd

    from companion.lessons.n08_soft_prompts import rate_search_table

    new = pd.DataFrame({"setting": ["full"] * 3 + ["p_tuning"] * 4, "lr": [1e-4, 3e-4, 9e-4, 1e-3, 3e-3, 9e-3, 2.7e-2],
                        "val_macro_f1": [0.5, 0.6, 0.4, 0.2, 0.3, 0.4, 0.45],
                        "chosen": [False, True, False, False, False, False, True], "data": "mine.csv"})
    table = rate_search_table(new, ["full", "p_tuning", "lora"], "mine.csv")
    assert list(table.index) == ["full", "p_tuning"]  # lora was not searched
    assert table.loc["full", "position"] == "interior" and table.loc["full", "chosen lr"] == 3e-4
    assert table.loc["p_tuning", "position"] == "highest tried" and table.loc["p_tuning", "tried"] == 4
    assert "0.0003 → 0.600 ✓" in table.loc["full", "candidates"]
    assert rate_search_table(new, ["full"], "other.csv").empty  # a search of other data is not this data's
    old = new.drop(columns="data").rename(columns={"setting": "strategy"})  # an older table: the medical abstracts
    assert rate_search_table(old, ["full"], "medical_abstracts").loc["full", "chosen lr"] == 3e-4
    assert rate_search_table(old, ["full"], "mine.csv").empty
