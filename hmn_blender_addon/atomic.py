"""Atomic output: write to a temporary name beside the target, rename when complete.

A failed or cancelled run therefore never leaves a partial file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import HMNError


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success it replaces ``target``.

    The temporary keeps ``target``'s suffix (or ``suffix``) so that writers which pick a format
    from the extension (numpy, matplotlib, Blender) still work. On any exception it is removed.
    """
    target = Path(target)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HMNError(folder, f"cannot create the output folder ({exc.strerror or exc})") from exc
    if not folder.is_dir():
        raise HMNError(folder, "the output folder is not a folder")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part" + (suffix or target.suffix), dir=folder
        )
    except OSError as exc:
        raise HMNError(folder, f"cannot write to the output folder ({exc.strerror or exc})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; outputs get the usual permissions (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:  # a full disk, a vanished folder: one line naming the file
        tmp.unlink(missing_ok=True)
        raise HMNError(target, f"cannot write the file ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)
