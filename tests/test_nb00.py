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
