"""Surface landmarks of the open body lie where anatomy puts them, on the mean and on extreme shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmn_blender_addon.body.landmarks import LANDMARK_RULES, OPEN_BODY_LANDMARKS, find_landmarks
from hmn_blender_addon.body.model import body_forward, load_body_model
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX


@pytest.fixture(scope="module")
def body():
    return load_body_model("open")


def _shapes(body) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertices, joints) of the mean shape and of +-2 SD along the first three shape directions."""
    betas = np.zeros((7, body.num_betas), dtype=np.float32)
    for k in range(3):
        betas[1 + 2 * k, k], betas[2 + 2 * k, k] = 2.0, -2.0
    vertices, joints = body_forward(body, torch.from_numpy(betas), torch.zeros(7, 24, 3))
    return list(zip(vertices.numpy(), joints.numpy(), strict=True))


def test_table_is_what_the_rules_find_on_the_shipped_template(body) -> None:
    joints = body.J_regressor @ body.v_template_m
    assert find_landmarks(body.v_template_m, joints) == OPEN_BODY_LANDMARKS
    assert set(OPEN_BODY_LANDMARKS) == set(LANDMARK_RULES)
    assert all(body.landmarks[name] == vertex for name, vertex in OPEN_BODY_LANDMARKS.items())


def test_landmarks_are_anatomically_placed(body) -> None:
    for vertices, joints in _shapes(body):
        point = {name: vertices[vertex] for name, vertex in OPEN_BODY_LANDMARKS.items()}
        joint = {name: joints[i] for name, i in SMPL_JOINT_INDEX.items()}
        neck, pelvis = joint["neck"], joint["pelvis"]
        # C7: at the back of the neck base, on the midline.
        assert abs(point["C7"][0]) < 0.01
        assert point["C7"][2] < neck[2] - 0.03
        assert abs(point["C7"][1] - neck[1]) < 0.03
        # The spine's back: C7 above T12 above L3 above S1, all behind the trunk joints, midline.
        heights = [point[name][1] for name in ("C7", "T12", "L3", "S1")]
        assert heights == sorted(heights, reverse=True)
        for name in ("T12", "L3", "S1"):
            assert abs(point[name][0]) < 0.01
            assert point[name][2] < min(pelvis[2], joint["spine1"][2], joint["spine2"][2]) - 0.015
        for side, sign in (("left", 1), ("right", -1)):
            hip = joint[f"{side}_hip"]
            psis, asis = point[f"{side}_PSIS"], point[f"{side}_ASIS"]
            # PSIS: behind and above the hip joint, medial to it; ASIS: in front, above, lateral to the PSIS.
            assert psis[2] < hip[2] - 0.05 and psis[1] > hip[1] + 0.03
            assert 0 < sign * psis[0] < sign * hip[0]
            assert asis[2] > hip[2] + 0.05 and asis[1] > hip[1]
            assert sign * asis[0] > sign * psis[0] + 0.04
            # Acromion: on top of the shoulder joint, lateral to the neck.
            acromion, shoulder = point[f"{side}_acromion"], joint[f"{side}_shoulder"]
            assert 0.01 < acromion[1] - shoulder[1] < 0.1
            assert sign * acromion[0] > sign * joint[f"{side}_collar"][0] + 0.08
            # Heel behind and below the ankle; toe in front of the ball of the foot, near the floor.
            ankle, ball = joint[f"{side}_ankle"], joint[f"{side}_foot"]
            heel, toe = point[f"{side}_heel"], point[f"{side}_toe"]
            floor = vertices[:, 1].min()
            assert heel[2] < ankle[2] - 0.03 and heel[1] < ankle[1] - 0.02
            assert toe[2] > ball[2] + 0.02 and toe[1] < floor + 0.04
            assert sign * heel[0] > 0 and sign * toe[0] > 0
