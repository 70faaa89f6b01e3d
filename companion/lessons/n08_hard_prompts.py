"""Hard prompts with a causal LM: a template and a verbalizer, each class scored by its label word's log-probability.

Zero-shot (template only), few-shot (labelled demonstrations first; their keys and values are computed once and
shared by every question) and an automatic search over a generated space of templates × verbalizers, scored on
validation data. A word's score is the log-probability of its first token after the prompt, so ONE forward pass
per prompt scores every verbalizer at once (exact for one-token words; `label_logprobs` sums every token).
"""
from __future__ import annotations

import copy
import random
import time
from typing import Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.device import autocast
from ..core.errors import CourseError
from ..engine.metrics import classification_metrics

# hand-chosen words for the five medical classes (index = label id): the medical data set's own verbalizer
MEDICAL_VERBALIZER = ["cancer", "digestive", "neurological", "cardiovascular", "general"]
# how the text is introduced ({noun} only when the data names its texts, e.g. "Abstract") …
FRAMINGS = {"text": "Text: {text}", "bare": "{text}", "quoted": '"{text}"', "noun": "{noun}: {text}"}
# … and the words that invite the label ({choices}: the data's label names)
QUESTIONS = {"topic": "Topic:", "category": "Category:", "about": "This is about",
             "choice": "Question: which of these is it: {choices}?\nAnswer:"}


def shorten(text: str, words: int = 32) -> str:
    """The first `words` words of a text (beginnings carry the topic; prompts stay short)."""
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def domain_words(label_names: Sequence[str]) -> list[str] | None:
    """The hand-chosen medical verbalizer for the medical label names, else None (no words known for the data)."""
    if len(label_names) == 5 and "neoplasms" in str(label_names[0]).lower():
        return list(MEDICAL_VERBALIZER)
    return None


def verbalizer_for(label_names: Sequence[str]) -> list[str]:
    """The data's own words if known, else each label name's first word, lower-cased."""
    return domain_words(label_names) or [str(name).split()[0].lower() for name in label_names]


def verbalizer_sets(label_names: Sequence[str], extra: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Verbalizers derived from the label names (first / last / longest word, lower-cased; first word capitalised)
    plus `extra`; a set that names two classes with the same word is dropped, identical sets are kept once."""
    words = [str(name).split() or [str(name)] for name in label_names]
    derived = {"first word": [w[0].lower() for w in words], "last word": [w[-1].lower() for w in words],
               "longest word": [max(w, key=len).lower() for w in words],
               "First word": [w[0][:1].upper() + w[0][1:].lower() for w in words]}
    out: dict[str, list[str]] = {}
    for name, verbalizer in {**(extra or {}), **derived}.items():
        if len(set(verbalizer)) == len(verbalizer) and verbalizer not in out.values():
            out[name] = list(verbalizer)
    return out


def template_space(label_names: Sequence[str], noun: str | None = None) -> dict[str, str]:
    """Every framing × question wording as a template with one {text} slot, named 'framing / question'.

    The 'noun' framing (e.g. "Abstract: …") is used only when the data names its texts; the 'choice' question
    lists the data's label names."""
    choices = ", ".join(str(n) for n in label_names).replace("{", "{{").replace("}", "}}")
    noun_text = (noun or "").replace("{", "{{").replace("}", "}}")
    space = {}
    for f_name, framing in FRAMINGS.items():
        if f_name == "noun" and not noun:
            continue
        for q_name, question in QUESTIONS.items():
            space[f"{f_name} / {q_name}"] = (framing.replace("{noun}", noun_text) + "\n"
                                             + question.replace("{choices}", choices))
    return space


def first_token_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """The first token id of each word as it follows the prompt (with a leading space)."""
    ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words]
    if any(not i for i in ids):
        raise CourseError(f"a label word gives no token: {list(words)}; use label names with letters in them")
    return [i[0] for i in ids]


