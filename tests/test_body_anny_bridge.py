"""Anny driven by SMPL rotations: joints follow SMPL forward kinematics exactly, zero pose is a T-pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hmn_blender_addon.body import anny_bridge
from hmn_blender_addon.kinematics import global_rotmats
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX, SMPL_PARENTS

DEFAULT_PHENOTYPE = torch.full((1, 6), 0.5)


def test_every_bone_moves_with_one_smpl_joint_and_drivers_map_to_their_joint() -> None:
    model = anny_bridge.anny_model()
    joint_of_bone = anny_bridge.bone_joint_index(model.bone_labels, model.bone_parents)
    assert joint_of_bone.shape == (len(model.bone_labels),)
    for name, bones in anny_bridge.SMPL_DRIVE_BONES.items():
        for bone in bones:
            assert joint_of_bone[model.bone_labels.index(bone)] == SMPL_JOINT_INDEX[name]
    # Twist and lumbar bones follow their driven ancestor.
    assert joint_of_bone[model.bone_labels.index("upperarm02.L")] == SMPL_JOINT_INDEX["left_shoulder"]
    assert joint_of_bone[model.bone_labels.index("spine04")] == SMPL_JOINT_INDEX["pelvis"]
    assert joint_of_bone[model.bone_labels.index("eye.R")] == SMPL_JOINT_INDEX["head"]


def test_zero_pose_is_a_t_pose_in_smpl_frame() -> None:
    vertices, joints = anny_bridge.anny_posed(DEFAULT_PHENOTYPE, np.zeros((1, 24, 3)))
    joints = joints[0].numpy()
    np.testing.assert_allclose(joints[0], 0.0, atol=1e-6)  # pelvis at the origin
    for side in ("left", "right"):
        arm = joints[[SMPL_JOINT_INDEX[f"{side}_{j}"] for j in ("shoulder", "elbow", "wrist", "hand")]]
        np.testing.assert_allclose(arm[:, 1:], arm[:1, 1:].repeat(4, 0), atol=1e-5)  # straight along x
        assert np.all(np.sign(np.diff(arm[:, 0])) == (1 if side == "left" else -1))
    assert joints[SMPL_JOINT_INDEX["head"], 1] > joints[SMPL_JOINT_INDEX["neck"], 1] > 0.3  # y up
    assert (
        joints[SMPL_JOINT_INDEX["left_foot"], 2] > joints[SMPL_JOINT_INDEX["left_ankle"], 2] + 0.08
    )  # faces +z
    stature = float(vertices[0, :, 1].max() - vertices[0, :, 1].min())
    assert 1.55 < stature < 1.7  # anny's default 1.61 m adolescent


def test_posed_joints_follow_smpl_forward_kinematics() -> None:
    rng = np.random.default_rng(4)
    rotvec = rng.normal(0.0, 0.4, (3, 24, 3))
    transl = rng.normal(0.0, 0.5, (3, 3))
    _, rest = anny_bridge.anny_posed(DEFAULT_PHENOTYPE, np.zeros((1, 24, 3)))
    _, posed = anny_bridge.anny_posed(DEFAULT_PHENOTYPE, rotvec, transl)
    rest = rest[0].double().numpy()
    rotations = global_rotmats(Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(3, 24, 3, 3))
    expected = np.empty((3, 24, 3))
    expected[:, 0] = rest[0] + transl
    for child in range(1, 24):
        parent = SMPL_PARENTS[child]
        expected[:, child] = expected[:, parent] + rotations[:, parent] @ (rest[child] - rest[parent])
    np.testing.assert_allclose(posed.numpy(), expected, atol=1e-5)


def test_anny_model_points_anny_at_the_project_cache(tmp_path, monkeypatch) -> None:
    import anny
    import anny.paths

    monkeypatch.delenv("ANNY_CACHE_DIR", raising=False)
    monkeypatch.setenv("HMN_CACHE_DIR", str(tmp_path))
    # As if anny had been imported before anyone set ANNY_CACHE_DIR: it would use the home folder.
    monkeypatch.setattr(anny.paths, "_ANNY_CACHE_DIR", [Path.home() / ".cache" / "anny"])
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self, **kwargs) -> None:
            super().__init__()
            seen.append(anny.paths.get_anny_cache_path())

    monkeypatch.setattr(anny, "Anny", Recorder)
    anny_bridge.anny_model.cache_clear()
    try:
        anny_bridge.anny_model()
    finally:
        anny_bridge.anny_model.cache_clear()
    assert seen == [tmp_path / "anny"]
