"""Cached artifacts: reused while the fingerprint matches, rebuilt (and said so) when it changes, never half-built."""
from __future__ import annotations

import json
import os
import threading

import pytest

from companion.core.cache import FINGERPRINT, cached_artifact, changed_keys, file_digest, texts_digest
from companion.core.errors import CourseError


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    return tmp_path / "artifacts"


def counting_build(calls: list, text: str = "weights"):
    """A build callback that writes one file and counts its calls."""
    def build(folder):
        calls.append(folder)
        (folder / "model.bin").write_text(text)
    return build


def test_a_matching_fingerprint_is_a_hit_without_building(artifacts, capsys):
    calls = []
    first = cached_artifact("m", {"lr": 2e-4, "steps": (1, 2)}, counting_build(calls))
    second = cached_artifact("m", {"steps": [1, 2], "lr": 2e-4}, counting_build(calls))  # same after JSON
    assert first == second == artifacts / "m" and len(calls) == 1
    assert json.loads((first / FINGERPRINT).read_text()) == {"lr": 2e-4, "steps": [1, 2]}
    assert capsys.readouterr().out.splitlines()[-1] == "cached: artifacts/m"
    cached_artifact("m", {"lr": 2e-4, "steps": [1, 2]}, counting_build(calls), rebuild=True)
    assert len(calls) == 2


def test_a_changed_fingerprint_is_stale_and_the_message_names_the_key(artifacts, capsys):
    calls = []
    cached_artifact("m", {"settings": {"lr": 2e-4, "steps": 30}, "model": "abc"}, counting_build(calls, "old"))
    path = cached_artifact("m", {"settings": {"lr": 1e-4, "steps": 30}, "model": "abc"}, counting_build(calls, "new"))
    line = capsys.readouterr().out.splitlines()[-1]
    assert "stale" in line and "settings.lr" in line and "model" not in line.replace("artifacts/m", "")
    assert len(calls) == 2 and (path / "model.bin").read_text() == "new"
    assert changed_keys({"a": 1}, {"a": 1, "b": 2}) == ["b"]


def test_a_failed_build_leaves_nothing_that_looks_valid(artifacts):
    def crash(folder):
        (folder / "model.bin").write_text("half")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        cached_artifact("m", {"v": 1}, crash)
    assert not (artifacts / "m").exists() and not any(p.is_dir() for p in artifacts.iterdir())
    cached_artifact("m", {"v": 1}, counting_build([], "v1"))
    with pytest.raises(RuntimeError):  # a crash while replacing keeps the previous, valid artifact
        cached_artifact("m", {"v": 2}, crash)
    assert (artifacts / "m" / "model.bin").read_text() == "v1"
    assert json.loads((artifacts / "m" / FINGERPRINT).read_text()) == {"v": 1}


def test_a_leftover_temporary_folder_is_never_returned_and_is_cleaned(artifacts):
    artifacts.mkdir(parents=True)
    leftover = artifacts / ".m.building-x"
    leftover.mkdir()
    (leftover / FINGERPRINT).write_text(json.dumps({"v": 1}))  # as if a crash happened after the last write
    calls = []
    path = cached_artifact("m", {"v": 1}, counting_build(calls))
    assert path == artifacts / "m" and len(calls) == 1 and not leftover.exists()


def test_a_folder_someone_made_is_not_replaced_without_rebuild(artifacts):
    own = artifacts / "mine"
    own.mkdir(parents=True)
    (own / "notes.txt").write_text("keep me")
    with pytest.raises(CourseError, match="rebuild=True"):
        cached_artifact("mine", {"v": 1}, counting_build([]))
    assert (own / "notes.txt").read_text() == "keep me"
    path = cached_artifact("mine", {"v": 1}, counting_build([]), rebuild=True)
    assert not (path / "notes.txt").exists() and (path / "model.bin").exists()
    with pytest.raises(CourseError, match="no folders"):
        cached_artifact("../escape", {"v": 1}, counting_build([]))


def test_parallel_callers_build_once(artifacts):
    calls, results = [], []
    threads = [threading.Thread(target=lambda: results.append(cached_artifact("m", {"v": 1}, counting_build(calls))))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1


def test_digests_follow_content_not_timestamps(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"1234")
    before = file_digest([folder])
    os.utime(folder / "a.bin", (1, 1))
    assert file_digest([folder]) == before  # touched, same bytes: same digest
    (folder / "a.bin").write_bytes(b"1235")
    assert file_digest([folder]) != before
    with pytest.raises(CourseError, match="does not exist"):
        file_digest([tmp_path / "missing"])
    assert texts_digest(["ab", "c"]) != texts_digest(["a", "bc"]) and texts_digest(["x"]) == texts_digest(["x"])


@pytest.mark.slow
def test_adapted_smollm2_is_built_once_per_fingerprint(tmp_path, monkeypatch, capsys):
    """The recipe at a tiny size (the recipe, not its result, is tested): a rate search, the steps, the adapted,
    control and replay runs, per-block losses of each model; a hit the second time, stale when a setting changes."""
    import companion.lessons.n05_adaptation as adaptation
    from companion.core.models import load_model
    from companion.core.paths import cache_dir
    from companion.lessons.n05_adaptation import adaptation_record, adapted_smollm2, causal_dapt

    (tmp_path / "models").symlink_to(cache_dir("models"), target_is_directory=True)  # the dequantised SmolLM2
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    tiny = causal_dapt("smoke", train_blocks=4, holdout_blocks=2, eval_blocks=3, max_steps=1, eval_every=1,
                       rate_candidates=2, rate_extensions=0)
    builds = []
    real = adaptation.search_and_train
    monkeypatch.setattr(adaptation, "search_and_train", lambda *a, **k: builds.append(1) or real(*a, **k))
    path = adapted_smollm2("smoke", progress=False, settings=tiny)
    assert path.name == "smollm2-medical_abstracts-dapt-smoke" and len(builds) == 1
    record = adaptation_record(path)
    assert record["settings"]["max_steps"] == 1 and len(record["rate_search"]) == 2
    assert record["lr"] in [r["lr"] for r in record["rate_search"] if r["chosen"]] and record["steps"] == 1
    assert set(record["block_losses"]) == {"base", "adapted", "control", "replay"}
    assert all(len(sets["domain"]) == 3 and len(sets["general"]) == 3 for sets in record["block_losses"].values())
    assert set(record["final_runs"]) == {"adapted", "control", "replay"} and "Instruct" in record["provenance"]
    assert record["final_runs"]["control"]["steps"] == record["steps"] == record["final_runs"]["replay"]["steps"]
    built = (path / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    again = adapted_smollm2("smoke", progress=False, settings=tiny)
    assert again == path and (path / "model.safetensors").stat().st_mtime_ns == built and len(builds) == 1
    assert capsys.readouterr().out.strip().endswith("cached: artifacts/smollm2-medical_abstracts-dapt-smoke")
    assert load_model(str(path), "causal-lm").config.model_type == "llama"
    class Rebuilt(Exception):
        """Raised where the recipe would start training again: the cache found its artifact stale."""

    monkeypatch.setattr(adaptation, "search_and_train", lambda *a, **k: (_ for _ in ()).throw(Rebuilt()))
    with pytest.raises(Rebuilt):  # stale: a rebuild starts (stopped there, the build itself was tested above)
        adapted_smollm2("smoke", progress=False, settings=causal_dapt("smoke", **{**tiny.__dict__, "lr": 1e-3}))
    assert "settings.lr" in capsys.readouterr().out
