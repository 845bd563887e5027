"""The walking pose prior: a Gaussian over SMPL body poses fitted to real walking motion capture.

The fitting's pose term is the Mahalanobis distance of the 23 joint rotations (axis-angle, 69
values) from the CMU walks' mean; its joint-limit term keeps each rotation component within the
range those walks visit, widened by ``LIMIT_MARGIN_RAD`` (data-driven limits need no sign
conventions per joint, and walking is all the tool measures). Each walk's pelvis is levelled
first (:func:`levelled_pelvis`): the hips' and spine1's rotations are relative to the pelvis, and
a mocap root's mean orientation relative to the walk is its skeleton's calibration, not the
walker's posture. The prior also holds how the walks share the trunk's bend among the three spine
joints (:mod:`.spine.trunk_split`). Shipped as ``data/pose_prior.npz``; rebuilt deterministically
with

    python -m hmn_blender_addon.pose_prior --mocap-dir ../shared/data/mocap/cmu_walk
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .atomic import atomic_path
from .errors import HMNError
from .metrics.angles import lab_rotation, pelvic_angles, rotation_from_cardan
from .paths import DATA_DIR
from .spine.trunk_split import TRUNK_JOINTS, fit_trunk_split

PRIOR_PATH = DATA_DIR / "pose_prior.npz"
LIMIT_MARGIN_RAD = np.radians(15.0)
# Ridge added to the covariance: keeps rarely-moving components (fingers' parents, toes) from
# getting near-infinite precision.
COVARIANCE_RIDGE = 0.01**2
NUM_BODY_POSE = 69
PELVIS_CHILDREN = (1, 2, 3)  # left_hip, right_hip, spine1: the joints whose parent is the pelvis
SPINE_BODY_JOINTS = [joint - 1 for joint in TRUNK_JOINTS]  # among the body pose's 23 (no root)


@dataclass(frozen=True)
class PosePrior:
    """mean (69,), precision_cholesky (69, 69) with precision = L @ L.T, lower/upper (69,) radians;
    trunk_split (3, 3): :func:`.spine.trunk_split.fit_trunk_split` of the walks."""

    mean: np.ndarray
    precision_cholesky: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    trunk_split: np.ndarray


def levelled_pelvis(local_rotvec_rad: np.ndarray, root_transl_m: np.ndarray) -> np.ndarray:
    """(T, 24, 3) a straight walk with its pelvis's mean orientation relative to the direction of
    progression (tilt, obliquity, rotation) moved into the pelvis's children.

    The root turns back by the clip's mean angles (:func:`.metrics.angles.pelvic_angles` in the
    walk's lab frame) about its own axes and each child of the pelvis
    (:data:`PELVIS_CHILDREN`) forward by the same, so every segment keeps its orientation in the
    world; only the pelvis's own orientation and its children's rotations relative to it change.
    Why: the CMU walks' roots tilt forward by 5.3 deg on average (SD 3.9 over 32 walks), face 2.7
    deg to the right of their travel (SD 2.7) and lean -0.3 deg (SD 1.1, up to 3.5 in a walk): the
    mocap skeleton's root frame as each subject's calibration set it. The tool's pelvis frame is
    the static posture's (DESIGN.md section 6), about which a straight, symmetric walk tilts,
    drops and turns the pelvis a few degrees either way; a prior taking the hips' rotations
    relative to the mocap's root put that offset into every fitted pelvis (on the 26 rendered
    side clips +3.2 deg of tilt and -1.7 of rotation, which levelling takes to -0.1 and -0.4).

    Args:
        local_rotvec_rad: (T, 24, 3) axis-angle, index 0 the global orientation in a y-up world.
        root_transl_m: (T, 3) the root's path, whose net horizontal displacement is the direction
            of progression.
    """
    rotations = np.array(local_rotvec_rad, dtype=np.float64)
    root = Rotation.from_rotvec(rotations[:, 0])
    mean_angles = pelvic_angles(root.as_matrix(), lab_rotation(np.asarray(root_transl_m))).mean(axis=0)
    offset = Rotation.from_matrix(rotation_from_cardan(mean_angles))
    rotations[:, 0] = (root * offset.inv()).as_rotvec()
    for joint in PELVIS_CHILDREN:
        rotations[:, joint] = (offset * Rotation.from_rotvec(rotations[:, joint])).as_rotvec()
    return rotations


def clip_body_poses(local_rotvec_rad: np.ndarray, root_transl_m: np.ndarray) -> np.ndarray:
    """(T, 69) the body poses the prior is fitted to: a walk's (T, 24, 3) rotations, its pelvis
    levelled along its (T, 3) path."""
    levelled = levelled_pelvis(local_rotvec_rad, root_transl_m)
    return levelled[:, 1:].reshape(len(levelled), NUM_BODY_POSE)


def fit_pose_prior(walks: list[np.ndarray]) -> PosePrior:
    """Fit the prior to walks' (T_i, 69) axis-angle body poses."""
    poses = np.concatenate(walks).astype(np.float64)
    mean = poses.mean(axis=0)
    covariance = np.cov(poses, rowvar=False) + COVARIANCE_RIDGE * np.eye(poses.shape[1])
    precision = np.linalg.inv(covariance)
    return PosePrior(
        mean=mean.astype(np.float32),
        precision_cholesky=np.linalg.cholesky(precision).astype(np.float32),
        lower=(poses.min(axis=0) - LIMIT_MARGIN_RAD).astype(np.float32),
        upper=(poses.max(axis=0) + LIMIT_MARGIN_RAD).astype(np.float32),
        trunk_split=fit_trunk_split([w.reshape(len(w), 23, 3)[:, SPINE_BODY_JOINTS] for w in walks]),
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
    shapes = (prior.mean.shape, prior.precision_cholesky.shape, prior.trunk_split.shape)
    if shapes != ((NUM_BODY_POSE,), (NUM_BODY_POSE,) * 2, (3, 3)):
        raise HMNError(path, "the pose prior has the wrong shape")
    return prior


def walking_body_poses(mocap_dir: Path, exclude_subjects: frozenset[str] = frozenset()) -> list[np.ndarray]:
    """Per CMU walk in ``mocap_dir`` (subjects in ``exclude_subjects`` left out), its (T_i, 69) body poses."""
    from .mocap import walking_clips

    clips = [c for c in walking_clips(mocap_dir) if c.subject not in exclude_subjects]
    if not clips:
        raise HMNError(mocap_dir, "no walking clips to fit the pose prior to")
    return [clip_body_poses(c.local_rotvec_rad, c.root_transl_m) for c in clips]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fit the walking pose prior to CMU walks.")
    parser.add_argument("--mocap-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=PRIOR_PATH)
    args = parser.parse_args(argv)
    try:
        walks = walking_body_poses(args.mocap_dir)
        save_pose_prior(fit_pose_prior(walks), args.out)
    except HMNError as err:
        print(f"pose_prior: error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: pose prior from {sum(map(len, walks))} frames of {len(walks)} walks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
