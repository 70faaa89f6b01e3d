"""Data registry: splits disjoint, stratified and stable; conflicting duplicates removed; clear errors."""
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

import companion as cc
from companion.core import data as D

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def test_registry_lists_sources_checksums_licences():
    reg = D.registry()
    assert set(reg) == {"medical_abstracts", "wikitext2"}
    for entry in reg.values():
        assert entry["licence"] == "CC BY-SA 3.0" and entry["citation"]
        for meta in entry["files"].values():
            assert meta["url"].startswith("https://") and len(meta["sha256"]) == 64


def test_medical_splits_are_disjoint_stratified_and_deduplicated(medical):
    sizes = {s: len(medical[s]) for s in medical}
    assert sizes == {"train": 1859, "validation": 399, "test": 399}
    assert medical.report["conflicting_texts"] == 113 and medical.report["rows_out"] == 2657
    texts = {s: set(medical[s]["text"]) for s in medical}
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    assert sum(len(t) for t in texts.values()) == 2657  # every text once: no duplicates left
    shares = {s: {k: v / sizes[s] for k, v in Counter(medical[s]["label"]).items()} for s in medical}
    for label, share in shares["train"].items():
        assert abs(shares["test"][label] - share) < 0.01 and abs(shares["validation"][label] - share) < 0.01
    assert medical["train"].features["label"].names[0] == "neoplasms"
    row = medical["train"][0]
    assert row["label_name"] == medical["train"].features["label"].names[row["label"]]


def test_splits_are_stable_across_calls_and_change_with_seed(medical):
    again = D.load_medical_abstracts()
    assert again["test"]["text"] == medical["test"]["text"]
    other = D.load_medical_abstracts(seed=7)
    assert other["test"]["text"] != medical["test"]["text"]


def test_wikitext2_paragraphs_and_articles_are_detokenised():
    wiki = D.load_wikitext2()
    assert len(wiki["validation"]) > 1500 and len(wiki["test"]) > 1500
    text = " ".join(wiki["validation"]["text"][:200])
    assert " @-@ " not in text and " , " not in text
    articles = D.load_wikitext2("article")
    assert 50 < len(articles["validation"]) < 80
    assert D.detokenize_wikitext("a 1 @,@ 000 @-@ year , old ( test ) man 's") == "a 1,000-year, old (test) man's"


def _copy_shared(tmp_path: Path) -> Path:
    target = tmp_path / "datasets"
    shutil.copytree(SHARED, target)
    for f in target.rglob("*"):
        f.chmod(0o644 if f.is_file() else 0o755)
    return target


def test_bad_checksum_gives_clear_error(tmp_path, monkeypatch):
    data_dir = _copy_shared(tmp_path)
    with open(data_dir / "medical_abstracts" / "medical_tc_test.csv", "a") as handle:
        handle.write("1,tampered\n")
    monkeypatch.setenv("COURSE_DATA_DIR", str(data_dir))
    with pytest.raises(cc.CourseError, match="checksum mismatch for medical_tc_test.csv.*delete it"):
        D.load_medical_abstracts()


def test_missing_file_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    reg = D.registry()
    reg["wikitext2"]["files"]["valid.txt"]["url"] = "http://127.0.0.1:9/valid.txt"  # nothing listens there
    monkeypatch.setattr(D, "registry", lambda: reg)
    with pytest.raises(cc.CourseError, match="set COURSE_DATA_DIR"):
        D.load_wikitext2()


def test_download_path_verifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    reg = D.registry()
    for name in ("valid.txt", "test.txt"):
        reg["wikitext2"]["files"][name]["url"] = (SHARED / "wikitext-2" / name).as_uri()
    monkeypatch.setattr(D, "registry", lambda: reg)
    wiki = D.load_wikitext2()
    cached = tmp_path / "cache" / "data" / "wikitext-2" / "valid.txt"
    assert cached.exists() and len(wiki["validation"]) > 1500
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == reg["wikitext2"]["files"]["valid.txt"]["sha256"]


