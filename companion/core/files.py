"""Reading a learner's labelled file: CSV/TSV, JSON lines, JSON or Parquet, a folder of them, or a hub id, with one
clear error for each way a file can be unusable (not UTF-8, a broken JSON line, a device, an empty name)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import CourseError

DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")

def not_utf8(path: Path) -> CourseError:
    """The message for a file that is not UTF-8 text, with the line of its first bad byte."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        where = ""
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        where = f" (byte {raw[err.start]:#04x} on line {line})"
    return CourseError(f"{path.name} is not UTF-8 text{where}: save it as UTF-8 (in a spreadsheet: 'CSV UTF-8'), "
                       f"or convert it, e.g. iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name}")


def read_json_lines(path: Path) -> pd.DataFrame:
    """A JSON Lines file as a DataFrame of Python values (labels stay as written); a bad line names its number."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise CourseError(f"{path.name} line {number} is not valid JSON ({err}): each line must be one object "
                              f'such as {{"text": "...", "label": "..."}}') from None
        if not isinstance(record, dict):
            raise CourseError(f"{path.name} line {number} is not a JSON object: each line must be one object "
                              f'such as {{"text": "...", "label": "..."}}')
        records.append(record)
    return pd.DataFrame(records, dtype=object)


def read_json(path: Path) -> pd.DataFrame:
    """A JSON file (a list of objects, or an object of columns) as a DataFrame of Python values."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        return pd.DataFrame(data, dtype=object)
    except json.JSONDecodeError as err:
        raise CourseError(f"{path.name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except (ValueError, TypeError) as err:
        raise CourseError(f"{path.name} is not a table: use a list of objects such as "
                          f'[{{"text": "...", "label": "..."}}] ({err})') from None


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, TSV, JSON Lines, JSON or Parquet file into a DataFrame; labels keep the form they have there."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, encoding="utf-8")
        if suffix == ".jsonl":
            return read_json_lines(path)
        if suffix == ".json":
            return read_json(path)
        if suffix == ".parquet":
            return pd.read_parquet(path, dtype_backend="numpy_nullable")
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except pd.errors.EmptyDataError:
        raise CourseError(f"{path.name} is empty: put a header line (text,label) and one labelled text per row") \
            from None
    except (pd.errors.ParserError, OSError, ValueError) as err:
        raise CourseError(f"cannot read {path.name} ({type(err).__name__}: {str(err).splitlines()[0][:200]})") \
            from None
    raise CourseError(f"unsupported file type {suffix!r} for {path.name}: use .csv, .tsv, .jsonl, .json or .parquet")


def is_missing(value: Any) -> bool:
    """Whether a cell is empty: None, NaN, pd.NA or blank text."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def as_written(value: Any) -> str:
    """A label as the user wrote it: 1 stays '1' (never '1.0'), text stays text."""
    if isinstance(value, float) and value.is_integer() and not isinstance(value, bool):
        return str(int(value))  # only from sources without a text form (hub data sets): 1.0 was stored as a number
    return str(value)


def load_source(source: str) -> tuple[pd.DataFrame, str]:
    """The raw table of a local file or a hub data set, and a short name for messages."""
    if not source.strip():
        raise CourseError("data is empty (''): pass 'medical_abstracts', a .csv/.tsv/.jsonl/.json/.parquet file or a "
                          "hub id")
    path = Path(source).expanduser()
    if path.is_file():
        return read_table(path), path.name
    if path.exists():
        what = "a folder" if path.is_dir() else "not a regular file (a device, pipe or socket)"
        raise CourseError(f"data {source!r} is {what}: pass a .csv/.tsv/.jsonl/.json/.parquet file")
    if path.suffix.lower() in DATA_SUFFIXES:
        raise CourseError(f"data file {source!r} not found: check the path (from the command line relative to where "
                          f"you run it; in a notebook relative to the notebook's folder)")
    try:
        from datasets import load_dataset

        table = load_dataset(source, split="train").to_pandas()
    except Exception as err:
        raise CourseError(f"cannot load data set {source!r}: pass 'medical_abstracts', a local .csv/.jsonl/"
                          f".parquet file, or a hub id while online ({type(err).__name__})") from None
    return table.convert_dtypes(), source
