"""Keep a run's resident memory flat as the clip grows: large blocks straight from the OS.

glibc's malloc serves blocks above a threshold with mmap and returns them to the OS on free, but
it raises that threshold (up to 32 MB) each time such a block is freed. After the first decoded
frame, every frame (2.7 MB at 720p) and its resized copies come from the heap instead, between the
small arrays that live on (landmarks, masks, fit results); those pin the heap, so its freed space
is never given back and the resident size grows with the clip's length. Measured on the sample
walk looped to 720p, resident memory after the keypoints stage: 648 MB for 30 s and 673 MB for
90 s with glibc's default, 454 and 462 MB with a fixed threshold. A fixed threshold costs one
mmap per large block, which is small beside decoding it. Between stages, the free pages left
inside the heap by a stage's many small arrays are handed back too (``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc's malloc.h)
MMAP_THRESHOLD_BYTES = 256 * 1024  # blocks from this size up are mapped and unmapped


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process runs on
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):  # musl has neither
        return None
    return libc


@functools.cache
def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` for this process (once).

    Returns whether the allocator took it: False where the C library is not glibc (macOS and
    Windows allocators already give large blocks back).
    """
    libc = _glibc()
    return libc is not None and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc; elsewhere nothing to do): between stages."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