def admissible(tokenizer, sets: dict[str, list[str]]) -> dict[str, list[str]]:
    """The verbalizer sets whose words start with different tokens (else one-pass scoring cannot tell them apart)."""
    keep = {name: words for name, words in sets.items() if len(set(first_token_ids(tokenizer, words))) == len(words)}
    if not keep:
        raise CourseError("every verbalizer names two classes with words that start with the same token: "
                          "give the classes label names whose first words differ")
    return keep


def build_prompt(template: str, text: str, demos: Sequence[tuple[str, str]] = (), words: int = 32) -> str:
    """Fill the template with the (shortened) text; demonstrations (text, label word) come first, answered.

    Demonstration texts are used as given (shorten them first to the length you state)."""
    shots = [template.format(text=t) + " " + w for t, w in demos]
    return "\n\n".join(shots + [template.format(text=shorten(text, words))])


def pick_demos(texts: Sequence[str], labels: Sequence[int], verbalizer: Sequence[str], per_class: int = 1,
               seed: int = 0) -> list[tuple[str, str]]:
    """`per_class` labelled demonstrations of every class (seeded), in a shuffled order."""
    rng = random.Random(seed)
    demos = []
    for c, word in enumerate(verbalizer):
        pool = [t for t, y in zip(texts, labels) if y == c]
        demos += [(t, word) for t in rng.sample(pool, min(per_class, len(pool)))]
    rng.shuffle(demos)
    return demos


