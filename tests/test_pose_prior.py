"""The walking pose prior: fitted to CMU walks, it prefers unseen subjects' walking poses."""

from __future__ import annotations

import numpy as np
import pytest

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.mocap import walking_clips
from hmn_blender_addon.pose_prior import fit_pose_prior, load_pose_prior, mahalanobis_sq


@pytest.fixture(scope="module")
def clips(shared_data):
    return walking_clips(shared_data / "mocap" / "cmu_walk")


def poses_of(clips, subjects):
    return np.concatenate(
        [c.local_rotvec_rad[:, 1:].reshape(c.num_frames, -1) for c in clips if c.subject in subjects]
    )


def test_shipped_prior_is_the_fit_to_all_walks(clips):
    shipped = load_pose_prior()
    refit = fit_pose_prior(poses_of(clips, {c.subject for c in clips}))
    np.testing.assert_allclose(shipped.mean, refit.mean, atol=1e-6)
    np.testing.assert_allclose(shipped.precision_cholesky, refit.precision_cholesky, rtol=1e-4, atol=1e-3)


def test_held_out_walking_poses_score_far_better_than_perturbed_ones(clips):
    held_out = "cmu_08"
    subjects = {c.subject for c in clips}
    prior = fit_pose_prior(poses_of(clips, subjects - {held_out}))
    walking = poses_of(clips, {held_out})
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
