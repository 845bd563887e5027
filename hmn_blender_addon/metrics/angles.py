"""Anatomical frames and Cardan angles (DESIGN.md section 6).

Body and lab frames are SMPL's: x toward the subject's left, y up, z anterior. A rotation of a
segment relative to another is decomposed as ``R = Rx(a) @ Rz(b) @ Ry(c)`` (Cardan order x, z, y:
flexion/extension, lateral bending, axial rotation). Right-handed rotations about x (left) flex the
trunk forward and about y (up) turn the front toward the left; about z (anterior) they bend toward
the right, so lateral bending is reported as ``-b`` to make bending toward the left positive.
"""

from __future__ import annotations

import numpy as np

Y_UP: np.ndarray = np.array([0.0, 1.0, 0.0])  # SMPL's and the lab's up axis


def _rx(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _ry(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rz(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, i = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def cardan_angles(rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) relative rotations -> (..., 3) radians: flexion (+forward), lateral bending (+left),
    axial rotation (+toward the left)."""
    r = np.asarray(rotation, dtype=np.float64)
    # Rx(a) Rz(b) Ry(c): R[0,1] = -sin b, R[2,1] = sin a cos b, R[1,1] = cos a cos b,
    # R[0,2] = cos b sin c, R[0,0] = cos b cos c.
    b = np.arcsin(np.clip(-r[..., 0, 1], -1.0, 1.0))
    a = np.arctan2(r[..., 2, 1], r[..., 1, 1])
    c = np.arctan2(r[..., 0, 2], r[..., 0, 0])
    return np.stack([a, -b, c], axis=-1)


def rotation_from_cardan(angles_rad: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cardan_angles`: (..., 3) (flexion, bending, axial rotation) -> (..., 3, 3)."""
    angles = np.asarray(angles_rad, dtype=np.float64)
    return _rx(angles[..., 0]) @ _rz(-angles[..., 1]) @ _ry(angles[..., 2])


def anatomical_rotations(
    segment_rotations: np.ndarray, static_rotations: np.ndarray, static_body_axes: np.ndarray
) -> np.ndarray:
    """Anatomical frames: the body's axes in the static posture, moved by each segment's motion.

    Args:
        segment_rotations: (T, L, 3, 3) world rotations of each segment's frame (e.g. vertebra frames,
            columns = the frame's axes in world coordinates).
        static_rotations: (L, 3, 3) the same frames in the subject's static posture.
        static_body_axes: (3, 3) columns = the body's mediolateral (left), longitudinal (up) and
            anteroposterior (anterior) axes in world coordinates in the static posture.
    Returns:
        (T, L, 3, 3) anatomical frames; they equal ``static_body_axes`` in the static posture, so the
        static posture reads zero in every plane and a segment's lordotic tilt never enters the angles.
    """
    motion = segment_rotations @ np.swapaxes(static_rotations, -1, -2)
    return motion @ static_body_axes


def lab_rotation(pelvis_path_m: np.ndarray, up: np.ndarray = Y_UP) -> np.ndarray:
    """(3, 3) lab frame: y up (gravity), z along the horizontal direction of progression, x = y cross z.

    Args:
        pelvis_path_m: (T, 3) pelvis (or S1) positions in world coordinates; the direction of
            progression is its net horizontal displacement.
        up: (3,) world up.
    """
    up = up / np.linalg.norm(up)
    travel = pelvis_path_m[-1] - pelvis_path_m[0]
    forward = travel - (travel @ up) * up
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("the pelvis does not move horizontally: no direction of progression")
    forward = forward / norm
    return np.stack([np.cross(up, forward), up, forward], axis=-1)


def lumbar_angles(anatomical: np.ndarray, s1_index: int, l1_index: int) -> np.ndarray:
    """(T, L, 3, 3) anatomical frames -> (T, 3) radians: L1 relative to S1 (flexion, bending, rotation)."""
    s1 = anatomical[:, s1_index]
    return cardan_angles(np.swapaxes(s1, -1, -2) @ anatomical[:, l1_index])


def pelvic_angles(anatomical_s1: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """(T, 3, 3) S1 anatomical frames and (3, 3) lab frame -> (T, 3) radians: tilt (+anterior),
    obliquity (+toward the left, as lateral bending), rotation (+toward the left)."""
    return cardan_angles(lab.T @ anatomical_s1)
