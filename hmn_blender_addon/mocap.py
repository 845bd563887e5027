"""Motion capture (BVH) as SMPL-convention motion: the CMU walks for training and tests.

Reads a BVH file (plain or gzip), resamples it, and maps its skeleton onto SMPL's 24 joints:
each SMPL joint takes the GLOBAL rotation of the BVH joint that moves the same body segment,
corrected by the rest-pose alignment between the BVH rest skeleton and an SMPL T-pose (the
minimal rotation taking the SMPL rest bone direction onto the BVH rest bone direction), and
is then made parent-relative. Applying the result to an SMPL-style T-pose therefore reproduces
the captured bone directions, whatever the BVH's own rest posture (the CMU conversion's forearms
point 17 deg forward at rest, for example).

Frames: root orientation and root translation are in the capture's lab frame, y up (CMU: the
subject walks roughly along the lab's +z or -z; nothing is re-oriented). Units: metres, radians.
The CMU conversion starts every file with a reference frame (T-pose arms, root rotation zero) and
blends into the capture over the next 5 frames (arms dropping 24 deg per frame); ``07_12`` has two
reference frames with a corrupt root. The loader therefore drops the first ``lead_in_s`` = 0.1 s.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .errors import HMNError
from .kinematics import SMPL_LIKE_REST_JOINTS_M
from .skeleton import NUM_SMPL_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

# CMU joints whose global rotation drives each SMPL joint. spine2 is special: it takes half of
# the chest's rotation relative to the abdomen and spine3 the rest (_SPINE2_BLEND).
_ROTATION_SOURCE: dict[str, str] = {
    "pelvis": "hip",
    "spine1": "abdomen",
    "spine3": "chest",
    "neck": "neck",
    "head": "head",
    **{
        f"{side}_{smpl}": f"{s}{cmu}"
        for side, s in (("left", "l"), ("right", "r"))
        for smpl, cmu in (
            ("hip", "Thigh"),
            ("knee", "Shin"),
            ("ankle", "Foot"),
            ("foot", "Foot"),
            ("collar", "Collar"),
            ("shoulder", "Shldr"),
            ("elbow", "ForeArm"),
            ("wrist", "Hand"),
            ("hand", "Hand"),
        )
    },
}
_SPINE2_BLEND = ("abdomen", "chest", 0.5)

# Rest bone used to align each SMPL joint: (SMPL child, BVH segment start, BVH segment end).
# "<joint>.end" is a BVH End Site; "lHand" prefers its middle finger. Joints without an entry
# (leaves and the root) reuse their parent's alignment (root: identity, both rest poses face +z
# with x to the subject's left).
_ALIGN_SEGMENT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "spine1": ("spine2", "abdomen", ("chest",)),
    "spine2": ("spine3", "abdomen", ("chest",)),
    "spine3": ("neck", "chest", ("neck",)),
    "neck": ("head", "neck", ("head",)),
    **{
        f"{side}_{smpl}": (f"{side}_{child}", f"{s}{start}", tuple(f"{s}{e}" for e in ends))
        for side, s in (("left", "l"), ("right", "r"))
        for smpl, child, start, ends in (
            ("hip", "knee", "Thigh", ("Shin",)),
            ("knee", "ankle", "Shin", ("Foot",)),
            ("ankle", "foot", "Foot", ("Foot.end",)),
            ("collar", "shoulder", "Collar", ("Shldr",)),
            ("shoulder", "elbow", "Shldr", ("ForeArm",)),
            ("elbow", "wrist", "ForeArm", ("Hand",)),
            ("wrist", "hand", "Hand", ("Mid1", "Hand.end")),
        )
    },
}

# CMU clips in the shared set that are not straight walks (CMU-INDEX.md: run, forward/backward/
# sideways, climb), and 07_12, whose root trajectory is corrupt throughout (pelvis 0.1 to 0.3 m
# below the floor, stepping backwards by 12 cm within 1/30 s in every step).
EXCLUDED_CLIPS: frozenset[str] = frozenset({"09_01", "09_12", "13_35", "14_21", "07_12"})
CMU_LEAD_IN_S = 0.1
# Clips whose capture starts glitched: 03_02 freezes, then swings the arms by 90 deg in 0.05 s,
# during its first 0.47 s.
_CLIP_LEAD_IN_S: dict[str, float] = {"03_02": 0.5}


@dataclass(frozen=True)
class MocapClip:
    """One motion-capture clip in SMPL convention.

    local_rotvec_rad: (T, 24, 3) float32 axis-angle, parent-relative, SMPL joint order; index 0 is
        the root orientation in the capture's lab frame (y up).
    root_transl_m: (T, 3) float32 pelvis position in the lab frame, metres, y up.
    """

    name: str
    subject: str
    description: str
    fps: float
    local_rotvec_rad: np.ndarray
    root_transl_m: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.local_rotvec_rad.shape[0])


@dataclass(frozen=True)
class BvhData:
    """A parsed BVH file. Joint order is the file's (parents precede children).

    names: J joint names, End Sites as "<parent>.end"; parents: (J,) int, -1 for the root;
    offsets_m: (J, 3) rest offsets from the parent; rotations: J rotations, each over F frames;
    root_position_m: (F, 3); frame_time_s: seconds per frame.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets_m: np.ndarray
    rotations: tuple[Rotation, ...]
    root_position_m: np.ndarray
    frame_time_s: float


