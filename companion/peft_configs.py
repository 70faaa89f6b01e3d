"""`peft` configurations for the parameter-efficient strategies on a sequence classifier, and their wrapping."""
from __future__ import annotations

from torch import nn

from .errors import CourseError

PEFT_METHODS = ("prompt_tuning", "prompt_tuning_text", "p_tuning", "prefix_tuning", "lora")
INIT_TEXT = "Classify the medical condition described in this abstract:"  # text initialisation of soft prompts
# learning rates that work (peft examples, Lester et al. 2021): soft prompts need far larger rates than full FT
SUGGESTED_LR = {"prompt_tuning": 3e-2, "prompt_tuning_text": 3e-2, "p_tuning": 1e-2, "prefix_tuning": 1e-2,
                "lora": 5e-4, "full": 5e-5}


def peft_config(method: str, num_virtual_tokens: int = 20, tokenizer_name: str | None = None,
                init_text: str = INIT_TEXT, r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.1,
                encoder_hidden_size: int = 128, target_modules: list[str] | None = None):
    """The peft config for one method (sequence classification: peft also trains the new head)."""
    from peft import (LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, PromptTuningInit,
                      TaskType)

    task = TaskType.SEQ_CLS
    if method == "prompt_tuning":
        return PromptTuningConfig(task_type=task, num_virtual_tokens=num_virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.RANDOM)
    if method == "prompt_tuning_text":
        if tokenizer_name is None:
            raise CourseError("text-initialised prompt tuning needs tokenizer_name (the model's folder or id)")
        return PromptTuningConfig(task_type=task, num_virtual_tokens=num_virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=init_text,
                                  tokenizer_name_or_path=tokenizer_name)
    if method == "p_tuning":
        return PromptEncoderConfig(task_type=task, num_virtual_tokens=num_virtual_tokens,
                                   encoder_hidden_size=encoder_hidden_size)
    if method == "prefix_tuning":
        return PrefixTuningConfig(task_type=task, num_virtual_tokens=num_virtual_tokens)
    if method == "lora":
        return LoraConfig(task_type=task, r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                          target_modules=target_modules or ["query", "value"])
    raise CourseError(f"unknown peft method {method!r}: use one of {', '.join(PEFT_METHODS)}")


def wrap_peft(model: nn.Module, method: str, model_name: str | None = None, **options) -> nn.Module:
    """Wrap a classifier with a peft method; only the method's parameters (and the head) stay trainable."""
    from peft import get_peft_model

    from .models import resolve_model

    tokenizer_name = resolve_model(model_name) if model_name and method == "prompt_tuning_text" else None
    return get_peft_model(model, peft_config(method, tokenizer_name=tokenizer_name, **options))


def base_encoder(model: nn.Module) -> nn.Module:
    """The encoder inside a classifier or a peft model (LoRA layers included, soft prompts not)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return getattr(model, "base_model", model)
