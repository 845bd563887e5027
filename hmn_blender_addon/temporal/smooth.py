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


def _learned(
    rot6d: np.ndarray, transl_m: np.ndarray, fps: float, weights: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 24, 6), (T, 3) -> same, through the model at its training frame rate."""
    model = load_model(weights)
    num_frames = rot6d.shape[0]
    resampled = abs(fps - MODEL_FPS) > 1e-3 and num_frames > 1
    if resampled:
        model_frames = int(np.floor((num_frames - 1) / fps * MODEL_FPS + 1e-3)) + 1
        rot6d, transl_m = (_resample(x, fps, MODEL_FPS, model_frames) for x in (rot6d, transl_m))
    rot6d, transl_m = refine_windows(model, rot6d, transl_m)
    if resampled:
        rot6d, transl_m = (_resample(x, MODEL_FPS, fps, num_frames) for x in (rot6d, transl_m))
    return rot6d, transl_m


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
    # float32, and no more copies than needed: a long clip's (T, 24, 6) arrays are its largest here
    rot6d = rotvec_to_rot6d(local_rotvec_rad, np.float32)
    transl = np.asarray(transl_m, dtype=np.float32)
    if method == "gcn_lstm":
        rot6d, transl = _learned(rot6d, transl, fps, weights)
    else:
        flat = FILTERS[method](
            np.concatenate([rot6d.reshape(num_frames, -1), transl], axis=1), fps, **filter_kwargs
        )
        rot6d, transl = flat[:, :-3].reshape(num_frames, -1, 6), flat[:, -3:]
    return rot6d_to_rotvec(rot6d, np.float32), transl.astype(np.float32)
