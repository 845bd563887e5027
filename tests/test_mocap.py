"""BVH -> SMPL-convention motion: hand-written BVHs with known rotations, resampling, real CMU walks."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.kinematics import SMPL_LIKE_REST_JOINTS_M, forward_kinematics
from hmn_blender_addon.mocap import load_bvh_as_smpl, parse_bvh, walking_clips
from hmn_blender_addon.skeleton import SMPL_JOINT_INDEX as J

# An axis-aligned T-pose (metres): spine straight up, legs straight down, arms along x.
REST = {
    "pelvis": (0, 0, 0),
    "spine1": (0, 0.1, 0),
    "spine2": (0, 0.2, 0),
    "spine3": (0, 0.25, 0),
    "neck": (0, 0.45, 0),
    "head": (0, 0.55, 0),
    **{
        f"{side}_{name}": (sign * x, y, z)
        for side, sign in (("left", 1), ("right", -1))
        for name, (x, y, z) in {
            "hip": (0.1, -0.05, 0),
            "knee": (0.1, -0.45, 0),
            "ankle": (0.1, -0.85, 0),
            "foot": (0.1, -0.9, 0.1),
            "collar": (0.05, 0.4, 0),
            "shoulder": (0.15, 0.4, 0),
            "elbow": (0.4, 0.4, 0),
            "wrist": (0.65, 0.4, 0),
            "hand": (0.75, 0.4, 0),
        }.items()
    },
}
REST_M = np.array([REST[n] for n in sorted(REST, key=J.__getitem__)], dtype=np.float32)

# CMU joint -> (SMPL joint whose rest position it sits at, children); "+" marks an End Site at
# that SMPL joint ("+head": 15 cm above the head).
CMU_TREE = {
    "hip": ("pelvis", ["abdomen", "lButtock", "rButtock"]),
    "abdomen": ("spine1", ["chest"]),
    "chest": ("spine2", ["neck", "lCollar", "rCollar"]),
    "neck": ("neck", ["head"]),
    "head": ("head", ["+head"]),
    **{
        f"{s}{cmu}": (f"{side}_{smpl}", children)
        for side, s in (("left", "l"), ("right", "r"))
        for cmu, smpl, children in (
            ("Buttock", "hip", [f"{s}Thigh"]),
            ("Thigh", "hip", [f"{s}Shin"]),
            ("Shin", "knee", [f"{s}Foot"]),
            ("Foot", "ankle", [f"+{side}_foot"]),
            ("Collar", "collar", [f"{s}Shldr"]),
            ("Shldr", "shoulder", [f"{s}ForeArm"]),
            ("ForeArm", "elbow", [f"{s}Hand"]),
            ("Hand", "wrist", [f"+{side}_hand"]),
        )
    },
}


def write_bvh(
    path: Path,
    frames_deg: list[dict[str, tuple[float, float, float]]],
    root_pos_cm: np.ndarray | None = None,
    frame_time: float = 1 / 120,
    offsets_cm: dict[str, tuple[float, float, float]] | None = None,
) -> list[str]:
    """A CMU-named BVH (cm, root ZYX, joints ZXY channels) built on REST; returns joint order.

    ``frames_deg``: per frame, ``{joint: (z, x, y) degrees in channel order}``; absent = zero.
    """
    order: list[str] = []
    lines = ["HIERARCHY"]

    def emit(name: str, parent_pos: np.ndarray, depth: int, root: bool) -> None:
        smpl, children = CMU_TREE[name]
        pos = np.array(REST[smpl]) * 100
        offset = (offsets_cm or {}).get(name, tuple(pos - parent_pos))
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if root else 'JOINT'} {name}\n{pad}{{")
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        chans = (
            "6 Xposition Yposition Zposition Zrotation Yrotation Xrotation"
            if root
            else "3 Zrotation Xrotation Yrotation"
        )
        lines.append(f"{pad}  CHANNELS {chans}")
        order.append(name)
        for child in children:
            if child.startswith("+"):
                end = (np.array(REST.get(child[1:], np.add(REST["head"], (0, 0.15, 0)))) - REST[smpl]) * 100
                lines.append(
                    f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {end[0]} {end[1]} {end[2]}\n{pad}  }}"
                )
            else:
                emit(child, pos, depth + 1, False)
        lines.append(f"{pad}}}")

    emit("hip", np.zeros(3), 0, True)
    if root_pos_cm is None:
        root_pos_cm = np.zeros((len(frames_deg), 3))
    lines += ["MOTION", f"Frames: {len(frames_deg)}", f"Frame Time: {frame_time:.8f}"]
    for pos, frame in zip(root_pos_cm, frames_deg, strict=True):
        values = list(pos)
        for name in order:
            values += list(frame.get(name, (0.0, 0.0, 0.0)))
        lines.append(" ".join(f"{v:.6f}" for v in values))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return order


def rotvec_deg(axis: str, angle: float) -> np.ndarray:
    return np.degrees(Rotation.from_euler(axis, angle, degrees=True).as_rotvec())


def test_known_rotations_map_to_smpl_joints(tmp_path: Path) -> None:
    # 10 fps: the 0.1 s lead-in drops frame 0 (the CMU conversion's reference frame) only.
    # Root channels are Z Y X; the others Z X Y.
    pose = {
        "hip": (0, 90, 0),
        "lShldr": (30, 0, 0),
        "lShin": (0, 40, 0),
        "chest": (0, 20, 0),
        "rHand": (0, 0, -15),
    }
    path = tmp_path / "07_03.bvh.gz"
    write_bvh(path, [{}, pose, pose], np.array([[0, 0, 0], [10, 90, 20], [10, 90, 20]], float), 0.1)
    clip = load_bvh_as_smpl(path, target_fps=10, smpl_rest_joints_m=REST_M)
    assert (clip.name, clip.subject, clip.num_frames) == ("cmu_07_03", "cmu_07", 2)
    expected = np.zeros((24, 3))
    expected[J["pelvis"]] = rotvec_deg("y", 90)
    expected[J["left_shoulder"]] = rotvec_deg("z", 30)
    expected[J["left_knee"]] = rotvec_deg("x", 40)
    expected[J["spine2"]] = rotvec_deg("x", 10)  # the chest's rotation is shared by spine2 and spine3
    expected[J["spine3"]] = rotvec_deg("x", 10)
    expected[J["right_wrist"]] = rotvec_deg("y", -15)
    np.testing.assert_allclose(np.degrees(clip.local_rotvec_rad[1]), expected, atol=1e-3)
    np.testing.assert_allclose(clip.root_transl_m[0], [0.1, 0.9, 0.2], atol=1e-6)


def test_rest_pose_difference_is_aligned(tmp_path: Path) -> None:
    # The BVH's rest forearm points 30 deg forward (+z); in SMPL's T-pose it lies along +x. A BVH
    # frame with zero rotations must then bend SMPL's left elbow 30 deg forward (about -y) and the
    # wrist back, so that SMPL forward kinematics puts the wrist where the BVH has it.
    forearm = 25.0 * np.array([np.cos(np.radians(30)), 0.0, np.sin(np.radians(30))])
    path = tmp_path / "02_01.bvh"
    write_bvh(path, [{}, {}], offsets_cm={"lHand": tuple(forearm)})
    clip = load_bvh_as_smpl(path, target_fps=120, lead_in_s=0, smpl_rest_joints_m=REST_M)
    expected = np.zeros((24, 3))
    expected[J["left_elbow"]] = rotvec_deg("y", -30)
    expected[J["left_wrist"]] = rotvec_deg("y", 30)
    np.testing.assert_allclose(np.degrees(clip.local_rotvec_rad[0]), expected, atol=1e-3)
    joints = forward_kinematics(clip.local_rotvec_rad, REST_M)
    np.testing.assert_allclose(
        joints[0, J["left_wrist"]] - joints[0, J["left_elbow"]], forearm / 100, atol=1e-6
    )


@pytest.mark.parametrize(("target_fps", "count"), [(30.0, 31), (25.0, 26), (120.0, 121)])
def test_resampling_keeps_times(tmp_path: Path, target_fps: float, count: int) -> None:
    # 1 s at 120 fps: knee angle 10 deg + 60 deg/s and root x 100 cm/s, both linear in time, so slerp and
    # linear interpolation must reproduce them exactly at the new frame times.
    t = np.arange(121) / 120
    frames = [{"lShin": (0, 10 + 60 * ti, 0)} for ti in t]
    root = np.c_[100 * t, np.full(121, 90.0), np.zeros(121)]
    path = tmp_path / "05_01.bvh"
    write_bvh(path, frames, root)
    clip = load_bvh_as_smpl(path, target_fps=target_fps, lead_in_s=0, smpl_rest_joints_m=REST_M)
    times = np.arange(count) / target_fps
    assert clip.fps == target_fps and clip.num_frames == count
    np.testing.assert_allclose(
        np.degrees(clip.local_rotvec_rad[:, J["left_knee"], 0]), 10 + 60 * times, atol=1e-3
    )
    np.testing.assert_allclose(clip.root_transl_m[:, 0], times, atol=1e-6)


def test_bad_bvh_names_file_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "08_01.bvh"
    write_bvh(path, [{}, {}])
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")  # drop the last frame's line
    with pytest.raises(
        HMNError, match=r"08_01\.bvh: BVH motion has \d+ values, expected 2 frames x 66 channels"
    ):
        load_bvh_as_smpl(path)
    with pytest.raises(HMNError, match="not a BVH file"):
        (tmp_path / "x.bvh").write_text("hello")
        load_bvh_as_smpl(tmp_path / "x.bvh")


# --- real CMU walks -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cmu_walks(shared_data: Path) -> list:
    return walking_clips(shared_data / "mocap" / "cmu_walk")


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_walking_clips_are_the_straight_walks(cmu_walks: list) -> None:
    names = [c.name for c in cmu_walks]
    assert len(names) == 32 and not {"cmu_09_01", "cmu_09_12", "cmu_07_12", "cmu_13_35"} & set(names)
    assert len({c.subject for c in cmu_walks}) == 8
    assert next(c for c in cmu_walks if c.name == "cmu_08_04").description == "slow walk"
    for clip in cmu_walks:
        assert clip.local_rotvec_rad.dtype == np.float32 and clip.fps == 30.0
        assert clip.root_transl_m[:, 1].min() > 0.5  # pelvis above the floor
        # No blend-in from the reference T-pose, no glitch: no joint turns by 40 deg within 1/30 s.
        rot = Rotation.from_rotvec(clip.local_rotvec_rad.reshape(-1, 3)).as_matrix().reshape(-1, 24, 3, 3)
        cos_step = (np.trace(np.einsum("tjik,tjil->tjkl", rot[:-1], rot[1:]), axis1=2, axis2=3) - 1) / 2
        assert cos_step.min() > np.cos(np.radians(40)), clip.name


def test_cmu_walk_is_a_plausible_gait(cmu_walks: list, shared_data: Path) -> None:
    clip = next(c for c in cmu_walks if c.name == "cmu_07_01")
    joints = forward_kinematics(clip.local_rotvec_rad, SMPL_LIKE_REST_JOINTS_M, clip.root_transl_m)
    pelvis = joints[:, J["pelvis"]]
    for foot in ("left_ankle", "right_ankle"):
        assert (joints[:, J[foot], 1] < pelvis[:, 1] - 0.6).all()
    for side in ("left", "right"):
        hip, knee, ankle = (joints[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        flexion = _angle_deg(knee - hip, ankle - knee)
        assert flexion.min() < 15 and 45 < flexion.max() < 80
    horizontal = clip.root_transl_m[:, [0, 2]]
    speed = np.linalg.norm(horizontal[-1] - horizontal[0]) / ((clip.num_frames - 1) / clip.fps)
    assert 0.8 < speed < 2.0
    # Gait period: the left-minus-right ankle distance along the walking direction repeats once a stride.
    heading = (horizontal[-1] - horizontal[0]) / np.linalg.norm(horizontal[-1] - horizontal[0])
    split = (joints[:, J["left_ankle"], [0, 2]] - joints[:, J["right_ankle"], [0, 2]]) @ heading
    split -= split.mean()
    autocorr = np.correlate(split, split, "full")[len(split) - 1 :]
    lag = np.argmax(autocorr[int(0.6 * clip.fps) :]) + int(0.6 * clip.fps)
    assert 0.8 < lag / clip.fps < 1.4
    # Facing and sides: in the pelvis frame the subject moves toward +z, the left foot is on +x.
    pelvis_rot = Rotation.from_rotvec(clip.local_rotvec_rad[:, 0])
    velocity = np.gradient(clip.root_transl_m, axis=0) * clip.fps
    assert pelvis_rot.inv().apply(velocity).mean(0)[2] > 0.8
    lateral = pelvis_rot.inv().apply(joints[:, J["left_ankle"]] - joints[:, J["right_ankle"]])[:, 0]
    assert lateral.mean() > 0.03
    # Every mapped bone points where the BVH's own forward kinematics puts it (frames 1.. of the file).
    bvh = parse_bvh(shared_data / "mocap" / "cmu_walk" / "07_01.bvh.gz")
    index = {n: i for i, n in enumerate(bvh.names)}
    rot = [bvh.rotations[0]]
    pos = [bvh.root_position_m]
    for j in range(1, len(bvh.names)):
        p = bvh.parents[j]
        pos.append(pos[p] + rot[p].apply(bvh.offsets_m[j]))
        rot.append(rot[p] * bvh.rotations[j])
    take = np.arange(clip.num_frames) * 4 + 12  # 120 -> 30 fps, after the 0.1 s lead-in
    for (a, b), (c, d) in {
        ("left_hip", "left_knee"): ("lThigh", "lShin"),
        ("right_knee", "right_ankle"): ("rShin", "rFoot"),
        ("left_elbow", "left_wrist"): ("lForeArm", "lHand"),
        ("right_shoulder", "right_elbow"): ("rShldr", "rForeArm"),
        ("spine3", "neck"): ("chest", "neck"),
    }.items():
        smpl_dir = joints[:, J[b]] - joints[:, J[a]]
        bvh_dir = pos[index[d]][take] - pos[index[c]][take]
        assert _angle_deg(smpl_dir, bvh_dir).max() < 1.0, (a, b)
