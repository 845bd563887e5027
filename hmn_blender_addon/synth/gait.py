"""The walking body of a synthetic clip: real CMU limb motion on Anny, the trunk from the spine model.

World (lab) frame: SMPL's axes (x left of the walker, y up, z the direction of walking), metres,
the floor at y = 0. Steps:
1. The phenotype and spine profile come from the body seed; Anny's rest body, its spine bones bent
   so that its back shows the drawn curvature (:func:`curved_rest_body`), gives the stature, the 24
   SMPL-named joint centres (the bone heads the body bridge maps to each SMPL joint:
   ``anny_bridge.SMPL_DRIVE_BONES``) and the spine's anchors.
2. A CMU walk and a window of it come from the seed (a stride repeated when the clip is short);
   where the CMU folder is absent, the procedural walk of :mod:`.procedural` stands in.
   Its gait phase (0 at each left heel strike) drives the trunk model; its legs and arms are
   retargeted through the body bridge, keeping the thighs' captured world orientations under the
   model's pelvis and the collars' captured rotations relative to the model's thorax (so the
   shoulders follow the thorax); its pelvis orientation and spine rotations
   are replaced by the trunk model, and the neck and head move with the thorax (the captured
   neck extends to compensate the captured spine's flexion, which the model replaces); its
   pelvis path, turned so that its whole strides travel along +z and scaled by leg length, keeps
   its sway and progression.
3. Anny's trunk bones deform the bent mesh with the vertebra-level rotations: each of ``spine05`` ..
   ``spine01`` takes the product of the intervertebral rotations whose joints lie between its head
   and the next bone's head (in the rest posture), so the mesh's trunk follows the vertebra chain
   (exactly at those bone boundaries, within a few millimetres between them).
4. Each frame is lifted so that the body's lowest point touches the floor (walking always has a
   foot on the ground), and heel strikes are detected on the final joints (Zeni, as the pipeline does).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from ..body.anny_bridge import ANNY_TO_SMPL, anny_model, anny_pose_from_smpl, joint_centres_from_bone_heads
from ..errors import HMNError
from ..kinematics import SMPL_LIKE_REST_JOINTS_M, forward_kinematics, global_rotmats
from ..metrics.angles import rotation_from_cardan
from ..metrics.cycles import heel_strikes_from_joints
from ..mocap import MocapClip, walking_clips
from ..skeleton import SMPL_JOINT_INDEX
from ..spine.morphology import rest_back_profile
from ..spine.profile import RestSpine, SpineProfile, place_spine, spine_anchors
from ..spine.segments import chain_world
from .clothing import garment_regions
from .phenotype import Phenotype, sample_phenotype
from .procedural import procedural_clip
from .spine import sample_profile
from .trunk import (
    TrunkAmplitudes,
    healthy_relative_phase_deg,
    joint_rotations,
    region_angles_rad,
    sample_amplitudes,
)

ANNY_SPINE_BONES = ("spine05", "spine04", "spine03", "spine02", "spine01")
SPINE_BEND_REGULARISER = 0.05  # residual per degree of bend: prefers small bends among equal fits
REPLACED_SMPL_JOINTS = ("spine1", "spine2", "spine3")
FRAME_CHUNK = 32  # frames per Anny evaluation: bounds the skinning's memory
LEAD_FRAMES = 8  # a window starts this many frames before a left heel strike (edge peaks are weak)


@dataclass(frozen=True)
class GaitSettings:
    seed: int
    body_seed: int
    frames: int
    fps: float
    lumbar_rom_scale: float
    asymmetry: float
    coordination_phase_deg: float | None = None  # None: healthy walking's at the walk's speed


@dataclass(frozen=True)
class Motion:
    """A synthetic walk in the lab frame (see the module docstring), T frames.

    vertices_m: (T, V, 3) float32 body mesh; faces: (F, 3) int64 triangles.
    joints_m: (T, 24, 3) SMPL-named joint centres on the Anny body.
    vertebrae_m: (T, 19, 3) vertebral body centres S1..C7; vertebra_rotations: (T, 19, 3, 3) their
    curve frames; anatomical_rotations: (T, 19, 3, 3) their anatomical frames (body axes moved by
    each vertebra's motion; identity in the static posture).
    heel_strikes: {"left": [...], "right": [...]} frames.
    face_regions: (F,) garment region per face (:mod:`.clothing`).
    """

    vertices_m: np.ndarray
    faces: np.ndarray
    joints_m: np.ndarray
    vertebrae_m: np.ndarray
    vertebra_rotations: np.ndarray
    anatomical_rotations: np.ndarray
    heel_strikes: dict[str, list[int]]
    face_regions: np.ndarray
    phenotype: Phenotype
    stature_m: float
    rest_spine: RestSpine
    spine_bends_rad: np.ndarray  # (5,) the rest posture's bends of spine05..spine01 (curved_rest_body)
    amplitudes: TrunkAmplitudes
    coordination_phase_deg: float  # the thorax-pelvis transverse phase the trunk model was given
    source: str  # mocap clip and frames used


@dataclass(frozen=True)
class RestBody:
    vertices_m: np.ndarray  # (V, 3) SMPL axes, pelvis joint at the origin
    joints_m: np.ndarray  # (24, 3)
    bone_heads_m: dict[str, np.ndarray]  # Anny spine bones' heads
    stature_m: float


def _phenotype_tensor(phenotype: Phenotype) -> torch.Tensor:
    model = anny_model()
    return torch.tensor([[phenotype.params[k] for k in model.phenotype_labels]], dtype=model.dtype)


def _to_smpl(anny_points: torch.Tensor) -> np.ndarray:
    return (anny_points.double() @ torch.as_tensor(ANNY_TO_SMPL).T).numpy()


def _about_lateral(angles_rad: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations about the body's lateral (SMPL x) axis; positive bends forward."""
    angles = np.asarray(angles_rad, dtype=np.float64)
    return (
        Rotation.from_rotvec(angles.reshape(-1, 1) * [1.0, 0.0, 0.0]).as_matrix().reshape(*angles.shape, 3, 3)
    )


def rest_body(phenotype: Phenotype, spine_bends_rad: np.ndarray | None = None) -> RestBody:
    """Anny's rest (reference) pose for a phenotype, in SMPL axes; ``spine_bends_rad`` (5,) bends
    spine05 .. spine01 about the lateral axis (see :func:`curved_rest_body`)."""
    model = anny_model()
    delta = np.tile(np.eye(4), (len(ANNY_SPINE_BONES), 1, 1))
    if spine_bends_rad is not None:
        delta[:, :3, :3] = ANNY_TO_SMPL.T @ _about_lateral(spine_bends_rad) @ ANNY_TO_SMPL
    pose = {
        bone: torch.as_tensor(delta[b : b + 1], dtype=torch.float32)
        for b, bone in enumerate(ANNY_SPINE_BONES)
    }
    with torch.no_grad():
        out = model(
            pose_parameters=pose,
            phenotype_kwargs=_phenotype_tensor(phenotype),
            pose_parameterization="local-ref",
        )
    heads = out["bone_poses"][0, :, :3, 3]
    vertices = _to_smpl(out["vertices"][0])
    joints = _to_smpl(joint_centres_from_bone_heads(heads, model.bone_labels))
    spine_heads = {b: _to_smpl(heads[model.bone_labels.index(b)]) for b in (*ANNY_SPINE_BONES, "neck01")}
    stature = float(vertices[:, 1].max() - vertices[:, 1].min())
    return RestBody(vertices, joints, spine_heads, stature)


def rest_anchors(body: RestBody) -> tuple[np.ndarray, np.ndarray]:
    """The S1 and C7 anchors (:func:`.profile.spine_anchors`) of a rest body."""
    hips = 0.5 * (body.joints_m[SMPL_JOINT_INDEX["left_hip"]] + body.joints_m[SMPL_JOINT_INDEX["right_hip"]])
    return spine_anchors(body.vertices_m, hips, body.bone_heads_m["neck01"], body.stature_m)


def curved_rest_body(phenotype: Phenotype, drawn: SpineProfile) -> tuple[RestBody, np.ndarray, SpineProfile]:
    """The rest body whose back shows the drawn curvature: (body, spine bends (5,) rad, its profile).

    Anny's own trunk has a curvature of its phenotype's (lordosis 7 to 70 deg over the bench's bodies,
    read from the back as the pipeline reads it: :func:`..spine.morphology.rest_back_profile`),
    unrelated to the drawn one, and a video can only show the back. So spine05 .. spine01 are bent
    about the lateral axis until the back's profile has the drawn lordosis and kyphosis, with the
    S1 -> C7 chord's direction kept (the trunk does not lean) and small bends preferred (up to about
    15 deg a bone on the bench's bodies: a lordosis of 30 deg more is about a centimetre deeper
    mid-lumbar).
    The back's profile is piecewise smooth in the bends (vertices enter and leave its strip), so the
    least-squares solve uses 2-degree central differences and, where it stalls more than a degree
    away, restarts from a step along a 6-degree secant. The returned profile is the one the bent back
    shows (within a degree of the drawn one when the solve reaches it): it is the truth.
    """

    def shown(bends_deg: np.ndarray) -> tuple[RestBody, SpineProfile, float]:
        """The bent body, its back's profile and its S1 -> C7 chord's angle from vertical (deg)."""
        body = rest_body(phenotype, np.radians(bends_deg))
        s1, c7 = rest_anchors(body)
        profile, _ = rest_back_profile(body.vertices_m, s1, c7, body.stature_m)
        return body, profile, float(np.degrees(np.arctan2(c7[2] - s1[2], c7[1] - s1[1])))

    start = np.zeros(len(ANNY_SPINE_BONES))
    chord_deg = shown(start)[2]

    def residual(bends_deg: np.ndarray) -> np.ndarray:
        _, profile, chord = shown(bends_deg)
        misses = [profile.lordosis_deg - drawn.lordosis_deg, profile.kyphosis_deg - drawn.kyphosis_deg]
        return np.r_[misses, chord - chord_deg, SPINE_BEND_REGULARISER * bends_deg]

    def secant(bends_deg: np.ndarray, step_deg: float) -> np.ndarray:
        return np.stack(
            [
                (residual(bends_deg + e) - residual(bends_deg - e)) / (2 * step_deg)
                for e in step_deg * np.eye(len(start))
            ],
            1,
        )

    solve = lambda x0: least_squares(residual, x0, jac=lambda x: secant(x, 2.0), xtol=1e-3, ftol=1e-4)  # noqa: E731
    best = solve(start)
    if np.abs(best.fun[:3]).max() > 1.0:
        step = np.linalg.lstsq(secant(start, 6.0)[:3], -residual(start)[:3], rcond=None)[0]
        retry = solve(step)
        best = retry if retry.cost < best.cost else best
    body, profile, _ = shown(best.x)
    return body, np.radians(best.x), profile


def gait_phase(clip: MocapClip) -> np.ndarray:
    """(T,) gait phase (radians, 2 pi per stride, 0 at each left heel strike) of a mocap clip."""
    joints = forward_kinematics(clip.local_rotvec_rad, SMPL_LIKE_REST_JOINTS_M, clip.root_transl_m)
    strikes = np.asarray(heel_strikes_from_joints(joints, clip.fps)["left"], dtype=np.float64)
    if len(strikes) < 2:
        raise HMNError(clip.name, "fewer than two left heel strikes: not a usable walk")
    frames = np.arange(len(joints), dtype=np.float64)
    cycles = np.arange(len(strikes), dtype=np.float64)
    # linear extrapolation by the first and last strides beyond the outer strikes
    first = (frames - strikes[0]) / (strikes[1] - strikes[0])
    last = cycles[-1] + (frames - strikes[-1]) / (strikes[-1] - strikes[-2])
    inside = np.interp(frames, strikes, cycles)
    phase = np.where(frames < strikes[0], first, np.where(frames > strikes[-1], last, inside))
    return 2 * np.pi * phase


def left_strikes(phase: np.ndarray) -> np.ndarray:
    """Frames where the gait phase reaches a multiple of 2 pi (left heel strikes)."""
    cycles = 2 * np.pi * np.arange(np.ceil(phase[0] / (2 * np.pi)), phase[-1] / (2 * np.pi))
    return np.searchsorted(phase, cycles)


def window_starts(phase: np.ndarray, frames: int, cycles: int) -> np.ndarray:
    """First frames of windows of ``frames`` that start :data:`LEAD_FRAMES` before a left heel strike
    and hold ``cycles`` complete cycles of that foot (its last strike a few frames before the end)."""
    strikes = left_strikes(phase)
    starts = strikes - LEAD_FRAMES
    fits = (starts >= 0) & (starts + frames <= len(phase))
    if cycles:
        last = np.append(strikes[cycles:], [np.iinfo(np.int64).max] * min(cycles, len(strikes)))[
            : len(strikes)
        ]
        fits &= last - starts <= frames - LEAD_FRAMES
    return starts[fits]


def motion_window(clip: MocapClip, phase: np.ndarray, frames: int, rng: np.random.Generator):
    """Frame indices (T,), root translation offsets (T, 3), phase (T,) and a description of a window.

    Preferably a window of the clip with two complete cycles, else one with as many as fit; when
    the clip is too short, its first full stride repeated, each repetition moved on by the
    stride's displacement. Either way it starts :data:`LEAD_FRAMES` before a left heel strike.
    """
    for cycles in (2, 0):
        starts = window_starts(phase, frames, cycles)
        if len(starts):
            start = int(rng.choice(starts))
            index = np.arange(start, start + frames)
            return index, np.zeros((frames, 3)), phase[index], f"{clip.name}[{start}:{start + frames}]"
    strikes = left_strikes(phase)
    if len(strikes) < 2:
        raise HMNError(clip.name, "no full stride to repeat")
    stride_start, stride_end = int(strikes[0]), int(strikes[1])
    length = stride_end - stride_start
    shifted = np.arange(frames) - LEAD_FRAMES
    repeat = shifted // length
    index = stride_start + shifted % length
    offsets = repeat[:, None] * (clip.root_transl_m[stride_end] - clip.root_transl_m[stride_start]).astype(
        np.float64
    )
    return (
        index,
        offsets,
        phase[index] + 2 * np.pi * repeat,
        f"{clip.name}[{stride_start}:{stride_end}] repeated",
    )


def _straighten(transl_m: np.ndarray, phase_rad: np.ndarray, scale: float) -> tuple[np.ndarray, Rotation]:
    """The pelvis path from the origin, turned so that its whole strides (first to last left heel
    strike of ``phase_rad``, or the ends without two) travel along +z, and scaled, with the turn
    applied (its height is replaced by the floor contact later).

    Whole strides, because the pelvis sways sideways by 11 to 15 cm a stride: turned by its first
    and last frames, at different phases of the sway, the bench's walks travelled 0.7 to 1.8 deg
    off +z, the way the trunk model faces them."""
    strikes = left_strikes(phase_rad)
    first, last = (strikes[0], strikes[-1]) if len(strikes) >= 2 else (0, len(transl_m) - 1)
    travel = transl_m[last] - transl_m[first]
    turn = Rotation.from_euler("y", -np.arctan2(travel[0], travel[2]))
    path = turn.apply(transl_m - transl_m[0])
    path[:, 1] = 0.0
    return scale * path, turn


def _retarget_limbs(local_rotvec: np.ndarray, turn: Rotation, pelvis_rotation: np.ndarray) -> np.ndarray:
    """(T, 24, 3) SMPL rotations with the trunk replaced, the legs' world orientations kept.

    The hips (children of the pelvis) get the local rotation that keeps their captured world
    orientation (after the heading turn) under the new pelvis, so the feet land where they were
    captured; the collars keep their captured local rotation, so the shoulders and arms ride on the
    model's thorax (its rotation, hence the thorax-pelvis coordination, shows in the shoulders);
    the pelvis is the trunk model's; spine1..3 (the vertebra model drives Anny's spine bones
    directly), neck and head are zero.
    """
    frames = local_rotvec.shape[0]
    local = Rotation.from_rotvec(local_rotvec.reshape(-1, 3)).as_matrix().reshape(frames, -1, 3, 3)
    world = turn.as_matrix() @ global_rotmats(local)
    out = local.copy()
    out[:, 0] = pelvis_rotation
    for name in (*REPLACED_SMPL_JOINTS, "neck", "head"):
        out[:, SMPL_JOINT_INDEX[name]] = np.eye(3)
    for name in ("left_hip", "right_hip"):
        out[:, SMPL_JOINT_INDEX[name]] = (
            np.swapaxes(pelvis_rotation, -1, -2) @ world[:, SMPL_JOINT_INDEX[name]]
        )
    return Rotation.from_matrix(out.reshape(-1, 3, 3)).as_rotvec().reshape(frames, -1, 3)


def _spine_bone_deltas(
    joints: np.ndarray, rest_spine: RestSpine, body: RestBody, bends_rad: np.ndarray
) -> dict[str, torch.Tensor]:
    """Anny local-ref deltas (T, 4, 4) of spine05..spine01: the static bends, then the products P_b
    of the intervertebral rotations whose joints (vertebra origins 1..18) lie at or above each bone's
    head and below the next one's (``body`` is the bent rest body).

    The motion acts on the bent rest posture: bone b's rotation is Q_b S_b with Q_b = P_1..P_b and
    S_b = bend_1..bend_b, so its delta is S_(b-1)^T P_b S_(b-1) bend_b."""
    heads = np.array([body.bone_heads_m[b][1] for b in ANNY_SPINE_BONES])
    owner = np.clip(np.searchsorted(heads, rest_spine.origins_m[1:, 1], side="right") - 1, 0, len(heads) - 1)
    axes = ANNY_TO_SMPL
    frames = joints.shape[0]
    bends = _about_lateral(bends_rad)
    below = np.eye(3)  # S_(b-1)
    deltas = {}
    for b, bone in enumerate(ANNY_SPINE_BONES):
        product = below.T @ _product(joints[:, owner == b]) @ below @ bends[b]
        below = below @ bends[b]
        delta = np.zeros((frames, 4, 4))
        delta[:, :3, :3] = axes.T @ product @ axes
        delta[:, 3, 3] = 1.0
        deltas[bone] = torch.as_tensor(delta, dtype=torch.float32)
    return deltas


def _leg_length(joints_m: np.ndarray) -> float:
    return float(
        np.linalg.norm(joints_m[SMPL_JOINT_INDEX["left_hip"]] - joints_m[SMPL_JOINT_INDEX["left_ankle"]])
    )


def _product(rotations: np.ndarray) -> np.ndarray:
    """(T, K, 3, 3) -> (T, 3, 3) ordered product over K."""
    out = np.tile(np.eye(3), (rotations.shape[0], 1, 1))
    for k in range(rotations.shape[1]):
        out = out @ rotations[:, k]
    return out


@functools.lru_cache(maxsize=2)
def usable_clips(mocap_dir: Path, fps: float) -> tuple[tuple[MocapClip, np.ndarray], ...]:
    """The CMU walks whose gait phase can be measured, with that phase; read once per process.
    Without the folder, the procedural walk (:mod:`.procedural`) alone."""
    clips = walking_clips(mocap_dir, fps) if mocap_dir.is_dir() else [procedural_clip(fps)]
    usable = []
    for clip in clips:
        try:
            usable.append((clip, gait_phase(clip)))
        except HMNError:
            continue
    if not usable:
        raise HMNError(mocap_dir, "no walking clip with two left heel strikes")
    return tuple(usable)


def pick_clip(
    usable: tuple[tuple[MocapClip, np.ndarray], ...], frames: int, rng: np.random.Generator
) -> tuple[MocapClip, np.ndarray]:
    """A seeded choice of clip and phase: among those with a window of two complete cycles, else
    those at least ``frames`` long, else any (a stride gets repeated)."""
    for accept in (
        lambda phase: len(window_starts(phase, frames, 2)) > 0,
        lambda phase: len(phase) >= frames,
    ):
        candidates = [item for item in usable if accept(item[1])]
        if candidates:
            return candidates[int(rng.integers(len(candidates)))]
    return usable[int(rng.integers(len(usable)))]


def make_motion(settings: GaitSettings, mocap_dir: Path) -> Motion:
    """The synthetic walk for these settings (deterministic)."""
    phenotype = sample_phenotype(settings.body_seed)
    body, bends, profile = curved_rest_body(
        phenotype, sample_profile(np.random.default_rng([settings.body_seed, 2]))
    )
    spine = place_spine(profile, *rest_anchors(body))

    rng = np.random.default_rng([settings.seed, 3])
    clip, phase = pick_clip(usable_clips(Path(mocap_dir), settings.fps), settings.frames, rng)
    index, offsets, phase, source = motion_window(clip, phase, settings.frames, rng)
    amplitudes = sample_amplitudes(rng, settings.lumbar_rom_scale)
    path, turn = _straighten(
        clip.root_transl_m[index] + offsets,
        phase,
        _leg_length(body.joints_m) / _leg_length(SMPL_LIKE_REST_JOINTS_M),
    )
    coordination_deg = settings.coordination_phase_deg
    if coordination_deg is None:
        coordination_deg = healthy_relative_phase_deg(path[-1, 2] * settings.fps / (settings.frames - 1))
    angles = region_angles_rad(phase, amplitudes, settings.asymmetry, np.radians(coordination_deg))
    pelvis_rotation = rotation_from_cardan(angles["pelvis"])
    joints = joint_rotations(angles["lumbar"], angles["thoracic"])
    local = _retarget_limbs(clip.local_rotvec_rad[index].astype(np.float64), turn, pelvis_rotation)
    pose = anny_pose_from_smpl(local, path)
    pose |= _spine_bone_deltas(joints, spine, body, bends)

    model = anny_model()
    pheno = _phenotype_tensor(phenotype)
    vertices, joint_centres = [], []
    for start in range(0, settings.frames, FRAME_CHUNK):
        chunk = {bone: delta[start : start + FRAME_CHUNK] for bone, delta in pose.items()}
        with torch.no_grad():
            out = model(pose_parameters=chunk, phenotype_kwargs=pheno, pose_parameterization="local-ref")
        vertices.append(_to_smpl(out["vertices"]).astype(np.float32))
        joint_centres.append(
            _to_smpl(joint_centres_from_bone_heads(out["bone_poses"][..., :3, 3], model.bone_labels))
        )
    vertices = np.concatenate(vertices)
    joint_centres = np.concatenate(joint_centres)

    faces = model.get_triangular_faces().numpy().astype(np.int64)
    rotations, origins = chain_world(
        pelvis_rotation, joint_centres[:, 0], joints, spine.origins_m, body.joints_m[0]
    )
    lift = -vertices[:, :, 1].min(axis=1)
    up = np.array([0.0, 1.0, 0.0])
    vertices += (lift[:, None] * up).astype(np.float32)[:, None]
    joint_centres += (lift[:, None] * up)[:, None]
    origins += (lift[:, None] * up)[:, None]
    return Motion(
        vertices_m=vertices,
        faces=faces,
        joints_m=joint_centres,
        vertebrae_m=origins,
        vertebra_rotations=rotations @ spine.rotations,
        anatomical_rotations=rotations,
        heel_strikes=heel_strikes_from_joints(joint_centres, settings.fps),
        face_regions=garment_regions(body.vertices_m, faces, body.joints_m),
        phenotype=phenotype,
        stature_m=body.stature_m,
        rest_spine=spine,
        spine_bends_rad=bends,
        amplitudes=amplitudes,
        coordination_phase_deg=float(coordination_deg),
        source=source,
    )
