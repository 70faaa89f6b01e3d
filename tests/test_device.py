"""Device choice, dtype and seeding repeatability."""
import torch

import companion as cc
from companion.device import device_report


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert cc.pick_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert cc.pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cc.pick_device().type == "cuda"
    assert cc.pick_device("cpu").type == "cpu"


def test_dtype_is_float32_on_cpu():
    assert cc.pick_dtype(torch.device("cpu")) == torch.float32


def test_seed_everything_repeats_a_training_step():
    def one_step() -> torch.Tensor:
        cc.seed_everything(123)
        layer = torch.nn.Linear(16, 4)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        x, y = torch.randn(8, 16), torch.randint(0, 4, (8,))
        torch.nn.functional.cross_entropy(layer(x), y).backward()
        opt.step()
        return torch.cat([p.detach().flatten() for p in layer.parameters()])

    first, second = one_step(), one_step()
    assert torch.equal(first, second)
    cc.seed_everything(124)
    assert not torch.equal(first, torch.nn.Linear(16, 4).weight.flatten())


def test_device_report_has_versions():
    info = device_report(torch.device("cpu"))
    assert info["device"] == "cpu" and info["torch"].startswith("2.13")
    assert info["dtype"] == "float32"
