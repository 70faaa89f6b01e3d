# %% [markdown]
# # 08 · Prompt tuning
#
# Instead of changing the model, change its **input**. A *hard prompt* is text we write (a template and a
# verbalizer that maps each class to a word); a *soft prompt* is a handful of trainable vectors prepended to the
# input embeddings while every model weight stays frozen.
#
# **In this notebook you will**
# 1. classify abstracts with the causal LM SmolLM2 and hard prompts, zero-shot and few-shot, scoring each label
#    word's log-probability, and pick the best of several templates on validation data;
# 2. wrap the MiniLM encoder with `peft` yourself (`get_peft_model` with prompt tuning, prefix tuning and
#    p-tuning), see what each adds, derive its trainable parameters by hand, and rebuild prompt tuning's input by
#    hand;
# 3. write LoRA (W' = W + (α/r)·B·A) as a small module on one attention projection and check it against peft's
#    LoRA layer and its merged weights;
# 4. train two soft prompts for two tasks on **one** frozen encoder, swap them at inference, and predict, then
#    measure, what a task costs on disk against a fully fine-tuned copy;
# 5. train soft prompts for the topic task (random vs text initialisation, prompt length, p-tuning, prefix
#    tuning) with the learning rates they need, guard against the classic failure (a "trained" prompt that
#    predicts one class only), and measure the gap to full fine-tuning.
#
# **Before you start:** notebooks 01 (a causal LM's next-token log-probabilities), 06 (fine-tuning, macro-F1,
# the majority baseline, CKA) and 07 (freezing, `requires_grad`, parameter counts). **Study time** for a person:
# about 90 minutes, reading, running and doing the exercises.
#
# **Machine time**, measured on 2 idle CPU cores (kernel start and model loading included): `smoke` 22 s ·
# `cpu` 84 s (training in bf16 autocast: this CPU has AVX512-BF16); slower on a busy machine. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
import copy
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from peft import (LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, TaskType,
                  get_peft_model)
from safetensors.torch import save_file
from torch import nn

import companion as cc
from companion.data import load_text_classification, load_wikitext2
from companion.engine.finetune import forgetting_probe, make_task, run_strategy, subset
from companion.forgetting import general_sentences
from companion.lessons_peft import (check_storage_ratio, domain_identification, evaluate_task_prompt, folder_bytes,
                                    save_quietly, train_task_prompt)
from companion.engine.metrics import assert_trained, majority_baseline
from companion.engine.peft_configs import SUGGESTED_LR
from companion.prompting import (TEMPLATES, build_prompt, check_majority_f1, check_prompt_params, check_word_logprob,
                                 hard_prompt_eval, pick_demos, shorten, template_search, verbalizer_for)
from companion.engine.training import TrainConfig

# transformers 5 renamed a method that peft 0.21 still calls; the notice says nothing about this notebook
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for shuffling, the soft prompts and the demonstrations
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "minilm"  # encoder for soft prompts: embedded name, local folder or Hugging Face id
lm_name: str = "smollm2"  # causal LM for hard prompts: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
num_virtual_tokens: int = 20  # range: [1, inf); soft prompt length (virtual tokens)
prompt_lengths: Optional[list] = None  # range: [1, inf); soft prompt lengths in the length sweep; None means the profile default
prompt_lr: Optional[float] = None  # range: (0, inf); soft prompt learning rate; None means the profile default
shots_per_class: int = 1  # range: [0, inf); demonstrations per class in the few-shot prompt
epochs: Optional[int] = None  # range: [1, inf); passes over the training data; None means the profile default
max_length: Optional[int] = None  # range: [2, inf); tokens kept from each text; None means the profile default
train_size: Optional[int] = None  # range: [1, inf); training examples for soft prompts; None means the profile default

# %%
cc.check_values("08", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"hard_val": 6, "hard_test": 8, "words": 12, "epochs": 1, "max_length": 16, "train_size": 32,
              "eval_size": 16, "prompt_lengths": [4], "prompt_lr": 3e-2, "full_lr": 2e-4, "batch_size": 16,
              "task_epochs": 1, "domain_per_class": 16, "domain_test_per_class": 8},
    "cpu": {"hard_val": 16, "hard_test": 40, "words": 20, "epochs": 2, "max_length": 32, "train_size": 200,
            "eval_size": None, "prompt_lengths": [4, 20], "prompt_lr": 3e-2, "full_lr": 2e-4, "batch_size": 16,
            "task_epochs": 2, "domain_per_class": 64, "domain_test_per_class": 100},
    "gpu": {"hard_val": 200, "hard_test": 399, "words": 48, "epochs": 8, "max_length": 256, "train_size": None,
            "eval_size": None, "prompt_lengths": [1, 5, 20, 50, 100], "prompt_lr": 3e-2, "full_lr": 5e-5,
            "batch_size": 32, "task_epochs": 4, "domain_per_class": 500, "domain_test_per_class": 300},
}, epochs=epochs, max_length=max_length, train_size=train_size, prompt_lengths=prompt_lengths, prompt_lr=prompt_lr)
dataset = load_text_classification(data, text_column, label_column, seed=seed if data != "medical_abstracts" else 42)
if cfg["eval_size"]:
    dataset = type(dataset)({s: (p if s == "train" else p.select(range(min(cfg["eval_size"], len(p)))))
                             for s, p in dataset.items()})
