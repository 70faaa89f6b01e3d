# %% [markdown]
# # 02 · Cross-entropy
#
# Every model in this course is trained by minimising one number: the cross-entropy between the labels and
# the model's predicted distribution. Classification, causal-LM pretraining, masked-LM pretraining and prompt
# tuning differ only in *which* positions carry a label. This notebook computes the loss by hand and checks
# it against `torch.nn.functional.cross_entropy` and against the loss the models return themselves.
#
# **In this notebook you will**
# 1. derive $-\sum_k y_k\log p_k$ and match it to PyTorch and to a classifier's own `loss` (and its gradient
#    $p-y$ to autograd);
# 2. do the same for a causal LM, where labels are the inputs **shifted by one**;
# 3. connect the loss to perplexity;
# 4. use `ignore_index=-100` to mask padding (causal LM) and unmasked positions (masked LM);
# 5. add label smoothing, and see why the log-softmax must be computed in a numerically stable way.
#
# **Prerequisites:** notebook 01 (chain rule, log-probabilities, perplexity); softmax and logarithms.
# **Study time:** about 60 minutes for a first reading with the exercises.
#
# **Machine time** (kernel start and model loading included) is printed by the last cell and kept in
# `notebooks/results/02_cross_entropy.results.json` (`seconds`); BENCHMARKS.md lists every notebook's with the load the
# machine had when it was measured. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
import math
import random
import time
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

import companion as cc
from companion.lessons.n02_cross_entropy import IGNORE_INDEX, causal_lm_labels, cross_entropy, mask_tokens, naive_log_softmax, shift_for_next_token, stable_log_softmax
from companion.core.data import load_medical_abstracts
from companion.lessons.n01_lm_probability import start_token_id

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch
model_name: str = "minilm"  # encoder for the classifier and masked-LM parts: embedded name, local folder or hub id
lm_name: str = "smollm2"  # causal LM: embedded name, local folder or Hugging Face id
label_smoothing: float = 0.1  # range: [0, 1]; label smoothing epsilon for section 5
mask_prob: float = 0.15  # range: (0, 1); share of tokens masked in the masked-LM example
n_examples: Optional[int] = None  # range: [1, inf); abstracts in the classifier batch; None means the profile default

# %%
cc.check_values("02", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, trains=False)  # resolve the profile, seed, pick the device, start a clock
cfg = cc.settings(PROFILE, {"smoke": {"n_examples": 4, "max_length": 64},
                            "cpu": {"n_examples": 16, "max_length": 128},
                            "gpu": {"n_examples": 64, "max_length": 256}}, n_examples=n_examples)
print("profile:", PROFILE, "| settings:", cfg)

# %% [markdown]
# ## 1. Cross-entropy by hand, for a classifier
#
# A classifier maps an input to logits $z\in\mathbb{R}^K$; the softmax turns them into a distribution
# $p_k=e^{z_k}/\sum_j e^{z_j}$. The cross-entropy between the true distribution $y$ (one-hot on the gold
# class $c$) and $p$ is
#
# $$H(y,p)=-\sum_{k=1}^{K}y_k\log p_k=-\log p_c=-z_c+\log\sum_j e^{z_j},$$
#
# averaged over the batch. It is the negative log-likelihood of the gold label, so minimising it is maximum
# likelihood. We load MiniLM with a fresh 5-class head (random, seeded: this notebook is about the loss, not
# accuracy) and score a batch of medical abstracts.

# %%
medical = load_medical_abstracts()
batch_texts = medical["train"]["text"][: cfg["n_examples"]]
gold = torch.tensor(medical["train"]["label"][: cfg["n_examples"]])
enc_tokenizer = cc.load_tokenizer(model_name)
classifier = cc.load_model(model_name, "classifier", num_labels=5).to(device)
batch = enc_tokenizer(batch_texts, padding=True, truncation=True, max_length=cfg["max_length"], return_tensors="pt").to(device)
with torch.no_grad():
    out = classifier(**batch, labels=gold.to(device))
logits = out.logits.float().cpu()
print("logits:", tuple(logits.shape), "| gold labels:", gold.tolist())

