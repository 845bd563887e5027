"""Surface landmarks as vertex ids, per mesh topology.

Each landmark is a skin point over a bony landmark, found on a body's zero-pose template
(SMPL frame: y up, x to the subject's left, z forward) by the rule in :data:`LANDMARK_RULES`.
Heights are fractions of the trunk height ``H = y(neck joint) - y(hip joints' midpoint)``
(about 0.55 m in an adult): the lumbar spine (T12 to S1, about 18 cm) and the thoracic spine
(C7 to T12, about 28 cm) put S1 at about 0.17 H, L3 at 0.33 H and T12 at 0.5 H above the hip
joints; the PSIS lies at the level of S2, about 0.15 H, and 0.4 of the hip joint's lateral
offset from the midline; the ASIS about 0.12 H above the hip joints and 1.1 times as lateral.

:data:`OPEN_BODY_LANDMARKS` is the table of the shipped open body (the rules applied to its
mean template; ``build-body`` prints it, a test checks it against the shipped file). For SMPL's
topology the same rules run on the official template when the file is loaded: no SMPL file may
be shipped or used in tests here, so its ids are not hard-coded. smplx's joint-selector vertices
(nose, eyes, ears, fingertips, toes, heels) are smplx's own table for SMPL and, for the open
body, stored in its file by ``build-body`` (found from the Anny bone each vertex follows).
"""

from __future__ import annotations

import numpy as np
from smplx.vertex_ids import vertex_ids as smplx_vertex_ids

from ..skeleton import SMPL_JOINT_INDEX

SIDES = ("left", "right")

# name -> where the rule puts it (the docstring explains the fractions).
LANDMARK_RULES: dict[str, str] = {
    "C7": "back midline, most posterior vertex at the neck joint's height",
    "T12": "back midline, most posterior vertex at 0.50 H above the hip joints",
    "L3": "back midline, most posterior vertex at 0.33 H above the hip joints",
    "S1": "back midline, most posterior vertex at 0.17 H above the hip joints",
    **{f"{s}_PSIS": "most posterior vertex at 0.15 H, 0.4 x the hip joint's lateral offset" for s in SIDES},
    **{f"{s}_ASIS": "most anterior vertex at 0.12 H, 1.1 x the hip joint's lateral offset" for s in SIDES},
    **{f"{s}_acromion": "topmost vertex within 2.5 cm (x, z) of the shoulder joint" for s in SIDES},
    **{f"{s}_heel": "most posterior vertex below the ankle joint, within 3 cm of it in x" for s in SIDES},
    **{f"{s}_toe": "most anterior vertex below the ankle joint on that side" for s in SIDES},
}

_MIDLINE_HALF_WIDTH_M = 0.015
# Half-heights of the horizontal slab searched, widened in turn on coarse meshes.
_SLAB_HALF_HEIGHTS_M = (0.01, 0.02, 0.04)


def _pick(vertices: np.ndarray, mask: np.ndarray, score: np.ndarray, name: str) -> int:
    if not mask.any():
        raise ValueError(f"landmark {name}: no vertex in its search region")
    candidates = np.nonzero(mask)[0]
    return int(candidates[np.argmax(score[candidates])])


def find_landmarks(template_m: np.ndarray, joints_m: np.ndarray) -> dict[str, int]:
    """Vertex id of each landmark of :data:`LANDMARK_RULES`.

    Args:
        template_m: (V, 3) zero-pose vertices, SMPL frame.
        joints_m: (24, 3) the template's SMPL joints.
    """
    x, y, z = template_m.T
    joint = {name: joints_m[i] for name, i in SMPL_JOINT_INDEX.items()}
    hip_y = 0.5 * (joint["left_hip"][1] + joint["right_hip"][1])
    trunk = joint["neck"][1] - hip_y
    hip_offset = 0.5 * (joint["left_hip"][0] - joint["right_hip"][0])
    midline = np.abs(x) < _MIDLINE_HALF_WIDTH_M

    def at_height(height: float, region: np.ndarray) -> np.ndarray:
        for half_height in _SLAB_HALF_HEIGHTS_M:
            mask = region & (np.abs(y - height) < half_height)
            if mask.any():
                break
        return mask

    ids = {"C7": _pick(template_m, at_height(joint["neck"][1], midline), -z, "C7")}
    for name, fraction in (("T12", 0.50), ("L3", 0.33), ("S1", 0.17)):
        ids[name] = _pick(template_m, at_height(hip_y + fraction * trunk, midline), -z, name)
    for side, sign in zip(SIDES, (1.0, -1.0), strict=True):
        psis_column = np.abs(x - sign * 0.4 * hip_offset) < _MIDLINE_HALF_WIDTH_M
        ids[f"{side}_PSIS"] = _pick(
            template_m, at_height(hip_y + 0.15 * trunk, psis_column), -z, f"{side}_PSIS"
        )
        asis_column = np.abs(x - sign * 1.1 * hip_offset) < _MIDLINE_HALF_WIDTH_M
        ids[f"{side}_ASIS"] = _pick(
            template_m, at_height(hip_y + 0.12 * trunk, asis_column), z, f"{side}_ASIS"
        )
        shoulder = joint[f"{side}_shoulder"]
        over = np.hypot(x - shoulder[0], z - shoulder[2]) < 0.025
        ids[f"{side}_acromion"] = _pick(template_m, over, y, f"{side}_acromion")
        ankle = joint[f"{side}_ankle"]
        foot = (y < ankle[1]) & (sign * x > 0)
        ids[f"{side}_heel"] = _pick(template_m, foot & (np.abs(x - ankle[0]) < 0.03), -z, f"{side}_heel")
        ids[f"{side}_toe"] = _pick(template_m, foot, z, f"{side}_toe")
    return {name: ids[name] for name in LANDMARK_RULES}


# The open body's surface landmarks (vertex ids of the shipped open_body.npz).
OPEN_BODY_LANDMARKS: dict[str, int] = {
    "C7": 1496,
    "T12": 3972,
    "L3": 4029,
    "S1": 4371,
    "left_PSIS": 10978,
    "right_PSIS": 4376,
    "left_ASIS": 10915,
    "right_ASIS": 4302,
    "left_acromion": 8264,
    "right_acromion": 1608,
    "left_heel": 12421,
    "right_heel": 5840,
    "left_toe": 11519,
    "right_toe": 4917,
}

# smplx's joint-selector vertices on SMPL's own topology (nose, eyes, ears, fingertips, toes, heels).
SMPL_SELECTOR_VERTEX_IDS: dict[str, int] = dict(smplx_vertex_ids["smplh"])

SELECTOR_NAMES: tuple[str, ...] = tuple(SMPL_SELECTOR_VERTEX_IDS)
