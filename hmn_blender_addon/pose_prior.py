"""The walking pose prior: a Gaussian over SMPL body poses fitted to real walking motion capture.

The fitting's pose term is the Mahalanobis distance of the 23 joint rotations (axis-angle, 69
values) from the CMU walks' mean; its joint-limit term keeps each rotation component within the
range those walks visit, widened by ``LIMIT_MARGIN_RAD`` (data-driven limits need no sign
conventions per joint, and walking is all the tool measures). Shipped as
``data/pose_prior.npz``; rebuilt deterministically with

    python -m hmn_blender_addon.pose_prior --mocap-dir ../shared/data/mocap/cmu_walk
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import HMNError
from .paths import DATA_DIR

PRIOR_PATH = DATA_DIR / "pose_prior.npz"
LIMIT_MARGIN_RAD = np.radians(15.0)
# Ridge added to the covariance: keeps rarely-moving components (fingers' parents, toes) from
# getting near-infinite precision.
COVARIANCE_RIDGE = 0.01**2
NUM_BODY_POSE = 69


@dataclass(frozen=True)
class PosePrior:
    """mean (69,), precision_cholesky (69, 69) with precision = L @ L.T, lower/upper (69,) radians."""

    mean: np.ndarray
    precision_cholesky: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def fit_pose_prior(body_poses: np.ndarray) -> PosePrior:
    """Fit the prior to (N, 69) axis-angle body poses."""
    poses = np.asarray(body_poses, dtype=np.float64)
    mean = poses.mean(axis=0)
    covariance = np.cov(poses, rowvar=False) + COVARIANCE_RIDGE * np.eye(poses.shape[1])
    precision = np.linalg.inv(covariance)
    return PosePrior(
        mean=mean.astype(np.float32),
        precision_cholesky=np.linalg.cholesky(precision).astype(np.float32),
        lower=(poses.min(axis=0) - LIMIT_MARGIN_RAD).astype(np.float32),
        upper=(poses.max(axis=0) + LIMIT_MARGIN_RAD).astype(np.float32),
    )


def mahalanobis_sq(prior: PosePrior, body_poses: np.ndarray) -> np.ndarray:
    """(N,) squared Mahalanobis distances of (N, 69) poses from the prior's mean."""
    whitened = (np.asarray(body_poses) - prior.mean) @ prior.precision_cholesky
    return np.sum(whitened**2, axis=-1)


def save_pose_prior(prior: PosePrior, path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{name: getattr(prior, name) for name in PosePrior.__dataclass_fields__})
    return path


def load_pose_prior(path: Path = PRIOR_PATH) -> PosePrior:
    """The shipped prior; a missing or damaged file gets a clear error."""
    try:
        with np.load(path, allow_pickle=False) as data:
            prior = PosePrior(**{name: data[name] for name in PosePrior.__dataclass_fields__})
    except (OSError, KeyError, ValueError) as exc:
        raise HMNError(path, f"cannot read the pose prior ({exc})") from exc
    if prior.mean.shape != (NUM_BODY_POSE,) or prior.precision_cholesky.shape != (NUM_BODY_POSE,) * 2:
        raise HMNError(path, "the pose prior has the wrong shape")
    return prior


def walking_body_poses(mocap_dir: Path, exclude_subjects: frozenset[str] = frozenset()) -> np.ndarray:
    """(N, 69) body poses of the CMU walks in ``mocap_dir`` (subjects in ``exclude_subjects`` left out)."""
    from .mocap import walking_clips

    clips = [c for c in walking_clips(mocap_dir) if c.subject not in exclude_subjects]
    if not clips:
        raise HMNError(mocap_dir, "no walking clips to fit the pose prior to")
    return np.concatenate([c.local_rotvec_rad[:, 1:].reshape(c.num_frames, -1) for c in clips])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fit the walking pose prior to CMU walks.")
    parser.add_argument("--mocap-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=PRIOR_PATH)
    args = parser.parse_args(argv)
    try:
        poses = walking_body_poses(args.mocap_dir)
        save_pose_prior(fit_pose_prior(poses), args.out)
    except HMNError as err:
        print(f"pose_prior: error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: pose prior from {len(poses)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