label_names = dataset["train"].features["label"].names
num_labels = len(label_names)
majority = majority_baseline(dataset["train"]["label"], dataset["test"]["label"])
print("profile:", PROFILE, "| device:", device.type, f"| majority class: macro-F1 {majority['macro_f1']:.3f}, "
      f"accuracy {majority['accuracy']:.3f}")
pd.Series(cfg, name="setting").to_frame()

# %% [markdown]
# ## 1. Hard prompts with a causal LM
#
# A template turns an abstract into a text whose natural continuation is the class; a **verbalizer** names each
# class with one word. The model's next-token distribution then scores each class:
# $\text{score}(c) = \log P(\text{word}_c \mid \text{prompt})$. We check this against the logits by hand:

# %%
lm_tokenizer = cc.load_tokenizer(lm_name)
lm = cc.load_model(lm_name, "causal-lm").to(device)
verbalizer = verbalizer_for(label_names)
example = dataset["validation"][0]
prompt = build_prompt(TEMPLATES["topic"], example["text"], words=cfg["words"])
print(prompt, "\n")
from companion.prompting import label_logprobs

scores = label_logprobs(lm, lm_tokenizer, [prompt], verbalizer)[0]
with torch.no_grad():
    ids = lm_tokenizer(prompt, return_tensors="pt").to(device)
    by_hand = lm(**ids).logits[0, -1].float().log_softmax(-1)
word_ids = [lm_tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in verbalizer]
print("max |companion − by hand| =", f"{(scores - by_hand[word_ids].cpu()).abs().max():.1e}")
pd.DataFrame({"word": verbalizer, "log P": scores.numpy().round(3), "class": label_names,
              "true": [i == example["label"] for i in range(len(label_names))]})

# %% [markdown]
# **Template search.** The wording matters a lot for a small model. We try each template on validation data
# (never on test) and keep the best.

# %%
val = dataset["validation"].shuffle(seed=seed).select(range(min(cfg["hard_val"], len(dataset["validation"]))))
search = template_search(lm, lm_tokenizer, val["text"], val["label"], TEMPLATES, verbalizer, words=cfg["words"],
                         progress=True)
best_template = search.loc[0, "template"]
search.round(3)

# %% [markdown]
# **Zero-shot vs few-shot** on test data with the best template: few-shot puts `shots_per_class` solved
# examples of every class before the question (in-context learning, no training). Both see the same
# `words` words of each test abstract; the demonstrations are shortened to half that, to keep the prompts short.

# %%
test_hard = dataset["test"].select(range(min(cfg["hard_test"], len(dataset["test"]))))
picked = pick_demos(dataset["train"]["text"], dataset["train"]["label"], verbalizer, shots_per_class, seed)
demos = [(shorten(text, cfg["words"] // 2), word) for text, word in picked]  # the question keeps its full length
zero = hard_prompt_eval(lm, lm_tokenizer, test_hard["text"], test_hard["label"], TEMPLATES[best_template], verbalizer,
                        words=cfg["words"], progress=True)
few = hard_prompt_eval(lm, lm_tokenizer, test_hard["text"], test_hard["label"], TEMPLATES[best_template], verbalizer,
                       demos=demos, words=cfg["words"], progress=True)
majority_hard = majority_baseline(dataset["train"]["label"], test_hard["label"])
hard = pd.DataFrame({"majority class": majority_hard, "zero-shot": zero, f"few-shot ({len(demos)} demos)": few}).T
print(f"{len(test_hard)} test abstracts; classes predicted: zero-shot {len(set(zero['preds']))}, few-shot {len(set(few['preds']))}")
print(f"macro-F1 vs the majority class ({majority_hard['macro_f1']:.3f}): "
      f"zero-shot {zero['macro_f1'] - majority_hard['macro_f1']:+.3f}, few-shot {few['macro_f1'] - majority_hard['macro_f1']:+.3f}")
hard[["accuracy", "macro_f1"]].astype(float).round(3)

# %% [markdown]
# The result swings with the wording and the demonstrations; section 6 puts these numbers beside the trained
# soft prompts. (At the `smoke` and `cpu` profiles the hard prompts see only the first `hard_test` test
# abstracts, to keep the LM's run short; the `gpu` profile scores the whole test split.)
#
# ## 2. What `peft` adds to a model
#
# `peft` wraps a model: `get_peft_model(model, config)` freezes every weight of the model and adds the method's
# own trainable parameters. **Prompt tuning** (Lester et al. 2021) adds a table of `num_virtual_tokens` input
# vectors, prepended to the word embeddings; **p-tuning** (Liu et al. 2021) produces those vectors with a small
# MLP; **prefix tuning** (Li & Liang 2021) adds a key and a value vector per virtual token to *every* layer's
# attention. For classification peft also trains the new head (a copy of `classifier`, in `modules_to_save`).
# Here are the three wraps, and every parameter that trains in each:

# %%
# NBVAL_CHECK_OUTPUT
n_virtual = num_virtual_tokens
configs = {
    "prompt tuning": PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n_virtual),
    "prefix tuning": PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n_virtual),
    "p-tuning": PromptEncoderConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n_virtual, encoder_hidden_size=128),
}
wrapped = {name: get_peft_model(cc.load_model(model_name, "classifier", num_labels=num_labels), config)
           for name, config in configs.items()}
