"""The dynamic spine on the open body: rig heads, segmental distribution, chain inside the mesh, skinning."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.body.model import load_body_model
from hmn_blender_addon.metrics.angles import cardan_angles, rotation_from_cardan
from hmn_blender_addon.report import posed_vertices
from hmn_blender_addon.rig import Rig, RigMotion, posed_heads, skinned_vertices
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX, SMPL_PARENTS, VERTEBRA_NAMES
from hmn_blender_addon.spine import dynamic
from hmn_blender_addon.spine.dynamic import dynamic_spine, level_groups, shaped_rest, spine_skin_weights
from hmn_blender_addon.spine.morphology import SpineMorphology
from hmn_blender_addon.spine.profile import SpineProfile, place_spine, spine_anchors

FRAMES = 12


def winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) generalised winding number of a triangle mesh at points (about 1 inside, 0 outside)."""
    a, b, c = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))  # (P, F, 3)
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    numerator = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    denominator = (
        la * lb * lc
        + np.einsum("pfi,pfi->pf", a, b) * lc
        + np.einsum("pfi,pfi->pf", a, c) * lb
        + np.einsum("pfi,pfi->pf", b, c) * la
    )
    return np.arctan2(numerator, denominator).sum(axis=1) / (2 * np.pi)


@pytest.fixture(scope="module")
def walking():
    """The open body (mean shape) bending its trunk up to 15 deg per spine joint in every plane."""
    body = load_body_model("open")
    betas = np.zeros(body.num_betas)
    vertices, joints = shaped_rest(body, betas)
    hips = 0.5 * (joints[SMPL_JOINT_INDEX["left_hip"]] + joints[SMPL_JOINT_INDEX["right_hip"]])
    stature = float(np.ptp(vertices[:, 1]))
    s1, c7 = spine_anchors(vertices, hips, joints[SMPL_JOINT_INDEX["neck"]], stature)
    rest = place_spine(SpineProfile(50.0, 45.0, 0.0), s1, c7)
    morphology = SpineMorphology(rest.profile, rest, "body_surface", 0, rest.origins_m[:, 1:])
    rng = np.random.default_rng(4)
    local = np.zeros((FRAMES, 24, 3))
    local[:, 0] = Rotation.from_euler("xyz", rng.uniform(-180, 180, (FRAMES, 3)), degrees=True).as_rotvec()
    for name in ("spine1", "spine2", "spine3"):
        cardan = np.radians(rng.uniform(-15, 15, (FRAMES, 3)))
        local[:, SMPL_JOINT_INDEX[name]] = Rotation.from_matrix(rotation_from_cardan(cardan)).as_rotvec()
    transl = rng.normal(0.0, 1.0, (FRAMES, 3))
    return (
        body,
        betas,
        vertices,
        joints,
        rest,
        local,
        transl,
        dynamic_spine(body, betas, local, transl, morphology),
    )


def test_groups_follow_the_open_body_joints(walking):
    _, _, _, joints, rest, *_ = walking
    # spine1 (about L4) takes L5-S1 .. L3-L4, spine2 (about L1) L2-L3 .. T12-L1, spine3 the rest
    np.testing.assert_array_equal(level_groups(joints, rest.origins_m), [0] * 3 + [1] * 3 + [2] * 12)


def test_rig_heads_reproduce_the_vertebra_centres_and_s1_rides_on_the_pelvis(walking):
    body, _, vertices, joints, _, local, transl, spine = walking
    assert spine.names == VERTEBRA_NAMES
    rig = Rig(
        bone_names=tuple(str(i) for i in range(24 + len(spine.names))),
        parents=np.concatenate([SMPL_PARENTS, spine.parents]),
        rest_heads_m=np.concatenate([joints, spine.rest_heads_m]),
        rest_vertices_m=vertices,
        faces=body.faces,
        skin_weights=np.zeros((len(vertices), 24 + len(spine.names))),
    )
    local_rotations = Rotation.from_rotvec(local.reshape(-1, 3)).as_matrix().reshape(FRAMES, 24, 3, 3)
    motion = RigMotion(
        np.concatenate([local_rotations, spine.local_rotations], axis=1), transl + joints[0], 30.0, {}, {}
    )
    np.testing.assert_allclose(posed_heads(rig, motion)[:, 24:], spine.centres_m, atol=1e-9)
    np.testing.assert_allclose(spine.rotations[:, 0], local_rotations[:, 0], atol=1e-12)


