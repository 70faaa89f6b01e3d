"""The parameter-efficient strategies on a sequence classifier: each `prepare_*` wraps a fresh classifier with one
`peft` method, so only that method's parameters (and the new head) train."""
from __future__ import annotations

from torch import nn

from ..core.errors import CourseError
from .layered import Prepared

INIT_TEXT = "Classify the medical condition described in this abstract:"  # text initialisation of soft prompts


def init_text_for(label_names: list[str] | None, data: str = "medical_abstracts") -> str:
    """The task description a text-initialised soft prompt starts from: INIT_TEXT for the medical abstracts, else
    one built from the data's own label names."""
    if data == "medical_abstracts" or not label_names:
        return INIT_TEXT
    return f"Classify this text as {', '.join(label_names[:-1])} or {label_names[-1]}:" if len(label_names) > 1 \
        else f"Classify this text as {label_names[0]}:"


def _wrapped(model: nn.Module, config) -> Prepared:
    """The model wrapped by peft with `config` (peft freezes everything but the method and the head)."""
    from peft import get_peft_model

    return Prepared(get_peft_model(model, config))


def prepare_prompt_tuning(model: nn.Module, num_virtual_tokens: int = 20) -> Prepared:
    """Prompt tuning (Lester et al. 2021): `num_virtual_tokens` trainable input vectors, randomly initialised."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    return _wrapped(model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens,
                                              prompt_tuning_init=PromptTuningInit.RANDOM))


def prepare_prompt_tuning_text(model: nn.Module, num_virtual_tokens: int = 20, init_text: str = INIT_TEXT) -> Prepared:
    """Prompt tuning whose vectors start as the word embeddings of `init_text` (the model's own tokenizer)."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    folder = getattr(model, "name_or_path", "")  # the folder the model was loaded from: its tokenizer is there
    if not folder:
        raise CourseError("text-initialised prompt tuning needs a model loaded with load_model(name_or_folder): "
                          "peft reads the tokenizer from the model's folder")
    return _wrapped(model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens,
                                              prompt_tuning_init=PromptTuningInit.TEXT,
                                              prompt_tuning_init_text=init_text, tokenizer_name_or_path=folder))


def prepare_p_tuning(model: nn.Module, num_virtual_tokens: int = 20, encoder_hidden_size: int = 128) -> Prepared:
    """P-tuning (Liu et al. 2021): the virtual tokens come out of a small trainable MLP."""
    from peft import PromptEncoderConfig, TaskType

    return _wrapped(model, PromptEncoderConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens,
                                               encoder_hidden_size=encoder_hidden_size))


def prepare_prefix_tuning(model: nn.Module, num_virtual_tokens: int = 20) -> Prepared:
    """Prefix tuning (Li & Liang 2021): trainable key/value vectors in front of every layer's attention."""
    from peft import PrefixTuningConfig, TaskType

    return _wrapped(model, PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens))


def prepare_lora(model: nn.Module, r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.1,
                 target_modules: list[str] | None = None) -> Prepared:
    """LoRA (Hu et al. 2021): W + (α/r)·B·A on the attention's query and value projections, B and A trainable."""
    from peft import LoraConfig, TaskType

    return _wrapped(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=lora_alpha,
                                      lora_dropout=lora_dropout, target_modules=target_modules or ["query", "value"]))


def base_encoder(model: nn.Module) -> nn.Module:
    """The encoder inside a classifier or a peft model (LoRA layers included, soft prompts not)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return getattr(model, "base_model", model)