# %%
# NBVAL_CHECK_OUTPUT
p = torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)   # softmax
y = F.one_hot(gold, num_classes=logits.shape[-1]).float()              # one-hot targets
ce_by_hand = (-(y * torch.log(p)).sum(dim=-1)).mean()                   # −Σ y log p, averaged
ce_torch = F.cross_entropy(logits, gold)
ce_model = out.loss.float().cpu()
diff_class = max(abs(float(ce_by_hand - ce_torch)), abs(float(ce_by_hand - ce_model)))
print(f"by hand vs F.cross_entropy vs model.loss: max |diff| < 1e-5: {diff_class < 1e-5}")
print(f"loss ≈ ln(5) for an untrained head: {abs(float(ce_torch) - math.log(5)) < 0.5}")

# %%
print(f"−Σ y log p = {ce_by_hand:.6f} · F.cross_entropy = {ce_torch:.6f} · model loss = {ce_model:.6f} · "
      f"max |diff| = {diff_class:.1e} · ln 5 = {math.log(5):.4f}")

# %% [markdown]
# A useful fact for later notebooks: the gradient of the loss with respect to the logits is simply
# "predicted minus true", $\partial H/\partial z = p - y$ (divided by the batch size for the mean). Autograd
# agrees:

# %%
# NBVAL_CHECK_OUTPUT
z = logits.clone().requires_grad_(True)
F.cross_entropy(z, gold).backward()
grad_by_hand = (p - y) / len(gold)
print(f"autograd = (p − y)/B: {bool(torch.allclose(z.grad, grad_by_hand, atol=1e-6))}")

# %% [markdown]
# ## 2. The causal LM: the same loss on shifted labels
#
# A causal LM is a classifier over the vocabulary at every position: the logits at position $t$ predict token
# $t+1$. With `labels = input_ids`, the model **shifts** internally (drops the last logit and the first label)
# and averages the cross-entropy over all predicted tokens. In a padded batch, the padding must not count:
# its label is set to `-100`, the `ignore_index` of PyTorch's `cross_entropy`:
#
# $$\mathcal L=\frac{1}{|\mathcal M|}\sum_{(b,t)\in\mathcal M}-\log p_\theta(x_{b,t+1}\mid x_{b,\le t}),
#   \qquad \mathcal M=\{(b,t): \text{label}_{b,t+1}\neq-100\}.$$

# %%
# NBVAL_CHECK_OUTPUT
lm_tokenizer = cc.load_tokenizer(lm_name)
lm = cc.load_model(lm_name, "causal-lm").to(device)
start_id = start_token_id(lm_tokenizer)  # SmolLM2 has no BOS: start each text with <|endoftext|> (notebook 01)
prefix = lm_tokenizer.convert_ids_to_tokens(start_id) if start_id is not None else ""
clm_texts = [prefix + t for t in ["The patient was treated with antibiotics.",
                                  "Chest pain radiating to the left arm suggests myocardial infarction.", "Rest."]]
clm = lm_tokenizer(clm_texts, padding=True, return_tensors="pt")
labels = causal_lm_labels(clm["input_ids"], clm["attention_mask"])   # padding → -100
print("attention_mask:\n", clm["attention_mask"])
print("labels (first 8 columns):\n", labels[:, :8])

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    lm_out = lm(**clm.to(device), labels=labels.to(device))
lm_logits = lm_out.logits.float().cpu()
shift_logits, shift_labels = shift_for_next_token(lm_logits, labels)   # position t predicts token t+1
keep = shift_labels != IGNORE_INDEX
log_p = torch.log_softmax(shift_logits, dim=-1)
nll = -log_p.gather(-1, shift_labels.clamp(min=0)[..., None])[..., 0]  # −log p(gold) at every position
clm_by_hand = nll[keep].mean()
clm_torch = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=-100)
diff_clm = max(abs(float(clm_by_hand - clm_torch)), abs(float(clm_by_hand - lm_out.loss.float().cpu())))
print(f"scored tokens: {int(keep.sum())} of {shift_labels.numel()} positions")
print(f"by hand vs F.cross_entropy vs model.loss: max |diff| < 1e-5: {diff_clm < 1e-5}")

