"""Per-stage cache: a stage's arrays stored per video content and settings.

An entry is ``<cache_dir>/stages/<stage>/<key>.npz`` where ``key`` hashes the video's content
hash, the stage name and its settings (JSON). The video hash is a full SHA-256 of the file,
streamed: about 1 s per GB, small against decoding and keypoints, and exact (a sampled hash
could miss an edit of the same size). It is remembered per (path, size, mtime) within a process.

Entries are written atomically and carry a SHA-256 of their own arrays and their key: an entry
that fails to load or to verify is deleted and treated as missing, never trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .paths import cache_dir

_CHUNK_BYTES = 1 << 20
_DIGEST = "__sha256__"
_KEY = "__key__"


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def video_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the file's content."""
    path = Path(path).resolve()
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def stage_key(stage: str, content_hash: str, settings: Mapping[str, Any]) -> str:
    """The entry name for ``stage`` of the content ``content_hash`` under ``settings`` (JSON-able)."""
    text = json.dumps({"stage": stage, "content": content_hash, "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def stage_path(stage: str, key: str) -> Path:
    return cache_dir() / "stages" / stage / f"{key}.npz"


def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_stage(stage: str, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Store ``arrays`` (names must not start with ``__``) as the entry ``key`` of ``stage``."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    target = stage_path(stage, key)
    with atomic_path(target) as tmp:
        np.savez(tmp, **arrays, **{_DIGEST: np.array(_arrays_digest(arrays)), _KEY: np.array(key)})
    return target


def load_stage(stage: str, key: str) -> dict[str, np.ndarray] | None:
    """The arrays of entry ``key`` of ``stage``; None when missing or corrupt (a corrupt one is deleted)."""
    path = stage_path(stage, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            arrays = {name: entry[name] for name in entry.files}
        digest, stored_key = str(arrays.pop(_DIGEST)), str(arrays.pop(_KEY))
        if stored_key == key and digest == _arrays_digest(arrays):
            return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    path.unlink(missing_ok=True)
    return None


@contextmanager
def fresh_cache() -> Iterator[Path]:
    """An empty stage cache for this process and the workers it starts (anny's cache stays)."""
    anny = os.environ.get("ANNY_CACHE_DIR", str(cache_dir() / "anny"))
    saved = os.environ.get("HMN_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="hmn-fresh-cache-") as folder:
        os.environ["HMN_CACHE_DIR"], os.environ["ANNY_CACHE_DIR"] = folder, anny
        try:
            yield Path(folder)
        finally:
            if saved is None:
                os.environ.pop("HMN_CACHE_DIR")
            else:
                os.environ["HMN_CACHE_DIR"] = saved
