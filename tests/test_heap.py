"""Large blocks come straight from the OS once :func:`return_large_blocks` ran (glibc only)."""

import subprocess
import sys

import pytest

# In a fresh interpreter: free an 8 MB block (glibc then raises its mmap threshold past 1 MB),
# then allocate five 1 MB blocks and print whether each was mapped on its own (a mapped chunk
# starts one 16-byte header into a page; a heap chunk lies anywhere).
PROBE = """
import sys
import numpy as np
from hmn_blender_addon.heap import return_large_blocks
if sys.argv[1] == "fixed":
    assert return_large_blocks()
del_me = np.ones(8 << 20, np.uint8)
del del_me
blocks = [np.empty(1 << 20, np.uint8) for _ in range(5)]
print(all(block.ctypes.data % 4096 == 16 for block in blocks))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
@pytest.mark.parametrize(("mode", "mapped"), [("default", "False"), ("fixed", "True")])
def test_large_blocks_are_mapped_only_with_the_fixed_threshold(mode, mapped):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == mapped
