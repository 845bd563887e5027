"""Cardan angles, anatomical frames and the lab frame against hand-built rotations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.metrics.angles import (
    anatomical_rotations,
    cardan_angles,
    lab_rotation,
    lumbar_angles,
    pelvic_angles,
    rotation_from_cardan,
)

UP, LEFT, FRONT = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])


def test_signs_follow_the_design_conventions():
    ten = np.radians(10.0)
    # flexion positive: the longitudinal axis tips forward
    assert (rotation_from_cardan([ten, 0, 0]) @ UP)[2] > 0.17
    # lateral bending toward the left positive: the longitudinal axis tips to the subject's left (+x)
    assert (rotation_from_cardan([0, ten, 0]) @ UP)[0] > 0.17
    # axial rotation toward the left positive: the front turns toward the left
    assert (rotation_from_cardan([0, 0, ten]) @ FRONT)[0] > 0.17
    # a pure rotation about one axis reads in that plane only
    np.testing.assert_allclose(
        cardan_angles(Rotation.from_rotvec(ten * LEFT).as_matrix()), [ten, 0, 0], atol=1e-12
    )
    np.testing.assert_allclose(
        cardan_angles(Rotation.from_rotvec(-ten * FRONT).as_matrix()), [0, ten, 0], atol=1e-12
    )
    np.testing.assert_allclose(
        cardan_angles(Rotation.from_rotvec(ten * UP).as_matrix()), [0, 0, ten], atol=1e-12
    )


def test_cardan_round_trip_and_order():
    angles = np.radians([[20.0, -15.0, 30.0], [-5.0, 8.0, -12.0]])
    np.testing.assert_allclose(cardan_angles(rotation_from_cardan(angles)), angles, atol=1e-12)
    # the order is x, then z, then y (intrinsic): scipy's "XZY" with the bending sign flipped
    expected = Rotation.from_euler("XZY", angles * [1, -1, 1]).as_matrix()
    np.testing.assert_allclose(rotation_from_cardan(angles), expected, atol=1e-12)


def test_static_posture_reads_zero_whatever_the_lordotic_tilt():
    # S1 tilted 40 deg forward and L1 10 deg backward in the static posture (curve frames)
    s1 = Rotation.from_euler("x", 40, degrees=True).as_matrix()
    l1 = Rotation.from_euler("x", -10, degrees=True).as_matrix()
    static = np.stack([s1, l1])
    motion = rotation_from_cardan(np.radians([0.0, 6.0, 0.0]))  # both bend 6 deg... then L1 rotates 5 more
    extra = rotation_from_cardan(np.radians([0.0, 0.0, 5.0]))
    frames = np.stack([static, np.stack([motion @ s1, motion @ extra @ l1])])
    anatomical = anatomical_rotations(frames, static, np.eye(3))
    lumbar = np.degrees(lumbar_angles(anatomical, 0, 1))
    np.testing.assert_allclose(lumbar[0], 0.0, atol=1e-12)
    # only the 5 deg axial rotation of L1 relative to S1 remains: no lordosis leaks into it
    np.testing.assert_allclose(lumbar[1], [0.0, 0.0, 5.0], atol=1e-9)
    pelvis = np.degrees(pelvic_angles(anatomical[:, 0], np.eye(3)))
    np.testing.assert_allclose(pelvis, [[0, 0, 0], [0, 6, 0]], atol=1e-9)


def test_lab_frame_follows_the_direction_of_progression():
    path = np.array([[0.0, 0.9, 0.0], [3.0, 1.0, 0.0]])  # walking along +x, bobbing up
    lab = lab_rotation(path)
    np.testing.assert_allclose(lab[:, 2], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(lab[:, 1], UP)
    np.testing.assert_allclose(lab[:, 0], [0, 0, -1], atol=1e-12)  # the walker's left
    np.testing.assert_allclose(np.linalg.det(lab), 1.0)
    with pytest.raises(ValueError, match="direction of progression"):
        lab_rotation(np.array([[0.0, 0.9, 0.0], [0.0, 1.2, 0.0]]))
