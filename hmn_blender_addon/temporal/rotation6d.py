"""The continuous 6D rotation representation (Zhou et al. 2019): the first two matrix columns.

Axis-angle wraps at pi and quaternions flip sign, so filters and networks work on 6D instead:
it is continuous, and any 6-vector maps back to a rotation by Gram-Schmidt.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

CHUNK_ROTATIONS = 1 << 15  # rotations converted at a time: bounds the temporaries for long clips


def _chunked(convert, values: np.ndarray, width: int, dtype: type) -> np.ndarray:
    """Apply ``convert`` ((N, w_in) -> (N, width)) to the rows of (..., w_in) ``values`` a chunk at
    a time, into a ``dtype`` array."""
    flat = values.reshape(-1, values.shape[-1])
    out = np.empty((len(flat), width), dtype=dtype)
    for start in range(0, len(flat), CHUNK_ROTATIONS):
        out[start : start + CHUNK_ROTATIONS] = convert(flat[start : start + CHUNK_ROTATIONS])
    return out.reshape(*values.shape[:-1], width)


def rotvec_to_rot6d(rotvec_rad: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 6): columns 0 and 1 of the rotation matrix, concatenated
    (computed in float64, stored as ``dtype``)."""

    def convert(rotvecs: np.ndarray) -> np.ndarray:
        mats = Rotation.from_rotvec(rotvecs).as_matrix()
        return np.concatenate([mats[:, :, 0], mats[:, :, 1]], axis=-1)

    return _chunked(convert, rotvec_rad, 6, dtype)


def rot6d_to_matrix(rot6d: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) rotation matrices by Gram-Schmidt."""
    a, b = rot6d[..., :3], rot6d[..., 3:]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True)
    y = b - (x * b).sum(-1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def rot6d_to_rotvec(rot6d: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """(..., 6) -> (..., 3) axis-angle (computed in float64, stored as ``dtype``)."""
    return _chunked(
        lambda chunk: Rotation.from_matrix(rot6d_to_matrix(chunk.astype(np.float64))).as_rotvec(),
        rot6d,
        3,
        dtype,
    )


def rot6d_to_matrix_torch(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) tensor -> (..., 3, 3) rotation matrices by Gram-Schmidt (differentiable)."""
    x = torch.nn.functional.normalize(rot6d[..., :3], dim=-1)
    b = rot6d[..., 3:]
    y = torch.nn.functional.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    return torch.stack([x, y, torch.linalg.cross(x, y)], dim=-1)
