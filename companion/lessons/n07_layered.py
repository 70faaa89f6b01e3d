"""Notebook 07's hand-written pieces, measured: the optimiser state that freezing saves, and its exercise check.

    from companion.lessons.n07_layered import optimizer_state_bytes, check_adam_state_prediction
    optimizer.step(); measured = optimizer_state_bytes(optimizer)
"""
from __future__ import annotations

import torch



def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held in the optimiser's state (AdamW: two moments per trained tensor, and a step counter)."""
    return sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t))


def adam_state_explanation(measured: int, trainable: int, total: int, tensors: int, bytes_per_number: int = 4) -> str:
    """Where AdamW's state bytes come from, with the usual wrong counts beside the measurement."""
    moments = 2 * trainable * bytes_per_number
    return (f"Measured {measured:,} B = 2 moments (exp_avg, exp_avg_sq) × {trainable:,} trainable numbers × "
            f"{bytes_per_number} B = {moments:,} B, + a step counter per trained tensor ({tensors} × "
            f"{(measured - moments) // max(tensors, 1)} B). Counting every parameter instead of the trainable ones "
            f"would give {2 * total * bytes_per_number:,} B; one moment only, {trainable * bytes_per_number:,} B")


