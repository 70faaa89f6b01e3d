"""Hard prompts with a causal LM: template + verbalizer, each label word scored by its log-probability.

Zero-shot (template only), few-shot (labelled demonstrations first) and template search on validation data.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .exercises import check_close, check_equal, exercise
from .engine.metrics import classification_metrics

# label words for the five medical classes (index = label id); each is one SmolLM2 token after a space
MEDICAL_VERBALIZER = ["cancer", "digestive", "neurological", "cardiovascular", "general"]
TEMPLATES = {
    "topic": "Abstract: {text}\nTopic:",
    "about": "{text}\nThis medical abstract is about",
    "question": "Medical abstract: {text}\nQuestion: Is this about cancer, digestive, neurological, cardiovascular "
                "or general conditions?\nAnswer:",
}


def shorten(text: str, words: int = 32) -> str:
    """The first `words` words of a text (abstract beginnings carry the topic; prompts stay short)."""
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def verbalizer_for(label_names: Sequence[str]) -> list[str]:
    """The medical verbalizer for the medical labels, else each label name's first word (a learner's own data)."""
    if len(label_names) == 5 and "neoplasms" in label_names[0].lower():
        return list(MEDICAL_VERBALIZER)
    return [str(name).split()[0].lower() for name in label_names]


def build_prompt(template: str, text: str, demos: Sequence[tuple[str, str]] = (), words: int = 32) -> str:
    """Fill the template with the (shortened) text; demonstrations (text, label word) come first, answered."""
    shots = [template.format(text=shorten(t, words)) + " " + w for t, w in demos]
    return "\n\n".join(shots + [template.format(text=shorten(text, words))])


def pick_demos(texts: Sequence[str], labels: Sequence[int], verbalizer: Sequence[str], per_class: int = 1,
               seed: int = 0) -> list[tuple[str, str]]:
    """`per_class` labelled demonstrations of every class (seeded), in a shuffled order."""
    import random

    rng = random.Random(seed)
    demos = []
    for c, word in enumerate(verbalizer):
        pool = [t for t, y in zip(texts, labels) if y == c]
        demos += [(t, word) for t in rng.sample(pool, min(per_class, len(pool)))]
    rng.shuffle(demos)
    return demos


def word_token_ids(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Token ids of each label word as it follows the prompt (with a leading space)."""
    return [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words]


@torch.no_grad()
def label_logprobs(model: nn.Module, tokenizer, prompts: Sequence[str], words: Sequence[str], batch_size: int = 8,
                   progress: bool = False) -> torch.Tensor:
    """log P(label word | prompt) for every prompt and word: [n_prompts, n_words] (multi-token words: summed)."""
    ids = word_token_ids(tokenizer, words)
    device = next(model.parameters()).device
    tokenizer.padding_side = "right"
    model.eval()
    rows = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="scoring", disable=not progress, mininterval=5):
        chunk = list(prompts[start:start + batch_size])
        if all(len(i) == 1 for i in ids):  # one forward pass: the next-token distribution after the prompt
            enc = tokenizer(chunk, return_tensors="pt", padding=True).to(device)
            logits = model(**enc).logits.float()
            last = enc["attention_mask"].sum(1) - 1
            logp = logits[torch.arange(len(chunk)), last].log_softmax(-1)
            rows.append(logp[:, [i[0] for i in ids]].cpu())
            continue
        scores = torch.zeros(len(chunk), len(words))  # general case: score each word's tokens in turn
        for j, word_ids in enumerate(ids):
            enc = tokenizer(chunk, return_tensors="pt", padding=True)
            n_prompt = enc["attention_mask"].sum(1)
            seqs = [enc["input_ids"][b, :n_prompt[b]].tolist() + word_ids for b in range(len(chunk))]
            width = max(len(s) for s in seqs)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
            logp = model(input_ids=input_ids, attention_mask=mask).logits.float().log_softmax(-1)
            for b in range(len(chunk)):
                pos = torch.arange(int(n_prompt[b]) - 1, int(n_prompt[b]) - 1 + len(word_ids))
                scores[b, j] = logp[b, pos, torch.tensor(word_ids)].sum().cpu()
        rows.append(scores)
    return torch.cat(rows)


def hard_prompt_eval(model: nn.Module, tokenizer, texts: Sequence[str], labels: Sequence[int], template: str,
                     verbalizer: Sequence[str], demos: Sequence[tuple[str, str]] = (), words: int = 32,
                     batch_size: int = 8, progress: bool = False) -> dict:
    """Predict the best-scoring label word for every text; accuracy, macro-F1, predictions."""
    prompts = [build_prompt(template, t, demos, words) for t in texts]
    scores = label_logprobs(model, tokenizer, prompts, verbalizer, batch_size, progress)
    preds = scores.argmax(-1).tolist()
    return {**classification_metrics(labels, preds), "preds": preds}


def template_search(model: nn.Module, tokenizer, texts: Sequence[str], labels: Sequence[int],
                    templates: dict[str, str], verbalizer: Sequence[str], words: int = 32,
                    progress: bool = False) -> pd.DataFrame:
    """Score every template on (validation) data; best macro-F1 first."""
    rows = []
    for name, template in tqdm(templates.items(), desc="templates", disable=not progress, mininterval=5):
        out = hard_prompt_eval(model, tokenizer, texts, labels, template, verbalizer, words=words)
        rows.append({"template": name, "accuracy": out["accuracy"], "macro_f1": out["macro_f1"],
                     "classes_predicted": len(set(out["preds"]))})
    return pd.DataFrame(rows).sort_values("macro_f1", ascending=False).reset_index(drop=True)


@exercise("08", "word_logprob")
def check_word_logprob(answer, model: nn.Module, tokenizer, prompt: str, word: str) -> bool:
    """Exercise: log P(word | prompt) from the model's next-token logits, by hand."""
    expected = float(label_logprobs(model, tokenizer, [prompt], [word])[0, 0])
    return check_close(answer, expected, "word_logprob", "tokenise the prompt, take logits[0, -1], apply "
                       "log_softmax, and read the entry of the word's token id (tokenizer(' ' + word))", atol=1e-3)


@exercise("08", "prompt_params")
def check_prompt_params(answer, num_virtual_tokens: int, hidden_size: int) -> bool:
    """Exercise: how many numbers a soft prompt of n virtual tokens holds."""
    return check_equal(answer, num_virtual_tokens * hidden_size, "prompt_params",
                       "each virtual token is one trainable vector of the model's hidden size")


@exercise("08", "majority_f1")
def check_majority_f1(answer, labels: Sequence[int], majority: int) -> bool:
    """Exercise: the macro-F1 of always predicting the majority class."""
    expected = classification_metrics(labels, [majority] * len(labels))["macro_f1"]
    return check_close(answer, expected, "majority_f1", "F1 of the majority class is 2·p·r/(p+r) with r = 1 and "
                       "p = its share; every other class scores 0; macro-F1 averages over the classes", atol=1e-3)
