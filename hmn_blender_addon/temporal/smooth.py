"""One entry for every smoother of a fitted SMPL motion: learned (gcn_lstm), classical, or none.

Rotations are smoothed in the continuous 6D form and mapped back to axis-angle; the root
translation is smoothed as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import interp1d

from ..errors import HMNError
from .filters import butterworth, one_euro, savitzky_golay
from .model import DEFAULT_WEIGHTS, MODEL_FPS, load_model, refine_windows
from .rotation6d import rot6d_to_rotvec, rotvec_to_rot6d

FILTERS = {"butterworth": butterworth, "savitzky_golay": savitzky_golay, "one_euro": one_euro}
SMOOTHERS: tuple[str, ...] = ("gcn_lstm", *FILTERS, "none")


def _resample(x: np.ndarray, fps_from: float, fps_to: float, num_frames_to: int) -> np.ndarray:
    times_from = np.arange(x.shape[0]) / fps_from
    times_to = np.minimum(np.arange(num_frames_to) / fps_to, times_from[-1])
    return interp1d(times_from, x, axis=0, assume_sorted=True)(times_to)


def _learned(flat: np.ndarray, fps: float, weights: Path) -> np.ndarray:
    """(T, 24*6 + 3) -> same, through the model at its training frame rate."""
    model = load_model(weights)
    num_frames = flat.shape[0]
    resampled = abs(fps - MODEL_FPS) > 1e-3 and num_frames > 1
    if resampled:
        model_frames = int(np.floor((num_frames - 1) / fps * MODEL_FPS + 1e-3)) + 1
        flat = _resample(flat, fps, MODEL_FPS, model_frames)
    rot6d, transl = refine_windows(model, flat[:, :-3].reshape(-1, 24, 6), flat[:, -3:])
    out = np.concatenate([rot6d.reshape(len(rot6d), -1), transl], axis=1)
    return _resample(out, MODEL_FPS, fps, num_frames) if resampled else out


def smooth_motion(
    local_rotvec_rad: np.ndarray,
    transl_m: np.ndarray,
    fps: float,
    method: str = "gcn_lstm",
    *,
    weights: Path = DEFAULT_WEIGHTS,
    **filter_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth (T, 24, 3) axis-angle local rotations and (T, 3) root translation (metres).

    ``method`` is one of SMOOTHERS; ``filter_kwargs`` go to the classical filter (e.g.
    ``cutoff_hz`` for butterworth). Returns float32 arrays of the same shapes.
    """
    if method not in SMOOTHERS:
        raise HMNError(method, f"unknown smoother; choose one of {', '.join(SMOOTHERS)}")
    num_frames = local_rotvec_rad.shape[0]
    if method == "none" or num_frames < 3:
        return local_rotvec_rad.astype(np.float32), transl_m.astype(np.float32)
    flat = np.concatenate(
        [rotvec_to_rot6d(local_rotvec_rad).reshape(num_frames, -1), transl_m], axis=1, dtype=np.float32
    )
    if method == "gcn_lstm":
        out = _learned(flat, fps, weights)
    else:
        out = FILTERS[method](flat, fps, **filter_kwargs)
    rotvec = rot6d_to_rotvec(out[:, :-3].reshape(num_frames, -1, 6))
    return rotvec.astype(np.float32), out[:, -3:].astype(np.float32)