_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POSITIONS = ("Xposition", "Yposition", "Zposition")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("ascii", errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise HMNError(path, f"cannot read the BVH file ({exc})") from exc


def parse_bvh(path: Path, unit_m: float = 0.01) -> BvhData:
    """Parse a BVH file (.bvh or .bvh.gz); ``unit_m`` is the file's length unit in metres (CMU: cm).

    Rotation channels in file order a, b, c mean R = R_a R_b R_c (intrinsic), as BVH specifies.
    """
    path = Path(path)
    text = _read_text(path)
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise HMNError(path, "not a BVH file (no MOTION section)")
    tokens = head.split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []
    try:
        i = tokens.index("HIERARCHY") + 1
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                names.append(tokens[i + 1])
                i += 2
            elif tok == "End":
                names.append(f"{names[stack[-1]]}.end")
                i += 2
            elif tok == "{":
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                stack.append(len(parents) - 1)
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                offsets[stack[-1]] = [float(v) for v in tokens[i + 1 : i + 4]]
                i += 4
            elif tok == "CHANNELS":
                count = int(tokens[i + 1])
                channels[stack[-1]] = tokens[i + 2 : i + 2 + count]
                i += 2 + count
            else:
                raise ValueError(f"unexpected token {tok!r}")
        frames_match = re.search(r"Frames:\s*(\d+)\s*Frame Time:\s*([0-9.eE+-]+)", motion)
        if frames_match is None:
            raise ValueError("no 'Frames:'/'Frame Time:' lines")
        num_frames, frame_time = int(frames_match.group(1)), float(frames_match.group(2))
        values = np.array(motion[frames_match.end() :].split(), dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise HMNError(path, f"malformed BVH hierarchy or motion ({exc})") from exc
    if len(names) != len(parents) or stack:
        raise HMNError(path, "malformed BVH hierarchy (unbalanced braces)")
    num_channels = sum(len(c) for c in channels)
    if num_frames < 1 or frame_time <= 0 or values.size != num_frames * num_channels:
        raise HMNError(
            path,
            f"BVH motion has {values.size} values, expected {num_frames} frames x {num_channels} channels",
        )
    motion_table = values.reshape(num_frames, num_channels)
    rotations, root_position = [], np.zeros((num_frames, 3))
    start = 0
    for j, chans in enumerate(channels):
        cols = {c: start + k for k, c in enumerate(chans)}
        start += len(chans)
        rot_chans = [c for c in chans if c in _AXES]
        if rot_chans:
            seq = "".join(_AXES[c] for c in rot_chans)
            angles = motion_table[:, [cols[c] for c in rot_chans]]
            rotations.append(Rotation.from_euler(seq, angles, degrees=True))
        else:
            rotations.append(Rotation.identity(num_frames))
        if parents[j] == -1 and all(c in cols for c in _POSITIONS):
            root_position = motion_table[:, [cols[c] for c in _POSITIONS]] * unit_m
    return BvhData(
        names=tuple(names),
        parents=np.array(parents, dtype=np.int64),
        offsets_m=np.array(offsets) * unit_m,
        rotations=tuple(rotations),
        root_position_m=root_position,
        frame_time_s=frame_time,
    )


def _bvh_global_rotations(bvh: BvhData) -> list[Rotation]:
    """Each BVH joint's rotation relative to the lab, over all frames."""
    out: list[Rotation] = []
    for j, parent in enumerate(bvh.parents):
        out.append(bvh.rotations[j] if parent < 0 else out[parent] * bvh.rotations[j])
    return out


def _alignments(bvh: BvhData, path: Path, smpl_rest_joints_m: np.ndarray) -> list[Rotation]:
    """Per SMPL joint, the minimal rotation taking its SMPL rest bone onto the BVH rest bone."""
    index = {name: j for j, name in enumerate(bvh.names)}
    rest_global = np.zeros((len(bvh.names), 3))
    for j, parent in enumerate(bvh.parents):
        rest_global[j] = bvh.offsets_m[j] + (rest_global[parent] if parent >= 0 else 0.0)
    out: list[Rotation] = []
    for j, name in enumerate(SMPL_JOINT_NAMES):
        if name not in _ALIGN_SEGMENT:
            out.append(Rotation.identity() if j == 0 else out[SMPL_PARENTS[j]])
            continue
        child, start, ends = _ALIGN_SEGMENT[name]
        end = next((e for e in ends if e in index), None)
        if end is None:
            raise HMNError(path, f"BVH skeleton lacks joint {ends[0]!r} (CMU naming expected)")
        bvh_dir = rest_global[index[end]] - rest_global[index[start]]
        smpl_dir = smpl_rest_joints_m[SMPL_JOINT_NAMES.index(child)] - smpl_rest_joints_m[j]
        rot, _ = Rotation.align_vectors(bvh_dir[None], smpl_dir[None])
        out.append(rot)
    return out


def bvh_to_smpl_rotations(
    bvh: BvhData, path: Path, smpl_rest_joints_m: np.ndarray = SMPL_LIKE_REST_JOINTS_M
) -> list[Rotation]:
    """Per SMPL joint, its parent-relative rotation over all frames (global root orientation first)."""
    index = {name: j for j, name in enumerate(bvh.names)}
    missing = sorted({*_ROTATION_SOURCE.values(), *_SPINE2_BLEND[:2]} - index.keys())
    if missing:
        raise HMNError(path, f"BVH skeleton lacks joints {missing} (CMU naming expected)")
    bvh_global = _bvh_global_rotations(bvh)
    low, high, share = _SPINE2_BLEND
    low_g = bvh_global[index[low]]
    spine2 = low_g * Rotation.from_rotvec(share * (low_g.inv() * bvh_global[index[high]]).as_rotvec())
    align = _alignments(bvh, path, smpl_rest_joints_m)
    smpl_global = [
        (spine2 if name == "spine2" else bvh_global[index[_ROTATION_SOURCE[name]]]) * align[j]
        for j, name in enumerate(SMPL_JOINT_NAMES)
    ]
    return [
        smpl_global[0] if j == 0 else smpl_global[SMPL_PARENTS[j]].inv() * smpl_global[j]
        for j in range(NUM_SMPL_JOINTS)
    ]


def resample_times(num_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Times (s) of the target frames inside the source clip: 0, 1/target, ... up to the last source time.

    A thousandth of a target frame of slack absorbs the rounding of BVH frame times; the caller
    clamps the last time onto the source's.
    """
    duration = (num_frames - 1) / source_fps
    count = int(np.floor(duration * target_fps + 1e-3)) + 1
    return np.arange(count) / target_fps


def load_bvh_as_smpl(
    path: Path,
    target_fps: float = 30.0,
    *,
    description: str = "",
    lead_in_s: float = CMU_LEAD_IN_S,
    smpl_rest_joints_m: np.ndarray = SMPL_LIKE_REST_JOINTS_M,
) -> MocapClip:
    """Load a BVH (.bvh or .bvh.gz, CMU joint names) as SMPL-convention motion at ``target_fps``.

    The first ``lead_in_s`` seconds (the CMU conversion's reference frame and blend-in) are dropped.
    Rotations are resampled by slerp, the root translation linearly. The clip's name is the file
    name without extensions (e.g. ``07_01`` -> ``cmu_07_01``), its subject the part before ``_``.
    """
    path = Path(path)
    if not target_fps > 0:
        raise HMNError(path, f"target frame rate must be positive, got {target_fps}")
    bvh = parse_bvh(path)
    # Frame Time is printed rounded (0.00833333): allow a thousandth of a frame in both counts.
    first = int(np.ceil(lead_in_s / bvh.frame_time_s - 1e-3))
    num_frames = len(bvh.root_position_m) - first
    if num_frames < 2:
        raise HMNError(path, "BVH has fewer than two frames of motion")
    source_fps = 1.0 / bvh.frame_time_s
    src_times = np.arange(num_frames) / source_fps
    times = np.minimum(resample_times(num_frames, source_fps, target_fps), src_times[-1])
    rotvecs = np.stack(
        [
            Slerp(src_times, rot[first:])(times).as_rotvec()
            for rot in bvh_to_smpl_rotations(bvh, path, smpl_rest_joints_m)
        ],
        axis=1,
    )
    transl = np.stack([np.interp(times, src_times, bvh.root_position_m[first:, k]) for k in range(3)], axis=1)
    stem = path.name.split(".")[0]
    return MocapClip(
        name=f"cmu_{stem}",
        subject=f"cmu_{stem.split('_')[0]}",
        description=description,
        fps=float(target_fps),
        local_rotvec_rad=rotvecs.astype(np.float32),
        root_transl_m=transl.astype(np.float32),
    )


def cmu_descriptions(index_path: Path) -> dict[str, str]:
    """``{"07_01": "walk", ...}`` from CMU-INDEX.md."""
    try:
        text = index_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HMNError(index_path, f"cannot read the CMU index ({exc.strerror or exc})") from exc
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^(\d+_\d+)\s+(.+)$", text, re.MULTILINE)}


def walking_clips(data_dir: Path, target_fps: float = 30.0) -> list[MocapClip]:
    """The straight CMU walks in ``data_dir`` (*.bvh.gz + CMU-INDEX.md), sorted by name.

    Excluded: clips whose description lacks "walk" and EXCLUDED_CLIPS.
    """
    data_dir = Path(data_dir)
    descriptions = cmu_descriptions(data_dir / "CMU-INDEX.md")
    files = sorted(data_dir.glob("*.bvh.gz"))
    if not files:
        raise HMNError(data_dir, "no .bvh.gz files found")
    clips = []
    for file in files:
        stem = file.name.split(".")[0]
        description = descriptions.get(stem, "")
        if stem in EXCLUDED_CLIPS or "walk" not in description:
            continue
        lead_in_s = _CLIP_LEAD_IN_S.get(stem, CMU_LEAD_IN_S)
        clips.append(load_bvh_as_smpl(file, target_fps, description=description, lead_in_s=lead_in_s))
    return clips