for name, peft_model in wrapped.items():
    print(f"{name}: {type(peft_model).__name__} trains")
    for pname, p in peft_model.named_parameters():
        if p.requires_grad:
            print(f"    {pname:55s} {tuple(p.shape)}")

# %% [markdown]
# The virtual-token table of prompt tuning is `(num_virtual_tokens, hidden size)`; prefix tuning's is
# `(num_virtual_tokens, 2 × layers × hidden size)`, one key and one value per layer, reshaped into each layer's
# attention cache; p-tuning's table feeds a three-layer MLP (hidden size → 128 → 128 → hidden size). So the
# trainable counts follow from the sizes:

# %%
# NBVAL_CHECK_OUTPUT
mc = wrapped["prompt tuning"].get_base_model().config
d, n_layers, h = mc.hidden_size, mc.num_hidden_layers, 128
head_params = d * num_labels + num_labels                               # the classifier peft trains too
by_hand = {"prompt tuning": n_virtual * d + head_params,
           "prefix tuning": n_virtual * 2 * n_layers * d + head_params,
           "p-tuning": n_virtual * d + (d * h + h) + (h * h + h) + (h * d + d) + head_params}
for name, peft_model in wrapped.items():
    trainable, total = peft_model.get_nb_trainable_parameters()
    print(f"{name:14s} by hand {by_hand[name]:>8,} · peft's count {trainable:>8,} · equal: {by_hand[name] == trainable}")

# %% [markdown]
# **Prompt tuning by hand.** The wrapped model looks up the word embeddings, puts the virtual-token table in
# front, extends the attention mask with ones (and the token types with zeros) and runs the unchanged encoder.
# Note what this means for a BERT classifier: its pooler reads position 0, which is now the first virtual
# token, not `[CLS]`.

# %%
soft_model = wrapped["prompt tuning"].eval()
inner = soft_model.get_base_model()                      # the frozen classifier inside the wrapper
tokenizer = cc.load_tokenizer(model_name)
texts = list(dataset["validation"]["text"][:4])
batch = tokenizer(texts, truncation=True, max_length=cfg["max_length"], padding=True, return_tensors="pt")
with torch.no_grad():
    by_peft = soft_model(**batch).logits
    prompt_table = soft_model.prompt_encoder["default"].embedding.weight          # (n_virtual, d)
    word_vectors = inner.base_model.embeddings.word_embeddings(batch["input_ids"]) # (batch, tokens, d)
    ones = torch.ones(len(texts), n_virtual, dtype=batch["attention_mask"].dtype)
    extra = {"token_type_ids": torch.cat([torch.zeros_like(ones), batch["token_type_ids"]], 1)} \
        if "token_type_ids" in batch else {}
    by_hand_logits = inner(inputs_embeds=torch.cat([prompt_table.expand(len(texts), -1, -1), word_vectors], 1),
                          attention_mask=torch.cat([ones, batch["attention_mask"]], 1), **extra).logits
print("prompt table:", tuple(prompt_table.shape), "· input with the prompt:",
      (len(texts), n_virtual + word_vectors.shape[1], d))

# %%
# NBVAL_CHECK_OUTPUT
print("prompt prepended by hand == peft's forward (max |diff| < 1e-5):",
      (by_hand_logits - by_peft).abs().max().item() < 1e-5)

