"""The experimental protocol: one per profile, shared by notebooks 06–09 and the strategy sweep, so that a number
means the same thing wherever it is printed.

A comparison is an experiment only when its arms share a budget and each arm trained until validation stopped
improving. The protocol fixes what every arm shares — training subset, length and truncation, batch size, the epoch
cap and the step floor, how often validation is scored, early stopping, class weighting, the compared seeds — and
how learning rates are chosen: on validation, on a seed the comparison never scores, from a geometric grid that is
extended until the best rate is inside it.

    protocol = cc.protocol("cpu")
    config = protocol.config(lr=2e-4, seed=0, n_train=len(task.data["train"]))   # a TrainConfig for one run
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..core.device import training_precision
from ..core.errors import CourseError
from ..core.profiles import resolve_profile
from .training import TrainConfig


@dataclass(frozen=True)
class Protocol:
    """What every compared run of a profile shares (a frozen record: copy it with `replace` to deviate, and say why)."""
    profile: str
    train_size: int | None  # training examples per run (a sample seeded by the run's seed); None: the whole split
    max_length: int  # tokens kept per text, special tokens included
    truncation: str  # head (the opening) or head+tail (the opening and the end)
    batch_size: int
    max_epochs: int  # the epoch cap ...
    min_steps: int  # ... raised on small data to at least this many optimiser steps
    eval_steps: int  # validation is scored every epoch, or every this many steps if an epoch is longer
    patience: int  # stop after this many scorings without a better validation macro-F1 (after the warm-up, and
    #                only once the best score is above the majority class's: a run at that plateau is not converged)
    class_weights: str  # none, or balanced: cross-entropy weighted by inverse class frequency
    eval_size: int | None  # validation and test texts scored (the first of each split); None: all (smoke: a few)
    seeds: tuple[int, ...]  # the seeds a comparison scores
    selection_seed: int  # the seed the rate search trains with: never one of `seeds`
    rate_factor: float = 3.0  # neighbouring candidate rates differ by this factor
    rate_candidates: int = 3  # a search starts with this many rates around the strategy's default
    rate_extensions: int = 3  # at most this many extra rates on either side when the best one is at an edge
    precision: str = "auto"  # training precision (auto: bf16 where the hardware has it natively, beyond smoke)

    def steps_per_epoch(self, n_train: int) -> int:
        """Optimiser steps in one pass over `n_train` examples."""
        return max(1, math.ceil(n_train / self.batch_size))

    def epochs(self, n_train: int) -> int:
        """The epoch cap for a training set of `n_train` examples: max_epochs, or more to reach min_steps."""
        return max(self.max_epochs, math.ceil(self.min_steps / self.steps_per_epoch(n_train)))

    def eval_every(self, n_train: int) -> int | None:
        """Steps between validation scorings: None (each epoch) unless an epoch is longer than eval_steps."""
        per_epoch = self.steps_per_epoch(n_train)
        return None if per_epoch <= self.eval_steps else self.eval_steps

    def config(self, lr: float, seed: int, n_train: int, **overrides: Any) -> TrainConfig:
        """The TrainConfig of one run under this protocol (overrides: e.g. progress=False, plateau=…)."""
        base = TrainConfig(epochs=self.epochs(n_train), batch_size=self.batch_size, lr=lr, patience=self.patience,
                           eval_every=self.eval_every(n_train), class_weights=self.class_weights, seed=seed,
                           mixed_precision=training_precision(self.precision, self.profile))
        return replace(base, **overrides)

    def record(self) -> dict[str, Any]:
        """The protocol as a JSON-friendly dict (stored with every result)."""
        return asdict(self) | {"seeds": list(self.seeds)}

    def describe(self) -> str:
        """One line for a notebook: the budget every compared run shares."""
        size = "all training texts" if self.train_size is None else f"{self.train_size} training texts"
        weights = "class-weighted cross-entropy" if self.class_weights == "balanced" else "plain cross-entropy"
        return (f"protocol `{self.profile}`: {size}, {self.max_length} tokens ({self.truncation}), batch "
                f"{self.batch_size}, at most {self.max_epochs} epochs (at least {self.min_steps} steps on small data), "
                f"validation every epoch or {self.eval_steps} steps, early stopping after {self.patience} scorings "
                f"without progress, {weights}, seeds {', '.join(map(str, self.seeds))}; rates chosen on validation "
                f"at seed {self.selection_seed}")


PROTOCOLS: dict[str, Protocol] = {
    "smoke": Protocol("smoke", train_size=48, max_length=24, truncation="head", batch_size=16, max_epochs=1,
                      min_steps=1, eval_steps=25, patience=2, class_weights="balanced", eval_size=32, seeds=(0, 1),
                      selection_seed=100, rate_candidates=3, rate_extensions=1),
    # cpu: 64 tokens, opening and end, fixed by the time budget (no notebook over 6 min on 2 cores). The length
    # study (sweeps/lengths.yaml, README there; notebook 06 plots it) measured what the cut costs: on validation,
    # 128 and 256 tokens score 0.03 and 0.05 higher, at about 2× and 5× the step time (bench/step_time.py
    # --lengths); 64 tokens of the opening alone are tied with opening + end on validation (higher on test).
    # Changing max_length or truncation here changes every comparison: every sweep must then be re-run
    # (sweep_for refuses the old ones).
    "cpu": Protocol("cpu", train_size=400, max_length=64, truncation="head+tail", batch_size=16, max_epochs=8,
                    min_steps=150, eval_steps=25, patience=2, class_weights="balanced", eval_size=None, seeds=(0, 1, 2, 3, 4),
                    selection_seed=100),
    "gpu": Protocol("gpu", train_size=None, max_length=256, truncation="head+tail", batch_size=32, max_epochs=10,
                    min_steps=300, eval_steps=50, patience=3, class_weights="balanced", eval_size=None, seeds=(0, 1, 2, 3, 4),
                    selection_seed=100),
}


def protocol(profile: str = "auto", **changes: Any) -> Protocol:
    """The protocol of a profile (`auto` resolved), with non-None changes applied (a notebook's parameters)."""
    resolved = resolve_profile(profile)
    if resolved not in PROTOCOLS:
        raise CourseError(f"no protocol for profile {profile!r}: use one of {', '.join(PROTOCOLS)}")
    chosen = PROTOCOLS[resolved]
    unknown = sorted(set(changes) - set(chosen.record()))
    if unknown:
        raise CourseError(f"unknown protocol setting {', '.join(unknown)}: the protocol has {', '.join(chosen.record())}")
    given = {key: value for key, value in changes.items() if value is not None}
    if "seeds" in given:
        given["seeds"] = tuple(given["seeds"])
    return replace(chosen, **given)
