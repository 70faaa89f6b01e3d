"""Device choice, dtype and seeding repeatability."""
import pytest
import torch

import companion as cc
from companion.core.device import device_report


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


AMX_CPU = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
ZEN4_CPU = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_bf16\n"
AVX2_CPU = "processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n"


def test_cpu_bf16_features_read_the_flags_line():
    from companion.core.device import cpu_bf16_features

    assert cpu_bf16_features(AMX_CPU) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_features(ZEN4_CPU) == ["avx512_bf16"]
    assert cpu_bf16_features(AVX2_CPU) == [] and cpu_bf16_features("") == []


def test_native_bf16_follows_the_measured_rule():
    """bf16 autocast is picked where it was measured faster than float32 (FAST_CPU_BF16), never on AVX2 only."""
    from companion.core.device import FAST_CPU_BF16, cpu_bf16_native

    assert cpu_bf16_native(AMX_CPU) and not cpu_bf16_native(AVX2_CPU)
    assert cpu_bf16_native(ZEN4_CPU) == ("avx512_bf16" in FAST_CPU_BF16)


def test_pick_precision_auto_forced_and_rejected(monkeypatch):
    import companion.core.device as dev
    from companion.core.errors import CourseError

    cpu = torch.device("cpu")
    monkeypatch.setattr(dev, "cpu_bf16_native", lambda cpuinfo=None: True)
    assert dev.pick_precision("auto", "cpu", cpu) == "bf16"
    assert dev.pick_precision("auto", "smoke", cpu) == "fp32"  # the tests print the same numbers everywhere
    assert dev.pick_precision("fp32", "cpu", cpu) == dev.pick_precision("no", "cpu", cpu) == "fp32"
    monkeypatch.setattr(dev, "cpu_bf16_native", lambda cpuinfo=None: False)
    assert dev.pick_precision("auto", "cpu", cpu) == "fp32"
    assert dev.pick_precision("bf16", "smoke", cpu) == "bf16"  # forced: whatever the profile
    with pytest.raises(CourseError, match="unknown precision 'fp16'"):
        dev.pick_precision("fp16")


def test_the_precision_is_a_function_of_profile_device_and_request(monkeypatch, capsys):
    """No process-global state: cc.start prints what the profile trains in, and the protocol carries it."""
    import companion.core.device as dev
    from companion.engine.protocol import protocol

    monkeypatch.delenv("COURSE_FORCE_PROFILE", raising=False)
    monkeypatch.delenv(dev.PRECISION_ENV, raising=False)
    monkeypatch.setattr(dev, "cpu_bf16_native", lambda cpuinfo=None: True)
    cc.start("cpu", precision="bf16")
    assert "training precision: bf16 autocast" in capsys.readouterr().out
    assert dev.training_precision("auto", "cpu") == "bf16" and dev.training_precision("auto", "smoke") == "fp32"
    assert protocol("cpu").config(1e-4, 0, 100).mixed_precision == "bf16"
    assert dev.default_precision() == "fp32"  # no profile (library use, unit tests): float32 on CPUs
    monkeypatch.setenv(dev.PRECISION_ENV, "fp32")  # the variable overrides `auto` for a whole run
    cc.start("cpu")
    assert "training precision: fp32" in capsys.readouterr().out
    assert dev.training_precision("auto", "cpu") == "fp32" and protocol("cpu").config(1e-4, 0, 100).mixed_precision == "fp32"
    assert not hasattr(dev, "_chosen")


def test_autocast_runs_products_in_bf16_only_when_asked():
    from companion.core.device import autocast

    layer = torch.nn.Linear(4, 4)
    with autocast("bf16", torch.device("cpu")):
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast("fp32", torch.device("cpu")):
        assert layer(torch.randn(2, 4)).dtype == torch.float32


def test_device_report_names_the_training_precision():
    assert device_report(torch.device("cpu"))["training_precision"].split()[0] in ("fp32", "bf16")
