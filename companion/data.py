"""Data registry and loaders: medical abstracts (domain), WikiText-2 (general), and a learner's own file."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .errors import CourseError
from .paths import DATA_DIR, cache_dir

DATA_ENV = "COURSE_DATA_DIR"
SPLITS = ("train", "validation", "test")


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


def drop_conflicting_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Drop exact repeats, and every copy of a text that carries conflicting labels; report the counts."""
    before = len(frame)
    frame = frame.drop_duplicates(subset=["text", "label"])
    labels_per_text = frame.groupby("text")["label"].nunique()
    conflicting = set(labels_per_text[labels_per_text > 1].index)
    kept = frame[~frame["text"].isin(conflicting)].reset_index(drop=True)
    report = {"rows_in": before, "exact_repeats_dropped": before - len(frame) , "conflicting_texts": len(conflicting),
              "conflicting_rows_dropped": len(frame) - len(kept), "rows_out": len(kept)}
    return kept, report


def split_frame(frame: pd.DataFrame, label_names: list[str], seed: int = 42,
                val_size: float = 0.15, test_size: float = 0.15) -> DatasetDict:
    """Stratified, seeded train/validation/test split of a (text, label) frame into a DatasetDict."""
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


def load_medical_abstracts(seed: int = 42, val_size: float = 0.15, test_size: float = 0.15) -> DatasetDict:
    """The 2,888 medical abstracts, conflicting duplicates removed, split stratified (report in `.report`)."""
    raw = pd.read_csv(data_file("medical_abstracts", "medical_tc_test.csv"))
    names = pd.read_csv(data_file("medical_abstracts", "medical_tc_labels.csv"))
    label_names = [str(n) for n in names.sort_values("condition_label")["condition_name"]]
    frame = pd.DataFrame({"text": raw["medical_abstract"].astype(str), "label": raw["condition_label"].astype(int) - 1})
    frame, report = drop_conflicting_duplicates(frame)
    dataset = split_frame(frame, label_names, seed, val_size, test_size)
    dataset.report = report  # how many rows the de-duplication removed
    return dataset


def _read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, JSON Lines, JSON or Parquet file into a DataFrame."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=suffix == ".jsonl")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise CourseError(f"unsupported file type {suffix!r} for {path.name}: use .csv, .tsv, .jsonl, .json or .parquet")


def load_text_classification(source: str, text_column: str = "text", label_column: str = "label",
                             seed: int = 42, val_size: float = 0.15, test_size: float = 0.15) -> DatasetDict:
    """A learner's own labelled texts (local file or hub id when online) as the same split DatasetDict."""
    if source == "medical_abstracts":
        return load_medical_abstracts(seed, val_size, test_size)
    path = Path(source).expanduser()
    if path.exists():
        table = _read_table(path)
    elif path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".parquet"):
        raise CourseError(f"data file {source!r} not found: check the path (relative paths start in the notebook's folder)")
    else:
        try:
            from datasets import load_dataset

            table = load_dataset(source, split="train").to_pandas()
        except Exception as err:
            raise CourseError(f"cannot load data set {source!r}: pass 'medical_abstracts', a local .csv/.jsonl/"
                              f".parquet file, or a hub id while online ({type(err).__name__})") from None
    missing = [c for c in (text_column, label_column) if c not in table.columns]
    if missing:
        raise CourseError(f"column(s) {missing} not in {Path(source).name}; its columns are {list(table.columns)}: "
                          f"pass text_column=… and label_column=… to name the right ones")
    table = table[[text_column, label_column]].dropna()
    label_names = sorted(str(v) for v in table[label_column].unique())
    index = {name: i for i, name in enumerate(label_names)}
    frame = pd.DataFrame({"text": table[text_column].astype(str),
                          "label": [index[str(v)] for v in table[label_column]]})
    frame, report = drop_conflicting_duplicates(frame)
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
    if unit not in ("paragraph", "article"):
        raise CourseError(f"unknown unit {unit!r}: use 'paragraph' or 'article'")
    parts = {}
    for split, filename in (("validation", "valid.txt"), ("test", "test.txt")):
        lines = data_file("wikitext2", filename).read_text(encoding="utf-8").splitlines()
        parts[split] = Dataset.from_dict({"text": _wikitext_units(lines, unit, detokenize)})
    return DatasetDict(parts)