# %%
no_shift = F.cross_entropy(lm_logits.reshape(-1, lm_logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
pads_counted = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                               clm["input_ids"][:, 1:].cpu().reshape(-1))
pd.DataFrame({"loss": [float(clm_by_hand), float(lm_out.loss), float(no_shift), float(pads_counted)]},
             index=["by hand (shifted, padding masked)", "model's own loss", "mistake: no shift",
                    "mistake: padding counted"]).assign(perplexity=lambda f: f["loss"].map(math.exp)).round(4)

# %%
print(f"max |diff| hand vs torch vs model (causal LM) = {diff_clm:.1e}")

# %% [markdown]
# Two classic bugs and their symptoms: forgetting the shift asks the model to predict the token it is looking
# at (a nonsense loss), and counting padding trains the model to emit padding and distorts the loss.
#
# ## 3. From loss to perplexity
#
# The causal-LM loss is the mean negative log-likelihood per token (in nats), so perplexity
# (notebook 01) is one exponential away, and bits per token is one division away:
#
# $$\operatorname{PPL}=e^{\mathcal L},\qquad \text{bits/token}=\mathcal L/\ln 2 .$$
#
# Careful when averaging over a batch: the loss is a mean over **tokens**, not over sequences; short
# sequences weigh less. The perplexity of the batch is not the mean of the per-sequence perplexities:

# %%
per_seq_nll = (nll * keep).sum(1) / keep.sum(1)
batch_ppl, mean_seq_ppl = math.exp(float(clm_torch)), float(per_seq_nll.exp().mean())
print("per-sequence perplexity:", [f"{v:.2f}" for v in per_seq_nll.exp().tolist()])
print(f"batch perplexity exp(loss) = {batch_ppl:.2f}, mean of per-sequence perplexities = {mean_seq_ppl:.2f}")
print(f"bits per token = {float(clm_torch) / math.log(2):.3f}")

# %%
# NBVAL_CHECK_OUTPUT
token_weighted = float((per_seq_nll * keep.sum(1)).sum() / keep.sum())
print(f"batch loss = token-weighted mean of the per-sequence losses (within 1e-5): "
      f"{abs(token_weighted - float(clm_torch)) < 1e-5}")
print(f"batch perplexity = mean of per-sequence perplexities: {math.isclose(batch_ppl, mean_seq_ppl, rel_tol=1e-3)}")

# %% [markdown]
# ## 4. Masks for masked-LM labels
#
# BERT-style pretraining hides ~15 % of the tokens (`[MASK]`) and predicts only those; every other position
# has label `-100`, so the loss is the mean over masked positions only. MiniLM ships without its MLM head, so
# we use the usual *tied* output layer (hidden states times the word-embedding matrix) as an untrained head:
# the loss value is meaningless here, the masking arithmetic is the point.

# %%
encoder = classifier.base_model
mlm_text = "Laparoscopic cholecystectomy is the standard treatment of symptomatic gallstones."
enc = enc_tokenizer(mlm_text, return_tensors="pt")
special = torch.tensor(enc_tokenizer.get_special_tokens_mask(enc["input_ids"][0].tolist(), already_has_special_tokens=True))[None]
generator = torch.Generator().manual_seed(seed)
masked_ids, mlm_labels = mask_tokens(enc["input_ids"], enc_tokenizer.mask_token_id, special, mask_prob, generator)
if (mlm_labels == IGNORE_INDEX).all():  # a very short text may draw no mask: mask one token so the demo has a target
    masked_ids, mlm_labels = enc["input_ids"].clone(), torch.full_like(enc["input_ids"], IGNORE_INDEX)
    masked_ids[0, 1], mlm_labels[0, 1] = enc_tokenizer.mask_token_id, enc["input_ids"][0, 1]
print("input :", " ".join(enc_tokenizer.convert_ids_to_tokens(masked_ids[0])))
print("labels:", mlm_labels[0].tolist())

# %%
with torch.no_grad():
    hidden = encoder(input_ids=masked_ids.to(device), attention_mask=enc["attention_mask"].to(device)).last_hidden_state
    mlm_logits = (hidden @ encoder.embeddings.word_embeddings.weight.T).float().cpu()
masked = mlm_labels != IGNORE_INDEX
mlm_torch = F.cross_entropy(mlm_logits.view(-1, mlm_logits.shape[-1]), mlm_labels.view(-1), ignore_index=-100)
mlm_by_hand = -torch.log_softmax(mlm_logits[masked], dim=-1).gather(-1, mlm_labels[masked][:, None]).mean()
diff_mlm = abs(float(mlm_torch - mlm_by_hand))
print(f"{int(masked.sum())} masked of {masked.numel()} positions; F.cross_entropy(ignore_index=-100) = {mlm_torch:.4f}, "
      f"mean over masked positions by hand = {mlm_by_hand:.4f}, |diff| < 1e-5: {diff_mlm < 1e-5}")

# %% [markdown]
# ## 5. Label smoothing
#
# A one-hot target pushes the gold logit towards $+\infty$ (the loss is 0 only at $p_c=1$), which makes
# models over-confident. Label smoothing mixes the one-hot target with the uniform distribution:
#
# $$y^{\text{LS}}_k=(1-\varepsilon)\,y_k+\frac{\varepsilon}{K}
#   \quad\Rightarrow\quad H(y^{\text{LS}},p)=(1-\varepsilon)\,(-\log p_c)+\varepsilon\cdot\frac1K\sum_k(-\log p_k).$$

# %%
# NBVAL_CHECK_OUTPUT
eps = label_smoothing
log_p_cls = torch.log_softmax(logits, dim=-1)
y_ls = (1 - eps) * y + eps / logits.shape[-1]
ls_by_hand = (-(y_ls * log_p_cls).sum(-1)).mean()
ls_formula = ((1 - eps) * -log_p_cls.gather(-1, gold[:, None])[:, 0] + eps * -log_p_cls.mean(-1)).mean()
ls_torch = F.cross_entropy(logits, gold, label_smoothing=eps)
diff_ls = max(abs(float(ls_by_hand - ls_torch)), abs(float(ls_formula - ls_torch)), abs(float(cross_entropy(logits, gold, label_smoothing=eps) - ls_torch)))
print(f"ε = {eps}: smoothed targets vs mixture formula vs F.cross_entropy(label_smoothing) vs companion: max |diff| < 1e-5: {diff_ls < 1e-5}")

# %% [markdown]
# With smoothing, the loss no longer decreases forever as the model grows more confident: it has a minimum
# at a finite margin between the gold logit and the others. With $K=5$ classes, the gold
# logit $m$ above four equal others:

# %%
margins = torch.linspace(0, 12, 121)
curve = []
for e in (0.0, eps):
    for m in margins:
        z = torch.zeros(1, 5); z[0, 0] = m
        curve.append({"margin": float(m), "loss": float(F.cross_entropy(z, torch.tensor([0]), label_smoothing=e)),
                      "label smoothing": f"ε = {e:g}"})
curve = pd.DataFrame(curve).drop_duplicates(["margin", "label smoothing"])  # ε = 0 twice when label_smoothing is 0
best = curve[curve["label smoothing"] == f"ε = {eps:g}"].nsmallest(1, "loss").iloc[0]
fig, ax = plt.subplots(figsize=(6.5, 3))
sns.lineplot(data=curve, x="margin", y="loss", hue="label smoothing", ax=ax)
if eps > 0:
    ax.axvline(best["margin"], color="gray", ls="--")
    title = f"Label smoothing stops the push to infinity (optimum at margin {best['margin']:.1f})"
else:
    title = "Without label smoothing the loss keeps falling as the margin grows"
ax.set(xlabel="gold logit − other logits", title=title)
plt.tight_layout(); plt.show()

# %% [markdown]
# At the optimum the prediction equals the smoothed target: $p_c=1-\varepsilon+\varepsilon/K$ and
# $p_{\text{other}}=\varepsilon/K$, so the best margin is $\ln\frac{1-\varepsilon+\varepsilon/K}{\varepsilon/K}$:

# %%
# NBVAL_CHECK_OUTPUT
K = 5
if eps > 0:
    optimum = math.log((1 - eps + eps / K) / (eps / K))
    print(f"analytic optimum margin = {optimum:.2f}; on the grid: {abs(best['margin'] - optimum) < 0.1}")
else:
    optimum = None  # ε = 0: the loss falls forever, the best margin on the grid is its right end
    print(f"ε = 0: no finite optimum; the grid's best margin is its largest: {best['margin'] == float(margins[-1])}")

# %% [markdown]
# ## 6. Numerically stable log-softmax
#
# Written literally, $\log\frac{e^{z_k}}{\sum_j e^{z_j}}$ overflows: $e^{89}$ is already infinite in float32,
# $e^{12}$ in float16. Since softmax is unchanged by subtracting a constant, subtract $m=\max_j z_j$ first:
#
# $$\log\operatorname{softmax}(z)_k=(z_k-m)-\log\sum_j e^{z_j-m},$$
#
# where every exponent is $\le 0$ and the sum is $\ge 1$: nothing overflows and nothing is $\log 0$. This is the
# *log-sum-exp trick*; `torch.log_softmax` and `F.cross_entropy` use it (which is why you pass logits, not
# probabilities).

# %%
# NBVAL_CHECK_OUTPUT
for name, z in [("float32, small logits", torch.tensor([1.0, 2.0, 3.0])),
                ("float32, logits ~1000", torch.tensor([1000.0, 1001.0, 1002.0])),
                ("float16, logits ~12", torch.tensor([10.0, 11.0, 12.0], dtype=torch.float16))]:
    print(f"{name:22s} naive {naive_log_softmax(z).float().numpy().round(4)}  stable {stable_log_softmax(z).float().numpy().round(4)}"
          f"  torch {torch.log_softmax(z.float(), -1).numpy().round(4)}")
big = torch.randn(4, 1000) * 50 + 500
print("stable = torch.log_softmax on large random logits:", bool(torch.allclose(stable_log_softmax(big), torch.log_softmax(big, -1), atol=1e-4)))

# %% [markdown]
# ## Exercises
#
# Each exercise has a check that says *correct* or *not yet* with a hint. Replace `None` (in a *write the
# mechanism* exercise: complete the function's body), run the cell.
# Solutions are in the collapsed cell below each exercise (click to expand).
#
# **1.** The logits for three classes are `[2.0, 0.5, -1.0]` and the gold class is 0. Compute the
# cross-entropy by hand (a float).

# %%
from companion.checks.n02 import check_clm_labels, check_cross_entropy, check_label_smoothing

ex_logits, ex_target = torch.tensor([2.0, 0.5, -1.0]), 0
ce_answer = None  # your answer: a float
check_cross_entropy(ce_answer, ex_logits, ex_target)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: minus the log-softmax of the gold logit (logsumexp of the logits minus the gold logit)
ce_answer = float(-(ex_logits[ex_target] - torch.logsumexp(ex_logits, dim=0)))
check_cross_entropy(ce_answer, ex_logits, ex_target)

# %% [markdown]
# **2.** Same logits and target, with label smoothing $\varepsilon=0.2$.

# %%
ls_answer = None  # your answer: a float
check_label_smoothing(ls_answer, ex_logits, ex_target, 0.2)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: mix the gold NLL (weight 1 − ε) with the mean NLL over all classes (weight ε)
ex_log_p = torch.log_softmax(ex_logits, dim=0)
ls_answer = float((1 - 0.2) * -ex_log_p[ex_target] + 0.2 * -ex_log_p.mean())
check_label_smoothing(ls_answer, ex_logits, ex_target, 0.2)

# %% [markdown]
# **3.** Build the causal-LM `labels` for this padded batch yourself (a tensor like `input_ids`).

# %%
ex_batch = lm_tokenizer(["Fever and cough.", "Acute appendicitis requires surgery."], padding=True, return_tensors="pt")
labels_answer = None  # your answer: a tensor
check_clm_labels(labels_answer, ex_batch["input_ids"], ex_batch["attention_mask"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: copy input_ids and put -100 where the attention mask marks padding
labels_answer = ex_batch["input_ids"].clone()
labels_answer[ex_batch["attention_mask"] == 0] = -100
check_clm_labels(labels_answer, ex_batch["input_ids"], ex_batch["attention_mask"])

# %% [markdown]
# **4. Write the mechanism.** Complete `masked_cross_entropy(logits, labels)`: `logits` has shape
# `(..., classes)`, `labels` the same leading shape, and a label of `-100` means "not scored" (padding, unmasked
# tokens). Return the mean of $-\log\operatorname{softmax}(z)_{\text{label}}$ over the scored positions only, as
# sections 2 and 4 did, computed stably (section 6). The check runs your function on fresh random inputs (several
# shapes, many ignored positions, logits in the hundreds) against `F.cross_entropy(..., ignore_index=-100)`.

# %%
from companion.checks.n02 import check_masked_ce_function


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean −log softmax(logits)[label] over the positions whose label is not -100."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)  # one row per position
    # 1. keep = labels != -100: which rows count
    # 2. log-probabilities with torch.log_softmax (stable), one row per kept position
    # 3. pick each kept row's gold column, negate, average over the kept rows only
    return None  # replace with the loss (a scalar tensor)


check_masked_ce_function(masked_cross_entropy)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: stable log-softmax per row, read at the gold label of the kept rows, mean over those rows only
def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean −log softmax(logits)[label] over the positions whose label is not -100."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    keep = labels != -100
    log_p = torch.log_softmax(logits[keep].float(), dim=-1)
    return -log_p[torch.arange(len(log_p)), labels[keep]].mean()


check_masked_ce_function(masked_cross_entropy)

# %% [markdown]
# **5. Predict, then measure.** Three texts for SmolLM2: `normal` (a medical sentence), `shuffled` (its words in a
# random order) and `twice` (the sentence written two times in a row). Before you run the experiment below, rank
# them by the model's perplexity, lowest first, e.g. `["normal", "shuffled", "twice"]`. Reason from the loss: it is
# a *mean* over the tokens of a text. What does the second copy of `twice` cost, once the first copy is in the
# context? What does shuffling take away? Shuffling is random, so the experiment shuffles the sentence several times
# and ranks `shuffled` by the median; the range over the shuffles is printed as its noise.

# %%
from companion.checks import check_prediction
from companion.lessons.n01_lm_probability import model_loss

order_prediction = None  # your prediction: a list of the three names, lowest perplexity first

# %%
base_text = "Chest pain radiating to the left arm suggests myocardial infarction."
shuffles = []
for offset in range(5):  # five shuffles: how much the ranking of `shuffled` depends on the draw
    shuffled_words = base_text.split()
    random.Random(seed + offset).shuffle(shuffled_words)
    shuffles.append(math.exp(model_loss(lm, lm_tokenizer, " ".join(shuffled_words))))
text_ppl = {"normal": math.exp(model_loss(lm, lm_tokenizer, base_text)),
            "shuffled": float(pd.Series(shuffles).median()),
            "twice": math.exp(model_loss(lm, lm_tokenizer, f"{base_text} {base_text}"))}
measured_order = sorted(text_ppl, key=text_ppl.get)
print(", ".join(f"{name}: PPL {value:.1f}" for name, value in text_ppl.items())
      + f" (shuffled: median of {len(shuffles)} shuffles, range {min(shuffles):.1f} to {max(shuffles):.1f})")
above = "every one of them is above" if min(shuffles) > text_ppl["normal"] else "not all of them are above"
order_explanation = (
    f"Measured, lowest first: {' < '.join(measured_order)}; of the {len(shuffles)} shuffles, {above} `normal`. "
    f"The loss is a mean over tokens: in `twice` the second copy can be copied from the context, so if it cost nothing the mean NLL would halve and "
    f"the perplexity would be the square root of `normal`'s, √{text_ppl['normal']:.1f} = "
    f"{math.sqrt(text_ppl['normal']):.1f} (measured {text_ppl['twice']:.1f}); shuffling keeps the words but breaks "
    f"the order the model learned to predict.")
check_prediction(order_prediction, measured_order, "perplexity_order", order_explanation)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: a repeat is copied from the context almost for free (the mean NLL nearly halves: PPL near the square root
# of normal's); a shuffle keeps the words but removes the order every prediction leans on (far above normal)
order_prediction = ["twice", "normal", "shuffled"]
check_prediction(order_prediction, measured_order, "perplexity_order", order_explanation)

# %% [markdown]
# ## Summary
#
# * Cross-entropy with a one-hot target is $-\log p_{\text{gold}}$; by hand, `F.cross_entropy` and the models'
#   own `loss` agree to < 1e-5, for a classifier and for a causal LM (labels shifted by one position).
# * Its gradient with respect to the logits is $p-y$.
# * The causal-LM loss is a mean NLL per token: $\operatorname{PPL}=e^{\mathcal L}$.
# * `-100` labels remove positions from the loss: padding in causal-LM batches, unmasked tokens in masked-LM.
# * Label smoothing mixes in the uniform distribution and gives the loss a finite optimum.
# * Always compute log-probabilities with the log-sum-exp trick (pass logits to the loss).
#
# The numbers of this run are saved for batch runs and sweeps:

# %%
results = {
    "notebook": "02_cross_entropy", "profile": PROFILE, "seed": seed, "model": model_name, "lm": lm_name,
    "device": device.type,
    "classifier": {"examples": len(gold), "loss": float(ce_torch), "abs_diff_hand_vs_torch_vs_model": diff_class},
    "causal_lm": {"tokens": int(keep.sum()), "loss": float(clm_torch), "perplexity": math.exp(float(clm_torch)),
                  "abs_diff_hand_vs_torch_vs_model": diff_clm, "loss_no_shift": float(no_shift),
                  "loss_padding_counted": float(pads_counted)},
    "mlm": {"masked": int(masked.sum()), "abs_diff_hand_vs_torch": diff_mlm},
    "label_smoothing": {"epsilon": eps, "loss": float(ls_torch), "abs_diff": diff_ls, "optimum_margin": optimum},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("02_cross_entropy", results)
pd.json_normalize(results, sep=".").T.rename(columns={0: "value"})
