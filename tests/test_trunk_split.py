"""The trunk's bend shared among spine1..3 as walking shares it: the split's fit and its use."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from hmn_blender_addon.metrics.angles import cardan_angles, rotation_from_cardan
from hmn_blender_addon.spine.trunk_split import fit_trunk_split, split_trunk

FRAMES = 90
PHASE = 2 * np.pi * np.arange(FRAMES) / 30  # a stride a second at 30 fps


def spine_rotvec(angles_deg: np.ndarray) -> np.ndarray:
    """(T, 3, 3) Cardan angles (joint, plane) in degrees -> (T, 3, 3) axis-angle."""
    matrices = rotation_from_cardan(np.radians(angles_deg))
    return Rotation.from_matrix(matrices.reshape(-1, 3, 3)).as_rotvec().reshape(angles_deg.shape)


def trunk_of(rotvec: np.ndarray) -> np.ndarray:
    matrices = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(-1, 3, 3, 3)
    return matrices[:, 0] @ matrices[:, 1] @ matrices[:, 2]


def joint_angles_deg(rotvec: np.ndarray) -> np.ndarray:
    """(T, 3, 3) axis-angle -> (T, 3, 3) Cardan angles (joint, plane) in degrees."""
    return np.degrees(cardan_angles(Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix())).reshape(
        rotvec.shape
    )


def test_the_walks_shares_are_recovered_from_their_joints_motion():
    # each walk bends its trunk by t (per plane) with spine1 taking 0.6, spine2 0.3, spine3 0.1,
    # passes a part u between spine1 and spine2 that leaves the trunk alone (at three times the
    # stride's frequency, so uncorrelated with t), and has a posture of its own: the regression on
    # the trunk about each walk's mean finds the shares
    rng = np.random.default_rng(3)
    walks = []
    for _ in range(4):
        trunk = 3.0 * np.sin(PHASE[:, None] + rng.uniform(0, 2 * np.pi, 3))
        passed = 2.0 * np.sin(3 * PHASE[:, None] + rng.uniform(0, 2 * np.pi, 3))
        angles = np.stack([0.6 * trunk + passed, 0.3 * trunk - passed, 0.1 * trunk], axis=1)
        walks.append(spine_rotvec(angles + rng.uniform(-3, 3, (1, 3, 3))))
    split = fit_trunk_split(walks)
    np.testing.assert_allclose(split.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(split, np.repeat([[0.6], [0.3], [0.1]], 3, axis=1), atol=0.02)


def test_how_the_fit_passed_the_bend_between_joints_no_longer_shows():
    # the trunk flexes +-5 deg, bends +-4 and turns +-6 about a posture; one fit passes up to 4 deg
    # a frame between spine1 and spine2 at random (the landmarks cannot tell), which the lumbar
    # levels would read as motion, the other does not
    rng = np.random.default_rng(7)
    trunk = np.array([5.0, 4.0, 6.0]) * np.sin(PHASE)[:, None]
    posture = np.array([[-5.0, 0.0, 1.0], [3.0, 0.5, 1.0], [6.0, 0.0, 1.0]])
    shares = np.array([0.7, 0.2, 0.1])[:, None]  # (joint, 1)
    passed = rng.uniform(-4.0, 4.0, (FRAMES, 1, 3)) * np.array([1.0, -1.0, 0.0])[:, None]
    clean = spine_rotvec(posture + shares * trunk[:, None])
    passing = spine_rotvec(posture + shares * trunk[:, None] + passed)
    split = np.array([[0.8, 1.0, 0.75], [0.1, 0.0, 0.15], [0.1, 0.0, 0.1]])

    for fitted in (clean, passing):
        shared = split_trunk(fitted, split)
        # the thorax (the three joints' product) moves exactly as fitted
        np.testing.assert_allclose(trunk_of(shared), trunk_of(fitted), atol=1e-9)
        # spine1 and spine2 keep their mean posture, and move by their share of the trunk
        np.testing.assert_allclose(
            joint_angles_deg(shared)[:, :2].mean(axis=0),
            joint_angles_deg(fitted)[:, :2].mean(axis=0),
            atol=1e-9,
        )
        trunk_deg = np.degrees(cardan_angles(trunk_of(fitted)))
        np.testing.assert_allclose(
            np.ptp(joint_angles_deg(shared)[:, 0], axis=0), split[0] * np.ptp(trunk_deg, 0)
        )
    # the two fits' spine1 and spine2 differed by the passing (2.3 deg RMS); shared, they differ
    # by the Cardan angles' second order only
    before = joint_angles_deg(passing)[:, :2] - joint_angles_deg(clean)[:, :2]
    after = joint_angles_deg(split_trunk(passing, split)) - joint_angles_deg(split_trunk(clean, split))
    assert np.sqrt(np.mean(before**2)) > 2.0 and np.sqrt(np.mean(after[:, :2] ** 2)) < 0.4
