"""Where the project keeps its caches and shipped data.

The cache folder is, in order: the ``HMN_CACHE_DIR`` environment variable (the add-on's
preferences set it), else ``<XDG cache or ~/.cache>/humanmovenet``. Third-party caches (anny's
first-build cache of about 790 MB) go below it, never to the home directory by surprise.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import HMNError

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"  # files shipped inside the package and the extension


def cache_dir() -> Path:
    """The project's cache folder (created on first use)."""
    configured = os.environ.get("HMN_CACHE_DIR")
    if configured:
        root = Path(configured).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        root = Path(base) / "humanmovenet"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HMNError(
            root, f"cannot create the cache folder ({exc.strerror or exc}); set HMN_CACHE_DIR"
        ) from exc
    return root


def configure_third_party_caches() -> Path:
    """Point anny's cache at ours unless the user chose one; call before importing anny."""
    anny_dir = Path(os.environ.setdefault("ANNY_CACHE_DIR", str(cache_dir() / "anny")))
    anny_dir.mkdir(parents=True, exist_ok=True)
    return anny_dir
