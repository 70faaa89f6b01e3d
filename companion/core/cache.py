"""Cached artifacts (an adapted model, a feature table): built once, reused while their inputs are unchanged.

    path = cached_artifact("smollm2-medical_abstracts-dapt-cpu",
                           {"model": file_digest([model_dir]), "texts": texts_digest(texts), "lr": 2e-4},
                           build=lambda folder: model.save_pretrained(folder))

An artifact is a folder under the cache's `artifacts/` holding a `fingerprint.json`: what it was built from
(digests of the input files and texts, the settings), and `contents.json`: the sha256 of every file the build
saved. When the stored fingerprint equals the one asked for and every saved file still has its recorded digest,
the folder is returned as it is; a file changed since (a damaged disk, a bad copy) or missing is named and the
artifact rebuilt; otherwise it is stale, and it is rebuilt into a hidden temporary sibling folder
whose `fingerprint.json` is written last, then swapped in by renaming. A crash mid-build leaves only the hidden
folder (cleaned up by the next build), never a folder that looks valid. A file lock makes parallel processes
(a Dask sweep's workers) wait for one build instead of building twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from filelock import FileLock

from .errors import CourseError
from .paths import cache_dir

FINGERPRINT = "fingerprint.json"
CONTENTS = "contents.json"  # relative path → sha256 of every file the build saved (checked before each reuse)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: each file is hashed once


def normalise(fingerprint: dict) -> dict:
    """The fingerprint as JSON will store it (tuples become lists, keys strings, non-JSON values their str)."""
    if not isinstance(fingerprint, dict):
        raise CourseError(f"a fingerprint must be a dict of what the artifact is built from, not {type(fingerprint)}")
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=str))


def _sha256(path: Path) -> str:
    """sha256 of a file's full content, read now."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    """sha256 of a file's full content, memoised by (path, size, mtime) for the life of the process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _sha256(path)
    return _DIGESTS[key]


def contents(folder: Path) -> dict[str, str]:
    """Relative path → sha256 of every file in a built artifact folder (its fingerprint and contents files aside)."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() not in (FINGERPRINT, CONTENTS)}


def damaged_files(folder: Path) -> list[str]:
    """The saved files of an artifact whose content is not what its build recorded (changed or missing); every
    file when nothing was recorded (an artifact of an earlier version, which cannot be verified)."""
    try:
        recorded = json.loads((folder / CONTENTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [f"{CONTENTS} (no record of the saved files)"]
    damaged = []
    for name, digest in recorded.items():
        path = folder / name
        if not path.is_file():
            damaged.append(f"{name} (missing)")
        elif _sha256(path) != digest:
            damaged.append(f"{name} (changed)")
    return damaged


def file_digest(paths: Iterable[str | os.PathLike]) -> str:
    """One sha256 over the full content of files (a folder counts as all the files in it, with their names)."""
    digest = hashlib.sha256()
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise CourseError(f"cannot fingerprint {root}: it does not exist")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            name = path.relative_to(root).as_posix() if root.is_dir() else path.name
            digest.update(f"{name}\0{_file_sha256(path)}\0".encode())
    return digest.hexdigest()


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 of a sequence of texts (order matters; each text is length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = str(text).encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def read_fingerprint(folder: Path) -> dict | None:
    """The fingerprint stored in an artifact folder, or None (no folder, no file, unreadable file)."""
    try:
        return json.loads((folder / FINGERPRINT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix[:-1]: value}


def changed_keys(stored: dict, wanted: dict) -> list[str]:
    """The (dotted) keys whose values differ between two fingerprints, missing keys included."""
    old, new = _flat(stored), _flat(wanted)
    return sorted(key for key in set(old) | set(new) if old.get(key, "<missing>") != new.get(key, "<missing>"))


def _clean_leftovers(root: Path, name: str) -> None:
    """Remove hidden temporary folders that an interrupted build of `name` left (only ever ours, by their prefix)."""
    for leftover in root.glob(f".{name}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(built: Path, target: Path) -> None:
    """Replace `target` by the finished `built` folder with renames (the old folder goes only after)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "artifact")
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_replaceable(target: Path, rebuild: bool) -> None:
    """Refuse to replace a folder without a fingerprint that holds files (someone's own work) unless rebuild."""
    if target.exists() and not target.is_dir():
        raise CourseError(f"{target} is a file, not an artifact folder: move it away to build the artifact there")
    if read_fingerprint(target) is None and target.is_dir() and any(target.iterdir()) and not rebuild:
        raise CourseError(f"{target} holds files but no {FINGERPRINT}, so it was not made by the cache: move it "
                          f"away, or pass rebuild=True to replace it")


def cached_artifact(name: str, fingerprint: dict, build: Callable[[Path], None], rebuild: bool = False) -> Path:
    """The folder artifacts/<name>, built by `build(folder)` unless it already holds exactly this fingerprint."""
    if not _NAME.match(name or ""):
        raise CourseError(f"artifact name {name!r}: use letters, digits, '.', '_' and '-' (no folders), e.g. "
                          f"'smollm2-medical-dapt-cpu'")
    wanted = normalise(fingerprint)
    root = cache_dir("artifacts")
    target = root / name
    with FileLock(str(root / f".{name}.lock")):
        stored = read_fingerprint(target)
        damaged = damaged_files(target) if stored == wanted and not rebuild else []
        if stored == wanted and not rebuild and not damaged:
            print(f"cached: artifacts/{name}")
            return target
        check_replaceable(target, rebuild)
        if rebuild:
            print(f"rebuilding artifacts/{name} (rebuild=True)")
        elif damaged:
            print(f"artifacts/{name} does not match what was saved ({', '.join(damaged[:3])}): rebuilding")
        elif stored is None:
            print(f"building artifacts/{name} (not cached yet)")
        else:
            print(f"artifacts/{name} is stale ({', '.join(changed_keys(stored, wanted))} changed): rebuilding")
        _clean_leftovers(root, name)
        building = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=root))
        try:
            build(building)
            (building / CONTENTS).write_text(json.dumps(contents(building), indent=1), encoding="utf-8")
            (building / FINGERPRINT).write_text(json.dumps(wanted, indent=1, sort_keys=True), encoding="utf-8")
            _swap_in(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)  # gone already after a successful swap
    return target
