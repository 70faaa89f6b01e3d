"""Notebook 00 runs end to end with papermill and writes its result JSON."""
import pytest


@pytest.mark.notebook
def test_notebook_00_smoke(smoke_run):
    result = smoke_run("00")
    assert result["profile"] == "smoke" and result["device"] == "cpu"
    assert result["data"]["train"] == 1859 and result["data"]["dedup_conflicting_texts"] == 113
    assert result["models"]["minilm"] == 22_713_216 and result["models"]["smollm2"] == 134_515_008
    assert 0.3 < result["majority_share"] < 0.34
    assert result["similarity_infarction_heart_attack"] > 0.3


@pytest.mark.notebook
def test_a_run_prints_no_kernel_transport_warning(tmp_path):
    """`companion run` (and so `course`, `check` and sweeps, which run notebooks the same way) shows no
    '[IPKernelApp] WARNING | Kernel is running over TCP without encryption' line."""
    import os
    import subprocess
    import sys

    from companion.batch.runner import kernel_options

    assert kernel_options()  # encrypted transport, or the kernel's log at ERROR where CurveZMQ is missing
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", "companion", "run", "00", "-p", "profile", "smoke", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=600, env=env)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console[-3000:]
    assert "without encryption" not in console and "IPKernelApp" not in console, console[-3000:]
