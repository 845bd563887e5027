"""Shared test setup: a project-local cache and the path of the read-only shared data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# anny's one-time cache (about 790 MB) and the stage caches live in the repo's ignored .cache/
os.environ.setdefault("HMN_CACHE_DIR", str(REPO_ROOT / ".cache"))
os.environ.setdefault("ANNY_CACHE_DIR", str(Path(os.environ["HMN_CACHE_DIR"]) / "anny"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

SHARED_DATA = Path(os.environ.get("HMN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (read-only: never write below it)."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(f"{SHARED_DATA}: the shared data folder is missing")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sports2d(shared_data):
    """Keypoints of the real Sports2D clip (computed once a session, no cache) and seconds per frame."""
    from hmn_blender_addon.keypoints import extract_keypoints

    started = time.perf_counter()
    keypoints = extract_keypoints(shared_data / "video" / "sports2d_demo" / "demo.mp4", use_cache=False)
    return keypoints, (time.perf_counter() - started) / len(keypoints.times_s)


@pytest.fixture(scope="session")
def built_zip(tmp_path_factory) -> Path:
    """The extension zip for this machine's platform, built once a session by build_addon.py
    (downloading the pinned wheels from the registry the first time)."""
    import build_addon

    out = tmp_path_factory.mktemp("dist")
    assert build_addon.main(["--out", str(out)]) == 0
    (package,) = out.glob("*.zip")
    return package


@pytest.fixture(scope="session")
def bpy_only_sandbox(tmp_path_factory) -> Path:
    """A folder holding only bpy and numpy (what Blender ships): run Blender scripts with
    ``python -I -S`` and this folder on sys.path, so everything else must come from the zip."""
    import numpy

    sandbox = tmp_path_factory.mktemp("sandbox")
    for entry in Path(numpy.__file__).parents[1].iterdir():
        if entry.name.split("-")[0] in {"bpy", "numpy", "numpy.libs"}:
            os.symlink(entry, sandbox / entry.name)
    return sandbox