# %% [markdown]
# ## 3. LoRA, written by hand
#
# LoRA (Hu et al. 2021) leaves a weight matrix W (d_out × d_in) frozen and learns a low-rank update:
# W' = W + (α/r)·B·A, with A (r × d_in) and B (d_out × r). A starts random and B at zero, so W' = W at the
# start; only A and B train: r·(d_in + d_out) numbers per adapted matrix, 2·r·d for a square d × d one, instead
# of d_in·d_out. Here it is as a module wrapping one `nn.Linear`:

# %%
class LoRALinear(nn.Module):
    """y = W x + b + (alpha / r) · B A x: a frozen linear layer plus a trainable rank-r update."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=5 ** 0.5)                   # A random (as peft does) …
        self.B = nn.Parameter(torch.zeros(base.out_features, r))       # … B zero: W' = W at the start
        self.scaling = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * (x @ self.A.T @ self.B.T)


# %% [markdown]
# We put it on ONE projection, the query of layer 0, and give peft the same job: `LoraConfig` with
# `target_modules=["query"]` and `layers_to_transform=[0]`. Then we copy our A and B into peft's `lora_A` and
# `lora_B`. With B = 0 every comparison would hold trivially, so we first move B as training would.

# %%
rank, alpha = 4, 8
torch.manual_seed(seed)
plain = cc.load_model(model_name, "classifier", num_labels=num_labels)
hand = copy.deepcopy(plain)
attention0 = hand.base_model.encoder.layer[0].attention.self
attention0.query = LoRALinear(attention0.query, rank, alpha)
hand.requires_grad_(False)
attention0.query.A.requires_grad_(True)
attention0.query.B.requires_grad_(True)
with torch.no_grad():
    attention0.query.B.normal_(std=0.02)                               # as if training had moved B
lora_model = get_peft_model(copy.deepcopy(plain), LoraConfig(task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=alpha,
                                                             lora_dropout=0.0, target_modules=["query"],
                                                             layers_to_transform=[0])).eval()
lora_count = lora_model.get_nb_trainable_parameters()[0]             # before merging: LoRA's A, B and the head
peft_query = lora_model.get_base_model().base_model.encoder.layer[0].attention.self.query
print(type(peft_query).__module__ + "." + type(peft_query).__name__, "· scaling", peft_query.scaling["default"])
with torch.no_grad():
    peft_query.lora_A["default"].weight.copy_(attention0.query.A)
    peft_query.lora_B["default"].weight.copy_(attention0.query.B)
    x = hand.base_model.embeddings(input_ids=batch["input_ids"])       # a real input of layer 0
    layer_diff = (attention0.query(x) - peft_query(x)).abs().max().item()
    hand_logits = hand.eval()(**batch).logits
    model_diff = (hand_logits - lora_model(**batch).logits).abs().max().item()
    merged = lora_model.merge_and_unload()                             # W' = W + (α/r)·B·A written into W
    merged_query = merged.base_model.encoder.layer[0].attention.self.query
    w_prime = attention0.query.base.weight + attention0.query.scaling * attention0.query.B @ attention0.query.A
    weight_diff = (merged_query.weight - w_prime).abs().max().item()
    merged_diff = (merged(**batch).logits - hand_logits).abs().max().item()
d_in, d_out = attention0.query.base.in_features, attention0.query.base.out_features
lora_by_hand = rank * (d_in + d_out)
print(type(merged_query).__name__, "after merge_and_unload: a plain layer again")

# %%
# NBVAL_CHECK_OUTPUT
print("hand LoRA layer == peft's LoRA layer (max |diff| < 1e-5):", layer_diff < 1e-5)
print("whole classifier, hand vs peft (max |diff| < 1e-5):", model_diff < 1e-5)
print("merged weight == W + (α/r)·B·A (max |diff| < 1e-5):", weight_diff < 1e-5)
print("merge_and_unload() model == hand model (max |diff| < 1e-5):", merged_diff < 1e-5)
print(f"LoRA parameters by hand: r·(d_in + d_out) = {rank}·({d_in} + {d_out}) = {lora_by_hand:,} (= 2·r·d)")
print("= trainable in the hand module:", sum(p.numel() for p in hand.parameters() if p.requires_grad) == lora_by_hand)
print("= peft's count minus the head:", lora_count - head_params == lora_by_hand)

# %%
print(f"max |diff|: layer {layer_diff:.1e} · model {model_diff:.1e} · merged weight {weight_diff:.1e} · "
      f"merged model {merged_diff:.1e}")

# %% [markdown]
# The full query matrix has d_in·d_out numbers; LoRA's update has r·(d_in + d_out), a share of
# r·(d_in + d_out)/(d_in·d_out). Merged, it costs nothing at inference: the layer is a plain `nn.Linear` again.
#
# ## 4. One frozen model, many tasks
#
# The source text's argument for prompts: the model stays untouched, so **one** copy of it can serve many tasks,
# each bringing only its prompt. Here are two tasks on the same frozen MiniLM encoder: the medical **topic**
# (this notebook's data) and **domain identification**, medical abstract vs general English (WikiText-2
# paragraphs), built below. peft keeps one prompt table per adapter on the same wrapped model; `set_adapter`
# switches between them. Each task reads the `[CLS]` position (right after the virtual tokens) with its own
# small linear head.

# %%
soft_data = subset(dataset, cfg["train_size"], seed)                  # the training examples of every soft prompt
wiki = load_wikitext2("paragraph")
domain_train = domain_identification(soft_data["train"]["text"], wiki["validation"]["text"],
                                     min(cfg["domain_per_class"], len(soft_data["train"])), seed=seed,
                                     words=cfg["words"] * 2)
domain_test = domain_identification(dataset["test"]["text"], wiki["test"]["text"],
                                    min(cfg["domain_test_per_class"], len(dataset["test"])), seed=seed,
                                    words=cfg["words"] * 2)
tasks = {"topic": {"train": (list(soft_data["train"]["text"]), list(soft_data["train"]["label"])),
                   "test": (list(dataset["test"]["text"]), list(dataset["test"]["label"])), "classes": num_labels},
         "domain": {"train": domain_train, "test": domain_test, "classes": 2}}
print({name: {"train": len(t["train"][0]), "test": len(t["test"][0]), "classes": t["classes"]}
       for name, t in tasks.items()})

# %%
backbone = cc.load_model(model_name, "encoder")
before = {name: w.clone() for name, w in backbone.state_dict().items()}
task_config = PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=n_virtual)
shared = get_peft_model(backbone, task_config, adapter_name="topic")   # the first task's prompt table …
shared.add_adapter("domain", task_config)                              # … and the second's, same backbone
torch.manual_seed(seed)
heads = {name: nn.Linear(d, t["classes"]) for name, t in tasks.items()}
task_scores = {}
for name, t in tasks.items():
    losses = train_task_prompt(shared, name, heads[name], tokenizer, *t["train"], epochs=cfg["task_epochs"],
                               lr=cfg["prompt_lr"], batch_size=cfg["batch_size"], max_length=cfg["max_length"],
                               seed=seed)
    task_scores[name] = evaluate_task_prompt(shared, name, heads[name], tokenizer, *t["test"],
                                             max_length=cfg["max_length"])
    majority_task = majority_baseline(t["train"][1], t["test"][1])
    print(f"{name}: {len(losses)} steps, loss {losses[0]:.3f} → {losses[-1]:.3f} · test macro-F1 "
          f"{task_scores[name]['macro_f1']:.3f} (majority class {majority_task['macro_f1']:.3f})")

# %% [markdown]
# At inference the same object serves both tasks: `set_adapter` swaps the prompt table, and the task's head
# reads the result. The backbone's weights must not have moved:

# %%
# NBVAL_CHECK_OUTPUT
print("one backbone object for both tasks:", shared.get_base_model() is backbone)
print("prompt tables:", {name: tuple(shared.prompt_encoder[name].embedding.weight.shape) for name in tasks})
print("backbone weights unchanged by training both tasks:",
      all(torch.equal(before[name], w) for name, w in backbone.state_dict().items()))
again = {name: evaluate_task_prompt(shared, name, heads[name], tokenizer,  # swap in the other order, first 64 texts
                                    *(column[:64] for column in tasks[name]["test"]), max_length=cfg["max_length"])
         for name in ["domain", "topic"]}
print("swapping back and forth gives the same predictions:",
      all(again[name]["preds"] == task_scores[name]["preds"][:64] for name in tasks))

# %% [markdown]
# **Exercise 1 (predict, then measure).** What does one task cost on disk? Before running the next cells,
# predict how many times larger a fully fine-tuned copy of the classifier (all its weights, float32) is than the
# topic task's saved prompt table and head.

# %%
predicted_ratio = None  # your prediction: full copy bytes / topic task bytes

# %%
with tempfile.TemporaryDirectory() as folder:
    save_quietly(shared, folder)                                       # save_pretrained: a sub-folder per adapter
    for name, task_head in heads.items():
        save_file(task_head.state_dict(), str(Path(folder) / name / "head.safetensors"))
    task_bytes = {name: folder_bytes(Path(folder) / name) for name in tasks}
    full_copy = cc.load_model(model_name, "classifier", num_labels=num_labels)
    full_bytes = save_quietly(full_copy, Path(folder) / "full")        # what full fine-tuning stores per task
storage = pd.DataFrame([{"stored per task": f"{name} prompt + head", "bytes": b} for name, b in task_bytes.items()]
                       + [{"stored per task": "fully fine-tuned copy", "bytes": full_bytes}])
storage["× smaller than a full copy"] = (full_bytes / storage["bytes"]).round(0).astype(int)
storage

# %%
check_storage_ratio(predicted_ratio, full_bytes, task_bytes["topic"], n_virtual * d, d * num_labels + num_labels)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count the numbers each stores (4 bytes each); the full copy is every weight of the classifier
predicted_ratio = cc.count_parameters(full_copy)["total"] / (n_virtual * d + d * num_labels + num_labels)
check_storage_ratio(predicted_ratio, full_bytes, task_bytes["topic"], n_virtual * d, d * num_labels + num_labels)

# %% [markdown]
# ## 5. Training soft prompts for the topic
#
# Now the wraps of section 2 are trained on the topic task with the package's training loop (notebook 06), one
# run per method, like for like. All encoder weights stay frozen, so the task's state is tiny, and the encoder's
# behaviour on other inputs cannot change (no forgetting by construction). Text initialisation starts the prompt
# table from the embeddings of a task description instead of random vectors.
#
# **Learning rates.** Soft prompts need rates 100–1000× larger than full fine-tuning: Lester et al. use 0.3;
# peft's examples use 1e-3 (p-tuning) to 1e-2 (prefix); full fine-tuning uses ~5e-5. With a full-FT rate a soft
# prompt barely moves and the model ends up predicting the majority class (peft issue 2642).

# %%
# NBVAL_CHECK_OUTPUT
print(pd.Series(SUGGESTED_LR, name="suggested lr").to_string())

# %%
soft_data = subset(dataset, cfg["train_size"], seed)
tokenizer = cc.load_tokenizer(model_name)
soft_task = make_task(soft_data, model_name, cfg["max_length"], tokenizer=tokenizer)  # resolved and tokenised once
drift_probe = forgetting_probe(soft_task, general_sentences(32, seed=seed))  # the original encoder's view, once
budget = dict(seed=seed, epochs=cfg["epochs"], batch_size=cfg["batch_size"], patience=None)  # the same for every run
soft = {}
prompt_config = TrainConfig(lr=cfg["prompt_lr"], **budget)
soft["prompt tuning, random init"] = run_strategy("prompt_tuning", soft_task, prompt_config, drift_probe,
                                                  num_virtual_tokens=num_virtual_tokens)
soft["prompt tuning, text init"] = run_strategy("prompt_tuning_text", soft_task, prompt_config, drift_probe,
                                                num_virtual_tokens=num_virtual_tokens)
soft["p-tuning"] = run_strategy("p_tuning", soft_task, TrainConfig(lr=SUGGESTED_LR["p_tuning"], **budget), drift_probe,
                                num_virtual_tokens=num_virtual_tokens)
soft["prefix tuning"] = run_strategy("prefix_tuning", soft_task, TrainConfig(lr=SUGGESTED_LR["prefix_tuning"], **budget),
                                     drift_probe, num_virtual_tokens=num_virtual_tokens)
soft["full fine-tuning"] = run_strategy("full", soft_task, TrainConfig(lr=cfg["full_lr"], **budget), drift_probe)

# %% [markdown]
# **Did it train?** Every soft-prompt run must predict more than one class and beat the majority class.
# `assert_trained` raises an `AssertionError` otherwise, so in a pipeline a silent failure cannot slip into a
# results table (the seconds-long `smoke` profile, too small to learn anything, only reports). Here we catch the
# error to show every method's verdict, flag a failure loudly with ❌ and leave that method out of the comparison.

# %%
did_not_train = []
for name, run in soft.items():
    try:
        print("✅", assert_trained(name, run["test_preds"], run["macro_f1"], majority["macro_f1"],
                                  strict=PROFILE != "smoke"))
    except AssertionError as err:
        did_not_train.append(name)
        print(f"❌ DID NOT TRAIN: {err}")

# %% [markdown]
# **Prompt length.** Lester et al. found gains beyond ~20 tokens marginal (default 100). Text-initialised prompts
# of several lengths, everything else equal:

# %%
lengths = []
for n in cfg["prompt_lengths"]:
    run = soft["prompt tuning, text init"] if n == num_virtual_tokens else run_strategy(
        "prompt_tuning_text", soft_task, prompt_config, drift_probe, num_virtual_tokens=n)
    lengths.append({"virtual tokens": n, "macro_f1": run["macro_f1"], "trainable": run["trainable"],
                    "seconds": run["seconds"]})
if num_virtual_tokens not in cfg["prompt_lengths"]:
    run = soft["prompt tuning, text init"]
    lengths.append({"virtual tokens": num_virtual_tokens, "macro_f1": run["macro_f1"], "trainable": run["trainable"],
                    "seconds": run["seconds"]})
lengths = pd.DataFrame(lengths).sort_values("virtual tokens")
lengths.round(3)

# %% [markdown]
# ## 6. Everything side by side, and the capacity gap

# %%
rows = [{"method": "majority class", "macro_f1": majority["macro_f1"], "accuracy": majority["accuracy"],
         "trainable": 0, "seconds": 0.0}]
rows += [{"method": name, "macro_f1": r["macro_f1"], "accuracy": r["accuracy"], "trainable": r["trainable"],
          "seconds": r["seconds"], "cka": r["forgetting"]["cka"]} for name, r in soft.items()]
summary = pd.DataFrame(rows)
full_f1 = soft["full fine-tuning"]["macro_f1"]
best_soft = max((k for k in soft if k != "full fine-tuning" and k not in did_not_train), key=lambda k: soft[k]["macro_f1"])
gap = full_f1 - soft[best_soft]["macro_f1"]
fig, ax = plt.subplots(figsize=(8, 3.8))
sns.barplot(data=summary, y="method", x="macro_f1", ax=ax, color="slateblue")
for i, r in summary.iterrows():
    ax.text(r.macro_f1 + 0.005, i, f"{int(r.trainable):,} trainable", va="center", fontsize=8)
ax.set(xlabel="test macro-F1", ylabel="", title=f"Soft prompts vs full fine-tuning ({len(soft_data['train'])} training examples)")
plt.tight_layout()
plt.show()
print(f"best soft prompt: {best_soft} · gap to full fine-tuning: {gap:+.3f} macro-F1")
summary.round(4)

# %% [markdown]
# **Read the printed gap with its budget in mind.** A positive gap is what Lester et al. (2021) call the
# **capacity limit** of prompt tuning on a small model: a few thousand input numbers cannot reshape an encoder's
# features the way full fine-tuning can; they found the gap large for small T5 models and closing only near
# 11 billion parameters. A negative gap means the budget is too small for full fine-tuning itself (notebook 06
# trains it on more data). The reading below is chosen from this run's numbers:

# %%
soft_cka = min(soft[k]["forgetting"]["cka"] for k in soft if k != "full fine-tuning")
if gap > 0.02:
    print(f"full fine-tuning is ahead by {gap:.3f} macro-F1: the capacity gap, at this budget")
elif gap < -0.02:
    print(f"the best soft prompt is ahead by {-gap:.3f} macro-F1: at this budget ({len(soft_data['train'])} examples, "
          f"{cfg['epochs']} epochs, {cfg['max_length']} tokens) full fine-tuning is undertrained; "
          f"re-run with `-p train_size 1859 -p epochs 4` (or the `gpu` profile) to measure the gap where both have enough data")
else:
    print(f"the best soft prompt and full fine-tuning are within 0.02 macro-F1 ({gap:+.3f}): no gap at this budget")
print(f"soft prompts left the encoder's general-text representations at CKA ≥ {soft_cka:.3f} "
      f"(full fine-tuning: {soft['full fine-tuning']['forgetting']['cka']:.3f})")

# %% [markdown]
# ## Exercises
#
# Exercise 1 (predict, then measure) is in section 4.
#
# **2.** Compute log P(" cancer" | prompt) for the prompt above by hand from the LM's logits.

# %%
logp_cancer = None  # your answer: a float
check_word_logprob(logp_cancer, lm, lm_tokenizer, prompt, "cancer")

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: log-softmax of the last position's logits, read at the first token of " cancer"
with torch.no_grad():
    logits = lm(**lm_tokenizer(prompt, return_tensors="pt").to(device)).logits[0, -1].float()
logp_cancer = float(logits.log_softmax(-1)[lm_tokenizer(" cancer", add_special_tokens=False)["input_ids"][0]])
check_word_logprob(logp_cancer, lm, lm_tokenizer, prompt, "cancer")

# %% [markdown]
# **3.** How many numbers does a soft prompt of 20 virtual tokens hold for MiniLM (hidden size 384)?

# %%
prompt_numbers = None  # your answer: an integer
check_prompt_params(prompt_numbers, 20, 384)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: one trainable vector of hidden_size numbers per virtual token
prompt_numbers = 20 * 384
check_prompt_params(prompt_numbers, 20, 384)

# %% [markdown]
# **4.** What macro-F1 does always predicting the majority class get on the test split?

# %%
majority_f1 = None  # your answer: a float
check_majority_f1(majority_f1, dataset["test"]["label"], majority["predicted_class"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: F1 of the majority class (recall 1, precision = its share), averaged over the classes that occur
labels = pd.Series(list(dataset["test"]["label"]))
share = (labels == majority["predicted_class"]).mean()
majority_f1 = (2 * share / (1 + share)) / len(set(labels) | {majority["predicted_class"]})
check_majority_f1(majority_f1, dataset["test"]["label"], majority["predicted_class"])

# %% [markdown]
# **5 (open).** Re-run prompt tuning with `prompt_lr=5e-5` (a full fine-tuning rate) and watch the did-it-train
# check.
#
# ## Summary
#
# * Hard prompts need no training: a template, a verbalizer and label-word log-probabilities; the template
#   matters, so choose it on validation data.
# * `get_peft_model` freezes the model and adds the method's parameters: a virtual-token table (prompt tuning),
#   one key and value per layer and token (prefix tuning), or a table fed through an MLP (p-tuning); their
#   counts follow from the sizes. LoRA adds r·(d_in + d_out) numbers per adapted matrix and merges away.
# * Soft prompts train a few thousand numbers with large learning rates; always compare with the majority class.
# * One frozen encoder serves several tasks: each task stores only its prompt table and head.
# * What this run measured (computed from the tables above):

# %%
print(f"* a task's prompt + head: {task_bytes['topic']:,} bytes on disk, {full_bytes / task_bytes['topic']:,.0f}× "
      f"less than a fully fine-tuned copy ({full_bytes / 2**20:.1f} MiB)")
print(f"* two tasks on one frozen encoder: topic macro-F1 {task_scores['topic']['macro_f1']:.3f}, domain macro-F1 "
      f"{task_scores['domain']['macro_f1']:.3f}")
print(f"* best soft prompt ({best_soft}) vs full fine-tuning: {-gap:+.3f} macro-F1; hard prompts (zero-shot) "
      f"{zero['macro_f1']:.3f} on the first {len(test_hard)} test abstracts")

# %%
results = {
    "notebook": "08_prompt_tuning", "profile": PROFILE, "seed": seed, "device": device.type, "model_name": model_name,
    "lm_name": lm_name, "settings": cfg, "train_size": len(soft_data["train"]),
    "majority": {"macro_f1": majority["macro_f1"], "accuracy": majority["accuracy"]}, "did_not_train": did_not_train,
    "hard_prompts": {"best_template": best_template, "templates": search.to_dict("records"),
                     "zero_shot": {"macro_f1": zero["macro_f1"], "accuracy": zero["accuracy"]},
                     "few_shot": {"macro_f1": few["macro_f1"], "accuracy": few["accuracy"]},
                     "test_examples": len(test_hard)},
    "soft_prompts": {name: {"macro_f1": r["macro_f1"], "accuracy": r["accuracy"], "trainable": r["trainable"],
                            "total": r["total"], "seconds": r["seconds"], "peak_memory_mb": r["peak_memory_mb"],
                            "one_class": r["one_class"], "lr": r["lr"], "forgetting": r["forgetting"]}
                     for name, r in soft.items()},
    "prompt_lengths": lengths.to_dict("records"),
    "peft_counts": {name: {"by_hand": by_hand[name], "peft": m.get_nb_trainable_parameters()[0]}
                    for name, m in wrapped.items()},
    "prompt_by_hand_equal": bool((by_hand_logits - by_peft).abs().max().item() < 1e-5),
    "lora": {"r": rank, "alpha": alpha, "layer_diff": layer_diff, "model_diff": model_diff, "weight_diff": weight_diff,
             "merged_diff": merged_diff, "params_by_hand": lora_by_hand, "peft_params": lora_count - head_params},
    "multitask": {name: {"macro_f1": task_scores[name]["macro_f1"], "accuracy": task_scores[name]["accuracy"],
                         "bytes": task_bytes[name]} for name in tasks} | {"full_copy_bytes": full_bytes},
    "best_soft": best_soft, "gap_to_full": gap,
    "test": {"macro_f1": soft["prompt tuning, text init"]["macro_f1"], "accuracy": soft["prompt tuning, text init"]["accuracy"]},
    "params": {"trainable": soft["prompt tuning, text init"]["trainable"], "total": soft["prompt tuning, text init"]["total"]},
    "peak_memory_mb": soft["prompt tuning, text init"]["peak_memory_mb"],
    "forgetting": soft["prompt tuning, text init"]["forgetting"],
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("08_prompt_tuning", results)
summary[["method", "macro_f1", "trainable"]].round(3)
