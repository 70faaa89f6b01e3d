"""Exercise checks of notebook 08."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import torch
from torch import nn

from ..engine.metrics import classification_metrics
from ..lessons.n08_hard_prompts import label_logprobs
from ..core.errors import CourseError, shown
from ..core.models import load_tokenizer
from ..lessons.n08_hard_prompts import admissible, domain_words, verbalizer_sets
from . import Verdict, check_close, check_equal, check_prediction, exercise, feedback, not_attempted


@exercise("08", "storage_ratio")
def check_storage_ratio(answer, full_bytes: int, task_bytes: int, prompt_numbers: int, head_numbers: int) -> Verdict:
    """Predict-then-measure: how many times larger a fully fine-tuned copy is than one task's prompt + head."""
    measured = full_bytes / task_bytes
    tensors = 4 * (prompt_numbers + head_numbers)
    why = (f"Measured {full_bytes:,} B / {task_bytes:,} B = {measured:,.0f}×. The task's tensors are "
           f"({prompt_numbers:,} prompt + {head_numbers:,} head numbers) × 4 B = {tensors:,} B; the rest "
           f"({task_bytes - tensors:,} B) is file headers and the adapter's JSON config, which weigh more the "
           f"smaller the adapter is. Count the numbers each one stores, 4 bytes each")
    return check_prediction(answer, measured, "storage_ratio", why, rtol=0.25)


@exercise("08", "word_logprob")
def check_word_logprob(answer, model: nn.Module, tokenizer, prompt: str, word: str) -> bool:
    """Exercise: log P(first token of the word | prompt) from the model's next-token logits, by hand."""
    expected = float(label_logprobs(model, tokenizer, [prompt], [word], first_token_only=True)[0, 0])
    return check_close(answer, expected, "word_logprob", "tokenise the prompt, take logits[0, -1], apply "
                       "log_softmax, and read the entry of the word's first token id (tokenizer(' ' + word))",
                       atol=1e-3)


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


# ---------------------------------------------------------------- checked before a run starts (companion run)
@lru_cache(maxsize=16)
def check_label_words(lm_name: str, label_names: tuple[str, ...]) -> None:
    """Before a run: the data's labels give at least one verbalizer whose words start with different tokens of the
    LM (else hard prompts cannot tell the classes apart); the same sets notebook 08 builds."""
    own = domain_words(label_names)
    try:
        admissible(load_tokenizer(lm_name), verbalizer_sets(label_names, {"domain words": own} if own else None))
    except CourseError as err:
        raise CourseError(f"the labels {shown(label_names)} cannot be turned into words for hard prompts with "
                          f"{lm_name!r}: {err}") from None


def fresh_lora_inputs(seed: int = 2024) -> list[dict[str, Any]]:
    """Inputs the notebook never uses: (x, weight, bias, A, B, alpha, r) for a few layer sizes, ranks and alphas with
    α/r ≠ 1 and α/r ≠ α (so a missing or half scaling shows), B non-zero (as after training), and x with and without
    a sequence dimension."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for x_shape, d_out, r, alpha in (((2, 5, 12), 7, 4, 8.0), ((6, 10), 10, 2, 1.0), ((1, 3, 8), 16, 8, 32.0)):
        d_in = x_shape[-1]
        cases.append({"x": torch.randn(*x_shape, generator=g), "weight": torch.randn(d_out, d_in, generator=g),
                      "bias": torch.randn(d_out, generator=g), "A": torch.randn(r, d_in, generator=g) * 0.3,
                      "B": torch.randn(d_out, r, generator=g) * 0.3, "alpha": alpha, "r": r})
    return cases


def peft_lora_output(case: dict[str, Any]) -> torch.Tensor:
    """What peft's LoRA computes: an nn.Linear with `weight` and `bias`, wrapped by `get_peft_model` with
    LoraConfig(r, lora_alpha=alpha, lora_dropout=0), its lora_A and lora_B set to A and B, applied to x."""
    from peft import LoraConfig, get_peft_model

    d_out, d_in = case["weight"].shape
    layer = nn.Module()
    layer.proj = nn.Linear(d_in, d_out)
    layer.forward = lambda x: layer.proj(x)
    with torch.no_grad():
        layer.proj.weight.copy_(case["weight"])
        layer.proj.bias.copy_(case["bias"])
    wrapped = get_peft_model(layer, LoraConfig(r=case["r"], lora_alpha=case["alpha"], lora_dropout=0.0,
                                               target_modules=["proj"])).eval()
    lora = wrapped.get_base_model().proj
    with torch.no_grad():
        lora.lora_A["default"].weight.copy_(case["A"])
        lora.lora_B["default"].weight.copy_(case["B"])
        return lora(case["x"])


@exercise("08", "lora_forward_function")
def check_lora_forward_function(fn) -> Verdict:
    """Mechanism: the learner's `fn(x, weight, bias, A, B, alpha, r)` → x Wᵀ + b + (α/r)·x Aᵀ Bᵀ, run on fresh inputs
    against a peft LoRA layer holding the same W, b, A and B."""
    name = "lora_forward_function"
    hint = ("the frozen layer: x @ weight.T + bias; the update: (x @ A.T) @ B.T (x → r numbers → d_out numbers), "
            "scaled by alpha / r; return their sum, shape (..., d_out)")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for case in fresh_lora_inputs():
        expected = peft_lora_output(case)
        shown = (f"x {tuple(case['x'].shape)}, weight {tuple(case['weight'].shape)}, r={case['r']}, "
                 f"alpha={case['alpha']:g}")
        try:
            got = fn(*(v.clone() if torch.is_tensor(v) else v for v in case.values()))
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"with {shown} your function raised {type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body, then run the cell "
                                            "again").emit()
        if not torch.is_tensor(got) or got.shape != expected.shape:
            size = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            return feedback(False, name, f"with {shown} the output must have shape {tuple(expected.shape)}, yours "
                                         f"is {size}. {hint}")
        if not torch.allclose(got.detach().float(), expected, atol=1e-4, rtol=1e-4):
            diff = float((got.detach().float() - expected).abs().max())
            return feedback(False, name, f"with {shown} your output differs from peft's LoRA layer by up to "
                                         f"{diff:.3g}. {hint}")
    return feedback(True, name, hint)
