"""Profiles resolve as documented; result JSON is written atomically and cleaned."""
import json

import pytest
import torch

import companion as cc
from companion.core.results import save_results


def test_resolve_profile(monkeypatch):
    monkeypatch.delenv("COURSE_FORCE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cc.resolve_profile("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cc.resolve_profile("auto") == "gpu"
    assert cc.resolve_profile("smoke") == "smoke"
    with pytest.raises(cc.CourseError, match="auto, smoke, cpu, gpu"):
        cc.resolve_profile("fast")
    monkeypatch.setenv("COURSE_FORCE_PROFILE", "smoke")
    assert cc.resolve_profile("cpu") == "smoke"


def test_settings_applies_overrides():
    table = {"smoke": {"steps": 2, "lr": 1e-3}, "cpu": {"steps": 100, "lr": 1e-3}, "gpu": {"steps": 1000, "lr": 1e-3}}
    assert cc.settings("cpu", table, steps=None) == {"steps": 100, "lr": 1e-3}
    assert cc.settings("cpu", table, steps=7)["steps"] == 7
    with pytest.raises(cc.CourseError, match="unknown setting"):
        cc.settings("cpu", table, epochs=3)


def test_save_results_cleans_values(tmp_path):
    path = save_results("99_demo", {"x": torch.tensor(1.5), "nan": float("nan"), "nested": {"y": [1, 2]}}, tmp_path)
    assert path.name == "99_demo.results.json"
    assert json.loads(path.read_text()) == {"x": 1.5, "nan": None, "nested": {"y": [1, 2]}}
    assert not list(tmp_path.glob("*.tmp"))


def test_start_resolves_seeds_and_picks_the_device(monkeypatch):
    import torch

    import companion as cc

    monkeypatch.delenv("COURSE_FORCE_PROFILE", raising=False)
    profile, device, started = cc.start("smoke", seed=3)
    first = torch.rand(2)
    assert profile == "smoke" and device == cc.pick_device() and started > 0
    cc.start("smoke", seed=3)
    assert torch.equal(first, torch.rand(2))  # seeded again: the same numbers