def test_a_long_clip_moved_in_chunks_gives_the_same_chain(walking, monkeypatch):
    body, betas, _, _, rest, local, transl, spine = walking
    morphology = SpineMorphology(rest.profile, rest, "body_surface", 0, rest.origins_m[:, 1:])
    monkeypatch.setattr(dynamic, "FRAME_CHUNK", 5)  # 12 frames: chunks of 5, 5 and 2
    chunked = dynamic.dynamic_spine(body, betas, local, transl, morphology)
    for name in ("centres_m", "rotations", "local_rotations"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(spine, name), atol=1e-12)
    # a run stores the chain in float32: the float64 chain rounded
    stored = dynamic.dynamic_spine(body, betas, local, transl, morphology, np.float32)
    for name in ("centres_m", "rotations"):
        assert getattr(stored, name).dtype == np.float32
        np.testing.assert_array_equal(getattr(stored, name), getattr(spine, name).astype(np.float32))


def test_trunk_rotation_is_shared_by_the_levels(walking):
    *_, local, _, spine = walking
    relative = np.swapaxes(spine.rotations[:, :-1], -1, -2) @ spine.rotations[:, 1:]  # Q_1 .. Q_18
    # a group's product equals its SMPL joint's rotation up to the Cardan composition, an error of
    # second order in the angles (under 2 deg at these 15 deg per plane, 0.1 deg at walking's 5)
    for name, rows in (("spine1", slice(0, 3)), ("spine2", slice(3, 6)), ("spine3", slice(6, 18))):
        product = np.tile(np.eye(3), (FRAMES, 1, 1))
        for k in range(rows.start, rows.stop):
            product = product @ relative[:, k]
        smpl = Rotation.from_rotvec(local[:, SMPL_JOINT_INDEX[name]]).as_matrix()
        angle = np.linalg.norm(Rotation.from_matrix(np.swapaxes(smpl, -1, -2) @ product).as_rotvec(), axis=-1)
        assert np.degrees(angle).max() < 2.0, name
    # White & Panjabi: L5-S1 takes the largest lumbar share of flexion (17 of 17+16+15 deg within spine1)
    flexion = np.degrees(cardan_angles(relative[:, :3])[..., 0])
    smpl_flexion = np.degrees(cardan_angles(Rotation.from_rotvec(local[:, 3]).as_matrix())[:, 0])
    np.testing.assert_allclose(flexion[:, 0], smpl_flexion * 17 / 48, atol=1e-9)
    assert np.allclose(relative[:, -1], np.eye(3))  # C7-T1 stays with T1


def test_chain_stays_inside_the_mesh_on_every_frame(walking):
    body, betas, _, _, _, local, transl, spine = walking
    meshes = posed_vertices(body, betas, local, transl)
    for frame in range(FRAMES):
        winding = winding_numbers(spine.centres_m[frame], meshes[frame], body.faces)
        assert (winding > 0.5).all(), (frame, np.array(spine.names)[winding <= 0.5])


def test_skin_weights_move_the_torso_to_the_vertebrae(walking):
    body, _, vertices, joints, _, local, transl, spine = walking
    weights = spine_skin_weights(body.weights, vertices, spine.rest_heads_m)
    assert weights.shape == (len(vertices), 24 + len(spine.names))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    spine_columns = [SMPL_JOINT_INDEX[n] for n in ("spine1", "spine2", "spine3")]
    assert weights[:, spine_columns].max() == 0.0
    np.testing.assert_allclose(weights[:, 24:].sum(), body.weights[:, spine_columns].sum(), rtol=1e-6)
    # the rig's mesh follows the body's own skinning closely in the trunk
    rig = Rig(
        tuple(str(i) for i in range(weights.shape[1])),
        np.concatenate([SMPL_PARENTS, spine.parents]),
        np.concatenate([joints, spine.rest_heads_m]),
        vertices,
        body.faces,
        weights,
    )
    local_rotations = Rotation.from_rotvec(local.reshape(-1, 3)).as_matrix().reshape(FRAMES, 24, 3, 3)
    motion = RigMotion(
        np.concatenate([local_rotations, spine.local_rotations], 1), transl + joints[0], 30.0, {}, {}
    )
    rig_mesh = skinned_vertices(rig, motion)
    body_mesh = posed_vertices(body, np.zeros(body.num_betas), local, transl)
    torso = body.weights[:, spine_columns].sum(axis=1) > 0.5
    gap = np.linalg.norm(rig_mesh[:, torso] - body_mesh[:, torso], axis=-1)
    assert np.median(gap) < 0.01 and gap.max() < 0.05
