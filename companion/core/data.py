"""Data registry and loaders: medical abstracts (domain), WikiText-2 (general), and a learner's own file."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .errors import CourseError, shown

from .files import as_written, is_missing, load_source
from .paths import DATA_DIR, cache_dir

if TYPE_CHECKING:
    from datasets import DatasetDict

DATA_ENV = "COURSE_DATA_DIR"
SPLITS = ("train", "validation", "test")
MERGE_CASE_ENV = "COURSE_MERGE_LABEL_CASE"  # 1: labels that differ only by case are one class (`-p merge_label_case`)
# One split per data set, whatever a run's own seed: every notebook, sweep run and seed sees the same train /
# validation / test texts, so results pair across notebooks and seeds vary only what trains.
SPLIT_SEED = 42


def registry() -> dict:
    """The data registry (`data/registry.json`): files, URLs, sha256, licence and citation per data set."""
    return json.loads((DATA_DIR / "registry.json").read_text())


def sha256sum(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, expected: str) -> Path:
    """Return `path` if its checksum matches, else raise a CourseError that says how to fix it."""
    actual = sha256sum(path)
    if actual != expected:
        raise CourseError(f"checksum mismatch for {path.name} (in {path.parent.name}/): sha256 {actual[:12]}… but the "
                          f"registry expects {expected[:12]}…. The file is damaged or another version: delete it "
                          f"(the loader downloads it again) or point {DATA_ENV} to a folder with the original files.")
    return path


def _download(url: str, dest: Path) -> None:
    """Download `url` to `dest` atomically (temporary file, then rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(response, out)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def data_file(name: str, filename: str) -> Path:
    """Find one registered file: $COURSE_DATA_DIR, then data/cache, then download; the sha256 is always checked."""
    entries = registry()
    if name not in entries:
        raise CourseError(f"unknown data set {name!r}: registered are {', '.join(entries)}")
    entry = entries[name]
    meta = entry["files"][filename]
    looked = []
    env = os.environ.get(DATA_ENV)
    if env:
        for candidate in (Path(env) / entry["folder"] / filename, Path(env) / filename):
            looked.append(str(candidate))
            if candidate.exists():
                return _verified(candidate, meta["sha256"])
    cached = cache_dir("data") / entry["folder"] / filename
    if cached.exists():
        return _verified(cached, meta["sha256"])
    try:
        _download(meta["url"], cached)
    except Exception as err:  # offline, DNS, HTTP error: one clear message instead
        where = f"{DATA_ENV}={env!r}" if env else f"{DATA_ENV} is not set"
        raise CourseError(f"data file {entry['folder']}/{filename} not found ({where}) and the download from "
                          f"{meta['url']} failed ({type(err).__name__}). Fix: set {DATA_ENV} to the folder that "
                          f"holds {entry['folder']}/ (e.g. ../shared/datasets), or connect to the internet.") from None
    return _verified(cached, meta["sha256"])


@lru_cache(maxsize=8)
def _registered_ok(name: str, where: str | None) -> None:
    """Every file of a registered data set, found (or downloaded) and verified; cached per data folder."""
    for filename in registry()[name]["files"]:
        data_file(name, filename)


def check_registered(name: str) -> None:
    """Check (before any kernel starts) that a registered data set a notebook needs is there and intact."""
    _registered_ok(name, os.environ.get(DATA_ENV))


def comparable_text(text: str) -> str:
    """The form in which two texts count as the same: surrounding whitespace stripped, runs of whitespace made one
    space, case folded ("A  b " and "a b" are one text)."""
    return " ".join(str(text).split()).casefold()


def drop_conflicting_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Drop repeats (the same text up to whitespace and case, with the same label; the first copy is kept), and
    every copy of a text that carries conflicting labels; report the counts."""
    before = len(frame)
    keyed = frame.assign(_key=frame["text"].map(comparable_text))
    keyed = keyed[~keyed.duplicated(subset=["_key", "label"])]
    labels_per_text = keyed.groupby("_key")["label"].nunique()
    conflicting = set(labels_per_text[labels_per_text > 1].index)
    kept = keyed[~keyed["_key"].isin(conflicting)].drop(columns="_key").reset_index(drop=True)
    report = {"rows_in": before, "exact_repeats_dropped": before - len(keyed), "conflicting_texts": len(conflicting),
              "conflicting_rows_dropped": len(keyed) - len(kept), "rows_out": len(kept)}
    return kept, report


def split_frame(frame: pd.DataFrame, label_names: list[str], seed: int = SPLIT_SEED,
                val_size: float = 0.15, test_size: float = 0.15) -> DatasetDict:
    """Stratified, seeded train/validation/test split of a (text, label) frame into a DatasetDict."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from sklearn.model_selection import train_test_split

    try:
        rest, test = train_test_split(frame, test_size=test_size, stratify=frame["label"], random_state=seed)
        train, val = train_test_split(rest, test_size=val_size / (1 - test_size), stratify=rest["label"],
                                      random_state=seed)
    except ValueError as err:
        raise CourseError(f"cannot make a stratified split ({err}): each class needs at least ~7 examples") from None
    features = Features({"text": Value("string"), "label": ClassLabel(names=label_names),
                         "label_name": Value("string")})
    parts = {}
    for split, part in zip(SPLITS, (train, val, test)):
        part = part.sort_index().assign(label_name=lambda f: [label_names[i] for i in f["label"]])
        parts[split] = Dataset.from_pandas(part[["text", "label", "label_name"]], features=features,
                                           preserve_index=False)
    return DatasetDict(parts)


def load_medical_abstracts(seed: int = SPLIT_SEED, val_size: float = 0.15, test_size: float = 0.15) -> DatasetDict:
    """The 2,888 medical abstracts, conflicting duplicates removed, split stratified (report in `.report`)."""
    raw = pd.read_csv(data_file("medical_abstracts", "medical_tc_test.csv"))
    names = pd.read_csv(data_file("medical_abstracts", "medical_tc_labels.csv"))
    label_names = [str(n) for n in names.sort_values("condition_label")["condition_name"]]
    frame = pd.DataFrame({"text": raw["medical_abstract"].astype(str), "label": raw["condition_label"].astype(int) - 1})
    frame, report = drop_conflicting_duplicates(frame)
    dataset = split_frame(frame, label_names, seed, val_size, test_size)
    dataset.report = report  # how many rows the de-duplication removed
    return dataset


def read_labelled_texts(source: str, text_column: str = "text",
                        label_column: str = "label") -> tuple[pd.DataFrame, dict]:
    """A learner's file as a (text, label-as-written) frame; rows with an empty text or no label are dropped,
    counted in the returned report and printed. Every problem is one CourseError that says what to change."""
    table, name = load_source(source)
    if table.empty and not len(table.columns):
        raise CourseError(f"{name} is empty: put one labelled text per row, with columns {text_column!r} and "
                          f"{label_column!r}")
    missing = [c for c in (text_column, label_column) if c not in table.columns]
    if missing:
        raise CourseError(f"column(s) {missing} not in {name}; its columns are [{shown(table.columns, 8)}]: "
                          f"pass text_column=… and label_column=… to name the right ones")
    if table.empty:
        raise CourseError(f"{name} has a header but no rows: add one labelled text per row")
    no_text = table[text_column].map(is_missing)
    no_label = table[label_column].map(is_missing) & ~no_text
    kept = table[~no_text & ~no_label]
    report = {"rows_read": len(table), "empty_text_dropped": int(no_text.sum()),
              "missing_label_dropped": int(no_label.sum())}
    if kept.empty:
        raise CourseError(f"all {len(table)} rows of {name} have an empty {text_column!r} or no {label_column!r}: "
                          f"is {text_column!r} the column with the texts? (columns: [{shown(table.columns, 8)}])")
    if len(kept) < len(table):
        print(f"{name}: dropped {len(table) - len(kept)} of {len(table)} rows ({report['empty_text_dropped']} with an "
              f"empty {text_column!r}, {report['missing_label_dropped']} without a {label_column!r})", flush=True)
    frame = pd.DataFrame({"text": kept[text_column].astype(str).to_numpy(),
                          "label": [as_written(v).strip() for v in kept[label_column]]})  # "neo " is "neo"
    return frame, report


def merge_from_environment() -> bool:
    """Whether COURSE_MERGE_LABEL_CASE asks to merge labels that differ only by case (`-p merge_label_case true`)."""
    return os.environ.get(MERGE_CASE_ENV, "0").strip().lower() not in ("", "0", "false", "no")


def merge_label_case(labels: pd.Series, name: str, merge: bool) -> pd.Series:
    """Labels that differ only by case ('Neo', 'neo'): a CourseError naming them, or (merge) each group spelt as its
    most frequent member."""
    groups: dict[str, list[str]] = {}
    for label in labels.value_counts().index:  # the most frequent spelling first
        groups.setdefault(label.casefold(), []).append(label)
    clashes = [" / ".join(sorted(group)) for group in groups.values() if len(group) > 1]
    if clashes and not merge:
        raise CourseError(f"labels in {name} differ only by case: {shown(clashes)}. Write each label one way, or pass "
                          f"-p merge_label_case true to make each group one class (its most frequent spelling)")
    return labels.map(lambda label: groups[label.casefold()][0])


def check_classes(counts: pd.Series, name: str, val_size: float = 0.15, test_size: float = 0.15) -> None:
    """At least two classes, each with enough rows for a stratified train/validation/test split."""
    if len(counts) == 0:
        raise CourseError(f"no rows of {name} are left after dropping repeated texts and texts with conflicting "
                          f"labels: are text_column and label_column the right way round?")
    if len(counts) < 2:
        raise CourseError(f"{name} has a single class ({counts.index[0]!r}): a classifier needs at least two "
                          f"different labels")
    needed = math.ceil(1 / min(val_size, test_size))
    few = {str(k): int(v) for k, v in counts.items() if v < needed}
    if few:
        listed = ", ".join(f"{k!r}: {v}" for k, v in list(few.items())[:5])
        more = f", … ({len(few)} classes in all)" if len(few) > 5 else ""
        raise CourseError(f"too few rows per class in {name}: {{{listed}{more}}}; each class needs at least {needed} "
                          f"(after dropping empty and duplicate rows) so that validation and test get one: add "
                          f"examples, or merge or remove these classes")


def _looks_swapped(texts: pd.DataFrame, name: str, text_column: str, label_column: str) -> None:
    """Stop when the label column holds (nearly) one value per row and the text column few: swapped columns."""
    labels, distinct_texts = texts["label"].nunique(), texts["text"].nunique()
    if labels > max(20, len(texts) // 2) and distinct_texts < labels:
        raise CourseError(f"{label_column!r} in {name} has {labels} different labels in {len(texts)} rows, and "
                          f"{text_column!r} only {distinct_texts} different texts: are the columns swapped? Pass "
                          f"text_column={label_column!r} and label_column={text_column!r}")


def prepare_texts(source: str, text_column: str = "text", label_column: str = "label", val_size: float = 0.15,
                  test_size: float = 0.15, merge_case: bool | None = None) -> tuple[pd.DataFrame, list[str], dict]:
    """Read, clean, de-duplicate and check a learner's labelled texts: (frame with label ids, names, report).
    Labels are stripped of surrounding whitespace; labels that differ only by case are an error unless
    `merge_case` (default: the COURSE_MERGE_LABEL_CASE environment variable, set by `-p merge_label_case`)."""
    merge_case = merge_from_environment() if merge_case is None else merge_case
    texts, report = read_labelled_texts(source, text_column, label_column)
    name = Path(source).name
    _looks_swapped(texts, name, text_column, label_column)
    texts["label"] = merge_label_case(texts["label"], name, merge_case)
    label_names = sorted(texts["label"].unique())
    index = {label: i for i, label in enumerate(label_names)}
    frame = pd.DataFrame({"text": texts["text"], "label": texts["label"].map(index)})
    frame, dedup = drop_conflicting_duplicates(frame)
    if dedup["exact_repeats_dropped"] or dedup["conflicting_rows_dropped"]:
        print(f"{name}: dropped {dedup['exact_repeats_dropped']} repeated row(s) (the same text up to spaces and case) "
              f"and {dedup['conflicting_rows_dropped']} row(s) of {dedup['conflicting_texts']} text(s) with "
              f"conflicting labels, before the split; {dedup['rows_out']} rows left", flush=True)
    check_classes(frame["label"].map(dict(enumerate(label_names))).value_counts(), name, val_size, test_size)
    return frame, label_names, {**report, **dedup}


@lru_cache(maxsize=16)
def _checked(source: str, mtime: float, text_column: str, label_column: str, merge_case: bool) -> dict:
    """prepare_texts' report and class names, cached per file version (a sweep checks one file for many runs)."""
    _, names, report = prepare_texts(source, text_column, label_column, merge_case=merge_case)
    return {**report, "label_names": names}


def check_data(source: str, text_column: str = "text", label_column: str = "label",
               merge_case: bool | None = None) -> dict:
    """The checks of load_text_classification without the split (run before a kernel starts); its report, with
    the class names the file gives (`label_names`). `merge_case`: as in prepare_texts."""
    path = Path(source).expanduser()
    merge = merge_from_environment() if merge_case is None else merge_case
    return dict(_checked(source, path.stat().st_mtime if path.is_file() else 0.0, text_column, label_column, merge))


def load_text_classification(source: str, text_column: str = "text", label_column: str = "label",
                             seed: int = SPLIT_SEED, val_size: float = 0.15, test_size: float = 0.15,
                             merge_case: bool | None = None) -> DatasetDict:
    """A learner's own labelled texts (local file or hub id when online) as the same split DatasetDict; the
    report (`.report`) counts the rows dropped as empty, unlabelled, repeated or conflicting. `merge_case`: labels
    that differ only by case are one class (default: `-p merge_label_case`, else an error names them)."""
    if source == "medical_abstracts":
        return load_medical_abstracts(seed, val_size, test_size)
    frame, label_names, report = prepare_texts(source, text_column, label_column, val_size, test_size, merge_case)
    dataset = split_frame(frame, label_names, seed, val_size, test_size)
    dataset.report = report
    return dataset


def detokenize_wikitext(text: str) -> str:
    """Undo WikiText's word-level tokenisation (` @-@ `, ` , `, ` 's`) so a subword LM sees normal text."""
    text = text.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    text = re.sub(r" ([.,;:!?%)\]}])", r"\1", text)
    text = re.sub(r"([(\[{$]) ", r"\1", text)
    text = re.sub(r" (n't|'s|'re|'ve|'m|'ll|'d)\b", r"\1", text)
    text = re.sub(r'" (.*?) "', r'"\1"', text)
    return text.strip()


def _wikitext_units(lines: list[str], unit: str, detokenize: bool) -> list[str]:
    """Group WikiText lines into articles or paragraphs (headings dropped from paragraphs)."""
    clean = (lambda s: detokenize_wikitext(s)) if detokenize else (lambda s: s.strip())
    heading = re.compile(r"^ = [^=].* = $")
    if unit == "paragraph":
        return [clean(line) for line in lines if line.strip() and not line.strip().startswith("=")]
    articles: list[list[str]] = []
    for line in lines:
        if heading.match(line.rstrip("\n")):
            articles.append([])
        if line.strip() and articles:
            articles[-1].append(clean(line))
    return ["\n".join(article) for article in articles]


def load_wikitext2(unit: str = "paragraph", detokenize: bool = True) -> DatasetDict:
    """WikiText-2 validation and test text as a DatasetDict with a `text` column (paragraphs or articles)."""
    from datasets import Dataset, DatasetDict

    if unit not in ("paragraph", "article"):
        raise CourseError(f"unknown unit {unit!r}: use 'paragraph' or 'article'")
    parts = {}
    for split, filename in (("validation", "valid.txt"), ("test", "test.txt")):
        lines = data_file("wikitext2", filename).read_text(encoding="utf-8").splitlines()
        parts[split] = Dataset.from_dict({"text": _wikitext_units(lines, unit, detokenize)})
    return DatasetDict(parts)
