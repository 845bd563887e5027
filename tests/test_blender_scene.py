"""The Blender scene reproduces the core's motion: bone heads and skinned mesh, keyframes, reopen."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.kinematics import SMPL_LIKE_REST_JOINTS_M
from hmn_blender_addon.mocap import load_bvh_as_smpl
from hmn_blender_addon.rig import Rig, RigMotion, posed_heads, skinned_vertices
from hmn_blender_addon.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS, VERTEBRA_NAMES

bpy = pytest.importorskip("bpy")  # the test command's environment always has it (requirements.lock)
from hmn_blender_addon.blender import scene as blender_scene  # noqa: E402


def synthetic_rig() -> Rig:
    """SMPL-like joints + a vertebra chain from the pelvis up to the neck, each bone owning a
    small tetrahedron of vertices, plus vertices blended half/half with the parent bone."""
    vertebrae = len(VERTEBRA_NAMES)
    pelvis, neck = SMPL_LIKE_REST_JOINTS_M[0], SMPL_LIKE_REST_JOINTS_M[12]
    chain = pelvis + np.linspace(0.02, 0.98, vertebrae)[:, None] * (neck - pelvis) + [0, 0, -0.05]
    heads = np.concatenate([SMPL_LIKE_REST_JOINTS_M, chain]).astype(np.float64)
    parents = np.concatenate([SMPL_PARENTS, [0], np.arange(24, 24 + vertebrae - 1)])
    bones = len(heads)
    tetra = np.array([[0.02, 0, 0], [0, 0.02, 0], [0, 0, 0.02], [-0.01, -0.01, -0.01]])
    vertices = (heads[:, None] + tetra).reshape(-1, 3)
    weights = np.repeat(np.eye(bones), 4, axis=0)
    # Blended vertices halfway between each bone and its parent.
    children = np.arange(1, bones)
    mids = 0.5 * (heads[children] + heads[parents[children]])
    mid_weights = np.zeros((len(children), bones))
    mid_weights[np.arange(len(children)), children] = 0.5
    mid_weights[np.arange(len(children)), parents[children]] = 0.5
    faces = np.arange(bones)[:, None] * 4 + np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])[:, None]
    return Rig(
        bone_names=(*SMPL_JOINT_NAMES, *VERTEBRA_NAMES),
        parents=parents,
        rest_heads_m=heads,
        rest_vertices_m=np.concatenate([vertices, mids]),
        faces=faces.transpose(1, 0, 2).reshape(-1, 3),
        skin_weights=np.concatenate([weights, mid_weights]),
    )


@pytest.fixture(scope="module")
def walking_motion(shared_data) -> RigMotion:
    clip = load_bvh_as_smpl(shared_data / "mocap" / "cmu_walk" / "07_01.bvh.gz", target_fps=30.0)
    frames = clip.local_rotvec_rad.shape[0]
    rng = np.random.default_rng(3)
    phase = np.linspace(0, 4 * np.pi, frames)[:, None, None]
    vertebra_rotvec = (
        0.03
        * np.sin(phase + rng.uniform(0, 6, (1, len(VERTEBRA_NAMES), 1)))
        * rng.normal(size=(1, len(VERTEBRA_NAMES), 3))
    )
    rotvec = np.concatenate([clip.local_rotvec_rad, vertebra_rotvec], axis=1)
    rotations = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(frames, -1, 3, 3)
    lumbar = np.degrees(vertebra_rotvec[:, 5, 0])
    return RigMotion(
        local_rotations=rotations,
        root_position_m=clip.root_transl_m.astype(np.float64),
        fps=clip.fps,
        curves_deg={"lumbar_flexion_deg": lumbar},
        markers={"HS L": [3, 40], "HS R": [21]},
    )


def evaluated_state(armature, mesh, frame: int, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    bpy.context.scene.frame_set(frame)
    world = np.array(armature.matrix_world)
    heads = np.array(
        [world[:3, :3] @ np.array(armature.pose.bones[name].head) + world[:3, 3] for name in names]
    )
    evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
    data = evaluated.to_mesh()
    coordinates = np.empty(len(data.vertices) * 3)
    data.vertices.foreach_get("co", coordinates)
    evaluated.to_mesh_clear()
    mesh_world = np.array(mesh.matrix_world)
    vertices = coordinates.reshape(-1, 3) @ mesh_world[:3, :3].T + mesh_world[:3, 3]
    return heads, vertices


def test_scene_reproduces_the_core_motion_and_survives_save_and_reopen(walking_motion, tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rig = synthetic_rig()
    armature, mesh = blender_scene.build_subject(rig, walking_motion, "subject")
    frames = walking_motion.local_rotations.shape[0]
    checked = [0, frames // 2, frames - 1]
    core_heads = blender_scene.to_z_up(posed_heads(rig, walking_motion)[checked])
    subset = RigMotion(
        walking_motion.local_rotations[checked], walking_motion.root_position_m[checked], 30.0, {}, {}
    )
    core_vertices = blender_scene.to_z_up(skinned_vertices(rig, subset))
    for row, frame in enumerate(checked):
        heads, vertices = evaluated_state(armature, mesh, blender_scene.FIRST_FRAME + frame, rig.bone_names)
        assert np.abs(heads - core_heads[row]).max() < 1e-3
        assert np.abs(vertices - core_vertices[row]).max() < 1e-3

    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, frames)
    assert sorted((m.name, m.frame) for m in scene.timeline_markers) == [
        ("HS L", 4),
        ("HS L", 41),
        ("HS R", 22),
    ]
    bones = armature.data.bones
    assert bones["S1"].parent.name == "pelvis" and bones["C7"].parent.name == "T1"
    assert [b.name for b in bones["S1"].children_recursive][-1] == "C7"
    channelbag = blender_scene.anim_utils.action_get_channelbag_for_slot(
        armature.animation_data.action, armature.animation_data.action_slot
    )
    assert len(channelbag.fcurves) == 4 * len(rig.bone_names) + 3 + 1
    assert all(len(curve.keyframe_points) == frames for curve in channelbag.fcurves)

    path = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    armature, mesh = bpy.data.objects["subject rig"], bpy.data.objects["subject body"]
    heads, _ = evaluated_state(armature, mesh, blender_scene.FIRST_FRAME + checked[1], rig.bone_names)
    assert np.abs(heads - core_heads[1]).max() < 1e-3
    bpy.context.scene.frame_set(blender_scene.FIRST_FRAME + 10)
    assert armature["lumbar_flexion_deg"] == pytest.approx(
        walking_motion.curves_deg["lumbar_flexion_deg"][10], abs=1e-4
    )
