"""``hmn info``: what this installation has (versions, cache folder), for bug reports."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import platform
import sys

from . import __version__
from .paths import cache_dir
from .progress import Progress

# Distribution -> import name of what the pipeline imports at run time (Blender ships numpy;
# the extension bundles the rest as wheels, see build_addon.py).
RUNTIME_MODULES: dict[str, str] = {
    "numpy": "numpy",
    "scipy": "scipy",
    "torch": "torch",
    "smplx": "smplx",
    "mediapipe": "mediapipe",
    "opencv-contrib-python": "cv2",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}
RUNTIME_DISTRIBUTIONS: tuple[str, ...] = tuple(RUNTIME_MODULES)


def installed_versions(names: tuple[str, ...] = RUNTIME_DISTRIBUTIONS) -> dict[str, str | None]:
    """Installed version per distribution name, None where it is missing."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def missing_runtime_modules() -> list[str]:
    """Import names of runtime libraries that cannot be found (without importing them)."""
    return [module for module in RUNTIME_MODULES.values() if importlib.util.find_spec(module) is None]


def describe() -> list[str]:
    lines = [
        f"humanmovenet {__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"cache folder {cache_dir()}",
    ]
    for name, version in installed_versions().items():
        lines.append(f"{name} {version or 'MISSING'}")
    return lines


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    progress(1.0, "done")
    print("\n".join(describe()))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="versions and folders of this installation")
    parser.set_defaults(handler=_handle)
