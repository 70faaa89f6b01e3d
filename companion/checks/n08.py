"""Exercise checks of notebook 08."""
from __future__ import annotations

from functools import lru_cache

from typing import Sequence

from torch import nn

from ..engine.metrics import classification_metrics
from ..lessons.n08_hard_prompts import label_logprobs
from ..core.errors import CourseError, shown
from ..core.models import load_tokenizer
from ..lessons.n08_hard_prompts import admissible, domain_words, verbalizer_sets
from . import Verdict, check_close, check_equal, check_prediction, exercise


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