def test_own_csv_gives_the_same_split_shape(tmp_path):
    rows = [{"abstract": f"text number {i} about {'heart' if i % 2 else 'brain'}", "topic": "cardio" if i % 2 else "neuro"}
            for i in range(60)]
    rows.append({"abstract": "text number 0 about brain", "topic": "cardio"})  # a conflicting duplicate
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ds = D.load_text_classification(str(path), text_column="abstract", label_column="topic")
    assert set(ds) == {"train", "validation", "test"} and sum(len(p) for p in ds.values()) == 59
    assert ds["train"].features["label"].names == ["cardio", "neuro"]
    assert ds.report["conflicting_texts"] == 1
    with pytest.raises(cc.CourseError, match="columns are \\['abstract', 'topic'\\]"):
        D.load_text_classification(str(path), text_column="text", label_column="topic")
    with pytest.raises(cc.CourseError, match="not found"):
        D.load_text_classification(str(tmp_path / "nope.csv"))


# ---- issue 23: labels as the learner means them, no train/test leak --------------------------------------------

def _labelled_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A text,label CSV (quoted, so surrounding spaces stay)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows([("text", "label"), *rows])
    return path


def test_labels_are_stripped_and_case_variants_are_an_error_or_merged(tmp_path, monkeypatch):
    """"neo", "neo " and "Neo" were three classes: 06 exited 0 reporting 9 classes where the user had 3."""
    rows = [(f"text {c} {i}", label) for c in ("neo", "cardio") for i, label in
            enumerate([c, f"{c} ", f" {c}"] * 7)]
    spaced = D.load_text_classification(str(_labelled_csv(tmp_path / "spaced.csv", rows)))
    assert spaced["train"].features["label"].names == ["cardio", "neo"]
    rows += [(f"text upper {i}", "Neo") for i in range(3)]
    path = _labelled_csv(tmp_path / "cased.csv", rows)
    with pytest.raises(cc.CourseError, match="labels in cased.csv differ only by case: 'Neo / neo'.*merge_label_case"):
        D.check_data(str(path))
    merged = D.load_text_classification(str(path), merge_case=True)
    assert merged["train"].features["label"].names == ["cardio", "neo"]  # the most frequent spelling
    monkeypatch.setenv(D.MERGE_CASE_ENV, "1")  # what `-p merge_label_case true` sets for the kernel
    assert D.load_text_classification(str(path))["train"].features["label"].names == ["cardio", "neo"]
    from companion.batch.params import check_parameters, option_environment
    from companion.batch.runner import find_notebook

    monkeypatch.delenv(D.MERGE_CASE_ENV)
    with pytest.raises(cc.CourseError, match="differ only by case"):  # before any kernel starts
        check_parameters(find_notebook("06"), {"data": str(path)})
    given = check_parameters(find_notebook("06"), {"data": str(path), "merge_label_case": "true"})
    assert given["merge_label_case"] is True and option_environment(given) == {D.MERGE_CASE_ENV: "1"}


def test_texts_equal_up_to_spaces_and_case_are_one_text_before_the_split(tmp_path, capsys):
    """23 of a 54-text test split had a copy in train differing only by spaces (42 ignoring case)."""
    rows = []
    for i in range(60):
        label = "a" if i % 2 else "b"
        text = f"Patient {i} presented with   symptom number {i}"
        rows += [(text, label), (f"  {text.upper()} ", label), (text.replace("   ", " "), label)]
    rows += [("patient 0 presented with symptom number 0", "a")]  # the same text with another label: conflicting
    dataset = D.load_text_classification(str(_labelled_csv(tmp_path / "copies.csv", rows)))
    assert dataset.report["exact_repeats_dropped"] == 120 and dataset.report["conflicting_texts"] == 1
    keys = {s: {D.comparable_text(t) for t in dataset[s]["text"]} for s in dataset}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert sum(len(dataset[s]) for s in dataset) == 59
    assert "copies.csv: dropped 120 repeated row(s) (the same text up to spaces and case) and 2 row(s) of 1 text(s) " \
           "with conflicting labels, before the split; 59 rows left" in capsys.readouterr().out


def test_swapped_text_and_label_columns_are_one_clear_error(tmp_path):
    """The label column holding the abstracts gave an IndexError in check_classes."""
    rows = [(label, f"an abstract about topic {i}") for i, label in enumerate(["neo", "cardio", "neuro"] * 40)]
    path = _labelled_csv(tmp_path / "swapped.csv", rows)
    with pytest.raises(cc.CourseError, match="are the columns swapped"):
        D.check_data(str(path))
    with pytest.raises(cc.CourseError, match="no rows of tiny.csv are left"):
        D.check_classes(__import__("pandas").Series([], dtype=int), "tiny.csv")
