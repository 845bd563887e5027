"""A model of per-frame SMPL fit errors, used to train and to evaluate the temporal smoothers.

Applied to clean motion already placed in a camera frame (x right, y down, z = depth), batched:
- jitter: Gaussian axis-angle noise on every joint's local rotation (per joint: torso small,
  distal limbs large), half white and half correlated over about 0.1 s (``wobble_frames``), plus,
  on the root translation, white noise of ``transl_jitter_m`` (x, y, depth); depth is the least
  observable axis from a monocular view;
- left/right swaps: short segments (1 to ``swap_max_frames``) where the legs' (or the arms')
  rotations are exchanged and mirrored, as when a detector mislabels the far-side limbs
  (DESIGN.md section 7 saw occasional far-side swaps);
- dropouts: segments (1 to ``dropout_max_frames``) where the fit freezes on the last good frame;
- outliers: single frames with a large error on one limb chain;
- depth drift: a slow random walk of the depth, RMS about ``depth_drift_m``.
The rates and sizes are assumptions, set from MediaPipe's measured landmark error (DESIGN.md
section 7: 1 to 1.6 % of body height, i.e. about 5 to 8 deg on a limb) until this pipeline's own
fit errors on rendered clips are measured; `NoiseModel` keeps them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from ..skeleton import SMPL_JOINT_NAMES

_TORSO = ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar")
_PROXIMAL = ("left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder")
_LEGS = ("hip", "knee", "ankle", "foot")
_ARMS = ("collar", "shoulder", "elbow", "wrist", "hand")


def mirror_indices() -> np.ndarray:
    """(24,) index of each SMPL joint's left/right counterpart (itself on the midline)."""
    names = list(SMPL_JOINT_NAMES)
    swap = {"left_": "right_", "right_": "left_"}
    return np.array(
        [names.index(next((swap[p] + n[len(p) :] for p in swap if n.startswith(p)), n)) for n in names]
    )


def mirror_rotvecs(rotvec: np.ndarray, joints: np.ndarray | None = None) -> np.ndarray:
    """Reflect (..., 24, 3) local rotations through the sagittal plane (x -> -x).

    ``joints`` (bool (24,)) limits the exchange to those joints and their counterparts.
    A rotation vector is a pseudo-vector: the reflection keeps x and negates y and z.
    """
    mirrored = rotvec[..., mirror_indices(), :] * np.array([1.0, -1.0, -1.0], dtype=rotvec.dtype)
    if joints is None:
        return mirrored
    return np.where(joints[:, None], mirrored, rotvec)


def _chain_mask(parts: tuple[str, ...], sides: tuple[str, ...] = ("left", "right")) -> np.ndarray:
    return np.array([any(n == f"{s}_{p}" for s in sides for p in parts) for n in SMPL_JOINT_NAMES])


def _segments(rng: np.random.Generator, shape: tuple[int, int], rate: float, max_len: int) -> np.ndarray:
    """(B, T) bool: segments of 1..max_len frames starting with probability ``rate`` per frame."""
    starts = rng.random(shape) < rate
    lengths = rng.integers(1, max_len + 1, size=shape)
    mask = np.zeros(shape, dtype=bool)
    for k in range(max_len):
        shifted = starts & (lengths > k)
        mask[:, k:] |= shifted[:, : shape[1] - k]
    return mask


@dataclass(frozen=True)
class NoiseModel:
    torso_jitter_deg: float = 1.5
    proximal_jitter_deg: float = 3.0
    distal_jitter_deg: float = 4.5
    wobble_frames: float = 3.0
    transl_jitter_m: tuple[float, float, float] = (0.01, 0.01, 0.03)
    depth_drift_m: float = 0.08
    swap_rate: float = 0.01
    swap_max_frames: int = 6
    dropout_rate: float = 0.01
    dropout_max_frames: int = 8
    outlier_rate: float = 0.01
    outlier_deg: float = 25.0

    def jitter_rad(self) -> np.ndarray:
        """(24,) per-joint standard deviation of the white rotation noise."""
        deg = [
            self.torso_jitter_deg
            if n in _TORSO
            else self.proximal_jitter_deg
            if n in _PROXIMAL
            else self.distal_jitter_deg
            for n in SMPL_JOINT_NAMES
        ]
        return np.radians(np.array(deg))

    def corrupt(
        self, rotvec: np.ndarray, transl_m: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noisy copies of (B, T, 24, 3) local rotations and (B, T, 3) camera-frame translations."""
        batch, frames = rotvec.shape[:2]
        rot = rotvec.astype(np.float64)
        transl = transl_m.astype(np.float64)
        # swaps first: the fit mislabels limbs, then jitters like any other frame
        for parts in (_LEGS, _ARMS):
            swapped = _segments(rng, (batch, frames), self.swap_rate, self.swap_max_frames)
            rot = np.where(swapped[..., None, None], mirror_rotvecs(rot, _chain_mask(parts)), rot)
        white = rng.normal(size=rot.shape)
        wobble = gaussian_filter1d(rng.normal(size=rot.shape), self.wobble_frames, axis=1)
        wobble /= np.sqrt((wobble**2).mean())
        noise = np.sqrt(0.5) * (white + wobble) * self.jitter_rad()[:, None]
        outlier = rng.random((batch, frames)) < self.outlier_rate
        chains = np.stack(
            [_chain_mask((p,), (s,)) for p in ("knee", "elbow", "hip") for s in ("left", "right")]
        )
        hit = chains[rng.integers(len(chains), size=(batch, frames))] & outlier[..., None]
        noise += hit[..., None] * rng.normal(size=rot.shape) * np.radians(self.outlier_deg)
        rot = (
            Rotation.from_rotvec(rot.reshape(-1, 3)) * Rotation.from_rotvec(noise.reshape(-1, 3))
        ).as_rotvec()
        rot = rot.reshape(batch, frames, -1, 3)
        transl = transl + rng.normal(size=transl.shape) * np.array(self.transl_jitter_m)
        drift = gaussian_filter1d(np.cumsum(rng.normal(size=(batch, frames)), axis=1), sigma=5.0, axis=1)
        drift -= drift.mean(axis=1, keepdims=True)
        drift *= self.depth_drift_m / max(float(np.sqrt((drift**2).mean())), 1e-9)
        transl[..., 2] += drift
        # dropouts last: a frozen fit repeats the previous output exactly
        frozen = _segments(rng, (batch, frames), self.dropout_rate, self.dropout_max_frames)
        frozen[:, 0] = False
        source = np.maximum.accumulate(np.where(frozen, 0, np.arange(frames)), axis=1)
        rows = np.arange(batch)[:, None]
        return rot[rows, source].astype(np.float32), transl[rows, source].astype(np.float32)
