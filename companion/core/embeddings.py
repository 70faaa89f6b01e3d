"""Sentence embeddings from an encoder (mean pooling, as all-MiniLM-L6-v2 was trained), batched with progress."""
from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each sequence, ignoring padding."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@torch.no_grad()
def sentence_embeddings(model: nn.Module, tokenizer, texts: list[str], batch_size: int = 32,
                        max_length: int = 128, normalize: bool = True, progress: bool = False) -> torch.Tensor:
    """Embed texts with an encoder (or a classifier's encoder): one L2-normalised vector per text."""
    encoder = getattr(model, "base_model", model)
    device = next(encoder.parameters()).device
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="embedding", mininterval=5):
        batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        vectors = mean_pool(hidden.float(), batch["attention_mask"])
        chunks.append(nn.functional.normalize(vectors, dim=-1) if normalize else vectors)
    return torch.cat(chunks).cpu()
