"""Segmental motion of the vertebra chain: per-level ranges and the chain's forward kinematics.

Per-level ranges are White & Panjabi's representative segmental ranges (White & Panjabi 1990,
Clinical Biomechanics of the Spine; REFERENCES.md section 2, values recalled there, UNVERIFIED
against the table): flexion-extension mostly at the low lumbar levels, axial rotation mostly at
the mid-thoracic levels. A region's rotation is shared among its joints in proportion to their
ranges, per plane (w_i = ROM_i / sum ROM).

Joint k (k = 1..18) rotates vertebra k relative to vertebra k-1 about vertebra k's origin, in axes
aligned with the body (anatomical axes, SMPL's x left, y up, z anterior), so world rotations
accumulate as G_k = G_(k-1) Q_k from G_S1 = the pelvis.
"""

from __future__ import annotations

import numpy as np

# Segmental ranges (deg) per joint: flexion-extension, lateral bending, axial rotation.
# Lumbar joints L5-S1, L4-L5, L3-L4, L2-L3, L1-L2 (joints 1..5).
LUMBAR_LEVEL_ROM = np.array([[17, 3, 1], [16, 6, 2], [15, 8, 2], [14, 6, 2], [12, 6, 2]], dtype=np.float64)
# Thoracic joints T12-L1, T11-T12, ..., T1-T2 (joints 6..17); C7-T1 (joint 18) stays still.
THORACIC_LEVEL_ROM = np.array(
    [[12, 8, 2], [12, 9, 2], [9, 7, 2], [6, 6, 4], [6, 6, 7], [6, 6, 8], [5, 6, 8], [4, 6, 8]]
    + [[4, 6, 9]] * 4,
    dtype=np.float64,
)


def level_weights(level_rom: np.ndarray) -> np.ndarray:
    """(K, 3) share of each joint in each plane."""
    return level_rom / level_rom.sum(axis=0, keepdims=True)


def chain_world(
    pelvis_rotation: np.ndarray,
    pelvis_position_m: np.ndarray,
    joints: np.ndarray,
    rest_origins_m: np.ndarray,
    rest_pelvis_m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, 19, 3, 3) of the anatomical axes of S1..C7 and their origins (T, 19, 3).

    Args:
        pelvis_rotation: (T, 3, 3) pelvis (= S1) rotation in the lab; pelvis_position_m: (T, 3) its joint.
        joints: (T, 18, 3, 3) intervertebral rotations; rest_origins_m: (19, 3) rest vertebra origins
            in the body frame; rest_pelvis_m: (3,) the rest pelvis joint in that frame.
    """
    rotations = [pelvis_rotation]
    origins = [pelvis_position_m + np.einsum("tij,j->ti", pelvis_rotation, rest_origins_m[0] - rest_pelvis_m)]
    for k in range(1, len(rest_origins_m)):  # 18 levels: the chain is inherently sequential
        origins.append(
            origins[-1] + np.einsum("tij,j->ti", rotations[-1], rest_origins_m[k] - rest_origins_m[k - 1])
        )
        rotations.append(rotations[-1] @ joints[:, k - 1])
    return np.stack(rotations, axis=1), np.stack(origins, axis=1)