def shared_prefix(token_lists: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every list has in common, keeping at least one token of each list after it."""
    if len(token_lists) < 2:
        return 0
    n = min(len(t) for t in token_lists) - 1
    first = token_lists[0]
    for i in range(max(n, 0)):
        if any(t[i] != first[i] for t in token_lists[1:]):
            return i
    return max(n, 0)


def scoring_precision(device: torch.device, precision: str = "fp32"):
    """bf16 autocast when `precision` is bf16 (what the profile trains in: cc.protocol(...).precision), else a no-op."""
    return autocast(precision, device)


@torch.inference_mode()
def next_token_logprobs(model: nn.Module, tokenizer, prompts: Sequence[str], token_ids: Sequence[int],
                        batch_size: int = 16, min_prefix: int = 16, progress: bool = False,
                        precision: str = "fp32") -> torch.Tensor:
    """log P(token | prompt) of the next token for every prompt and token id: [n_prompts, n_ids], float32.

    Batched with left padding, only the last position's logits computed; a prefix shared by every prompt (the
    demonstrations of few-shot) of at least `min_prefix` tokens runs once and its keys/values serve every batch."""
    device = next(model.parameters()).device
    model.eval()
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    n_prefix = shared_prefix(encoded)
    cache = None
    if n_prefix >= min_prefix:
        with scoring_precision(device, precision):
            prefix_ids = torch.tensor([encoded[0][:n_prefix]], device=device)
            cache = model(input_ids=prefix_ids, use_cache=True).past_key_values
    else:
        n_prefix = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    wanted = torch.tensor(list(token_ids), device=device)
    rows = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="scoring", disable=not progress, mininterval=5):
        suffixes = [ids[n_prefix:] for ids in encoded[start:start + batch_size]]
        width = max(len(s) for s in suffixes)
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in suffixes], device=device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device)
        positions = n_prefix + (mask.cumsum(1) - 1).clamp(min=0)  # real tokens continue the prefix's positions
        extra = {}
        if cache is not None:
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(suffixes))
            mask = torch.cat([torch.ones(len(suffixes), n_prefix, dtype=mask.dtype, device=device), mask], 1)
            extra["past_key_values"] = past
        with scoring_precision(device, precision):
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1,
                           **extra).logits
        rows.append(logits[:, -1].float().log_softmax(-1)[:, wanted].cpu())
    return torch.cat(rows)


@torch.inference_mode()
def label_logprobs(model: nn.Module, tokenizer, prompts: Sequence[str], words: Sequence[str],
                   first_token_only: bool = False) -> torch.Tensor:
    """log P(word | prompt) one prompt and word at a time in float32, every token of the word summed (or only its
    first): [n_prompts, n_words] (the slow reference for `next_token_logprobs`)."""
    device = next(model.parameters()).device
    model.eval()
    scores = torch.zeros(len(prompts), len(words))
    for i, prompt in enumerate(prompts):
        prompt_ids = tokenizer(prompt)["input_ids"]
        for j, word in enumerate(words):
            word_ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"][:1 if first_token_only else None]
            ids = torch.tensor([prompt_ids + word_ids], device=device)
            logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
            positions = torch.arange(len(prompt_ids) - 1, len(prompt_ids) - 1 + len(word_ids))
            scores[i, j] = float(logp[positions, torch.tensor(word_ids)].sum())
    return scores


def hard_prompt_eval(model: nn.Module, tokenizer, texts: Sequence[str], labels: Sequence[int], template: str,
                     verbalizer: Sequence[str], demos: Sequence[tuple[str, str]] = (), words: int = 32,
                     batch_size: int = 16, progress: bool = False, precision: str = "fp32") -> dict:
    """Predict the best-scoring label word (first token) for every text: accuracy, macro-F1, predictions, seconds."""
    start = time.perf_counter()
    prompts = [build_prompt(template, t, demos, words) for t in texts]
    scores = next_token_logprobs(model, tokenizer, prompts, first_token_ids(tokenizer, verbalizer), batch_size,
                                 progress=progress, precision=precision)
    preds = scores.argmax(-1).tolist()
    return {**classification_metrics(list(labels), preds), "preds": preds, "seconds": time.perf_counter() - start,
            "texts": len(texts)}


def template_search(model: nn.Module, tokenizer, texts: Sequence[str], labels: Sequence[int],
                    templates: dict[str, str], verbalizers: dict[str, list[str]], words: int = 32,
                    batch_size: int = 16, progress: bool = False, precision: str = "fp32") -> pd.DataFrame:
    """Score every template × verbalizer on (validation) data with one forward pass per template and text;
    best macro-F1 first."""
    names = list(verbalizers)
    union = sorted({i for v in names for i in first_token_ids(tokenizer, verbalizers[v])})
    column = {token: k for k, token in enumerate(union)}
    rows = []
    for t_name, template in tqdm(templates.items(), desc="templates", disable=not progress, mininterval=5):
        prompts = [build_prompt(template, t, words=words) for t in texts]
        scores = next_token_logprobs(model, tokenizer, prompts, union, batch_size, precision=precision)  # all words
        for v_name in names:
            preds = scores[:, [column[i] for i in first_token_ids(tokenizer, verbalizers[v_name])]].argmax(-1).tolist()
            metrics = classification_metrics(list(labels), preds)
            rows.append({"template": t_name, "verbalizer": v_name, "accuracy": metrics["accuracy"],
                         "macro_f1": metrics["macro_f1"], "classes_predicted": len(set(preds))})
    table = pd.DataFrame(rows).sort_values("macro_f1", ascending=False, kind="stable")
    return table.reset_index(drop=True)


def search_spread(table: pd.DataFrame) -> dict:
    """Best, median and worst validation macro-F1 over the searched combinations, and how many there were."""
    f1 = table["macro_f1"]
    return {"best": float(f1.max()), "median": float(f1.median()), "worst": float(f1.min()), "combinations": len(f1),
            "templates": int(table["template"].nunique()), "verbalizers": int(table["verbalizer"].nunique())}


def winners_curse(validation: pd.DataFrame, test: pd.DataFrame, top: int) -> pd.DataFrame:
    """The `top` best combinations on validation (a `template_search` table, best first) with their macro-F1 on test
    (a `template_search` table of the same combinations on test) side by side: rank on each, and test − validation."""
    best = validation.head(top)[["template", "verbalizer", "macro_f1"]].rename(columns={"macro_f1": "validation"})
    scored = test[["template", "verbalizer", "macro_f1"]].rename(columns={"macro_f1": "test"})
    table = best.merge(scored, on=["template", "verbalizer"], how="left")
    if table["test"].isna().any():
        raise CourseError("the test table lacks some of the best validation combinations: score their templates")
    table.insert(0, "validation rank", range(1, len(table) + 1))
    table["test rank"] = table["test"].rank(ascending=False, method="min").astype(int)
    table["test − validation"] = table["test"] - table["validation"]
    return table


