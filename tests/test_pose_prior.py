"""The walking pose prior: fitted to CMU walks, it prefers unseen subjects' walking poses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.metrics.angles import lab_rotation, pelvic_angles, rotation_from_cardan
from hmn_blender_addon.mocap import walking_clips
from hmn_blender_addon.pose_prior import (
    clip_body_poses,
    fit_pose_prior,
    levelled_pelvis,
    load_pose_prior,
    mahalanobis_sq,
)


@pytest.fixture(scope="module")
def clips(shared_data):
    return walking_clips(shared_data / "mocap" / "cmu_walk")


def walks_of(clips, subjects):
    return [clip_body_poses(c.local_rotvec_rad, c.root_transl_m) for c in clips if c.subject in subjects]


def test_shipped_prior_is_the_fit_to_all_walks(clips):
    shipped = load_pose_prior()
    refit = fit_pose_prior(walks_of(clips, {c.subject for c in clips}))
    np.testing.assert_allclose(shipped.mean, refit.mean, atol=1e-6)
    np.testing.assert_allclose(shipped.precision_cholesky, refit.precision_cholesky, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(shipped.trunk_split, refit.trunk_split, atol=1e-9)
    # the CMU walks bend their trunk mostly at spine1 (about L4 on the open body) in every plane
    assert (shipped.trunk_split[0] > 0.7).all() and np.abs(shipped.trunk_split[1:]).max() < 0.15


def test_levelling_moves_the_pelvis_mean_orientation_into_its_children_and_keeps_every_segment():
    frames = np.arange(60)
    heading = Rotation.from_euler("y", 40, degrees=True)  # walking 40 deg off the world's z
    path_m = frames[:, None] * 0.04 * heading.apply([0.0, 0.0, 1.0])
    lab = lab_rotation(path_m)
    # relative to the walk: tilted forward 7 deg, +-3 with the steps; leaning 2 deg; turned 3 deg right
    angles_deg = np.stack(
        [7.0 + 3.0 * np.sin(2 * np.pi * frames / 30), 2.0 + 0 * frames, -3.0 + 0 * frames], 1
    )
    root = Rotation.from_matrix(lab @ rotation_from_cardan(np.radians(angles_deg)))
    rotations = np.random.default_rng(0).normal(0, 0.3, (60, 24, 3))
    rotations[:, 0] = root.as_rotvec()

    levelled = levelled_pelvis(rotations, path_m)

    new_root = Rotation.from_rotvec(levelled[:, 0])
    levelled_deg = np.degrees(pelvic_angles(new_root.as_matrix(), lab))
    np.testing.assert_allclose(levelled_deg.mean(axis=0), 0.0, atol=1e-6)
    # the steps' tilt kept, about a zero mean
    np.testing.assert_allclose(levelled_deg[:, 0], angles_deg[:, 0] - angles_deg[:, 0].mean(), atol=1e-6)
    for child in (1, 2, 3):  # both hips and spine1 keep their orientation in the world
        before = (root * Rotation.from_rotvec(rotations[:, child])).as_matrix()
        after = (new_root * Rotation.from_rotvec(levelled[:, child])).as_matrix()
        np.testing.assert_allclose(after, before, atol=1e-9)
    np.testing.assert_array_equal(levelled[:, 4:], rotations[:, 4:])  # the rest are relative to those


def test_the_prior_sees_levelled_walks(clips):
    # the CMU roots tilt forward by 5.3 deg on average (SD 3.9) and face 2.7 deg right of their
    # travel (SD 2.7); levelled, each walk's mean is within half a degree of the walk's lab frame
    for clip in clips:
        root = Rotation.from_rotvec(levelled_pelvis(clip.local_rotvec_rad, clip.root_transl_m)[:, 0])
        mean_deg = np.degrees(pelvic_angles(root.as_matrix(), lab_rotation(clip.root_transl_m)).mean(axis=0))
        assert np.abs(mean_deg).max() < 0.5, clip.name


def test_held_out_walking_poses_score_far_better_than_perturbed_ones(clips):
    held_out = "cmu_08"
    subjects = {c.subject for c in clips}
    prior = fit_pose_prior(walks_of(clips, subjects - {held_out}))
    walking = np.concatenate(walks_of(clips, {held_out}))
    perturbed = walking + np.random.default_rng(0).normal(0, 0.3, walking.shape)
    assert np.median(mahalanobis_sq(prior, walking)) * 5 < np.median(mahalanobis_sq(prior, perturbed))
    inside = (walking >= prior.lower) & (walking <= prior.upper)
    assert inside.mean() > 0.99
    knee_flexion_upper = np.degrees(prior.upper.reshape(23, 3)[3, 0])  # left knee (joint 4) about x
    assert 60 < knee_flexion_upper < 150


def test_a_damaged_prior_file_is_a_clear_error(tmp_path):
    path = tmp_path / "pose_prior.npz"
    path.write_bytes(b"not an npz")
    with pytest.raises(HMNError, match="cannot read the pose prior"):
        load_pose_prior(path)
