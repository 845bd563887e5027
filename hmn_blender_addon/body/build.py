"""``build-body``: the open SMPL-format body, built from Anny (CC0 assets), and its fidelity.

Recipe (deterministic for a seed):

1. Shapes: adult Anny phenotypes (morphological age 18-80, sex, muscle, weight, height and
   proportions drawn from anny's WHO-calibrated ``SimpleShapeDistribution``), each posed in the
   T-pose of :mod:`.anny_bridge`. 500 train the model, 100 are held out.
2. ``v_template`` is the train mean and ``shapedirs`` its first principal directions, scaled so
   that betas have unit variance over the sampled adults.
3. ``J_regressor``: per joint, weights on the 500 template vertices nearest to it, fitted by
   least squares (tiny ridge, rows summing to 1) so that ``J_regressor @ v_shaped`` gives Anny's
   joint centres (:func:`.anny_bridge.joint_centres_from_bone_heads`).
4. ``weights``: Anny's skinning weights summed over the bones that move with each SMPL joint
   (:func:`.anny_bridge.bone_joint_index`).
5. ``posedirs``: learned from Anny's own posed meshes (train phenotypes, walking poses from the
   first half of the mocap clips, half of them with 0.15 rad noise added so that the correctives
   stay tame off the walking manifold): the residual between Anny and the skinned open body,
   taken back to the rest pose, regressed (ridge) on SMPL's pose features. Learned rather than
   zero because they cut the residual where it is (shoulders and elbows: Anny skins from its
   A-pose, the open body from the T-pose) while leaving the rest of the mesh as it is: vertices whose
   residual RMS is under 2 mm get zero correctives.
6. Fidelity on fresh phenotypes and poses from the other half of the clips, betas being the
   least-squares projection of Anny's T-posed mesh: mean vertex and joint distances.

Anny's full mesh (13718 vertices, 27420 triangles, eyes included) is kept: smplx runs it at a few
milliseconds a frame, and the file stays small because the correctives are zero off the arms
(saved compressed).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..atomic import atomic_path
from ..errors import HMNError
from ..kinematics import global_rotmats
from ..paths import PACKAGE_DIR
from ..progress import Progress
from ..skeleton import NUM_SMPL_JOINTS, SMPL_PARENTS
from . import anny_bridge
from .landmarks import SELECTOR_NAMES, find_landmarks
from .model import (
    NUM_POSE_FEATURES,
    OPEN_BODY_PATH,
    BodyModel,
    body_forward,
    body_model_from_arrays,
    load_open_body,
    project_betas,
)

DEFAULT_MOCAP_DIR = PACKAGE_DIR.parent.parent / "shared" / "data" / "mocap" / "cmu_walk"
NUM_BETAS = 16
NUM_TRAIN_SHAPES = 500
NUM_HELD_OUT_SHAPES = 100
NUM_POSEDIR_SAMPLES = 2000
NUM_FIDELITY_SAMPLES = 200
REGRESSOR_SUPPORT = 500  # template vertices nearest to each joint
REGRESSOR_RIDGE = 1e-7
POSEDIR_RIDGE = 10.0
POSEDIR_MIN_RMS_M = 0.002
POSE_NOISE_RAD = 0.15
BATCH = 100


@dataclass(frozen=True)
class Fidelity:
    """Open body vs Anny (millimetres unless said)."""

    samples: int
    vertex_mean_mm: float
    vertex_p99_mm: float
    joint_mean_mm: float
    joint_max_mm: float
    variance_explained_10: float
    held_out_rest_mean_mm: float
    held_out_rest_mean_10_mm: float

    def lines(self) -> list[str]:
        return [
            f"posed vs Anny over {self.samples} (phenotype, walking pose) samples: "
            f"vertex mean {self.vertex_mean_mm:.2f} mm (p99 {self.vertex_p99_mm:.1f}), "
            f"joint mean {self.joint_mean_mm:.2f} mm (max {self.joint_max_mm:.1f})",
            f"10 shape components explain {100 * self.variance_explained_10:.3f}% of held-out shape variance",
            f"held-out rest meshes: mean error {self.held_out_rest_mean_mm:.2f} mm with all betas, "
            f"{self.held_out_rest_mean_10_mm:.2f} mm with 10",
        ]


def sample_adult_phenotypes(count: int, generator_seed: int) -> torch.Tensor:
    """(count, 6) adult Anny phenotypes (anny_model().phenotype_labels order), reproducible."""
    from anny.shape_distribution import SimpleShapeDistribution

    model = anny_bridge.anny_model()
    ages = torch.distributions.Uniform(torch.tensor(18.0), torch.tensor(80.0))
    distribution = SimpleShapeDistribution(model, morphological_age_distribution=ages)
    with torch.random.fork_rng():  # seeded without touching the caller's torch RNG
        torch.manual_seed(generator_seed)
        _, values = distribution.sample(count)
    return torch.stack([values[label] for label in model.phenotype_labels], dim=1).float()


def anny_batches(
    phenotypes: torch.Tensor, rotvec_rad: np.ndarray, progress: Progress
) -> tuple[np.ndarray, np.ndarray]:
    """Anny meshes (N, V, 3) and joints (N, 24, 3), float64, SMPL frame, in batches of BATCH."""
    vertices, joints = [], []
    for start in range(0, len(phenotypes), BATCH):
        progress(start / len(phenotypes), f"Anny {start}/{len(phenotypes)}")
        v, j = anny_bridge.anny_posed(phenotypes[start : start + BATCH], rotvec_rad[start : start + BATCH])
        vertices.append(v.double().numpy())
        joints.append(j.double().numpy())
    return np.concatenate(vertices), np.concatenate(joints)


def fit_joint_regressor(rest_vertices: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """(24, V) regressor with J ~= R @ v over the samples; local support, rows summing to 1.

    Unlike SMPL's convex regressor, weights may be negative: the fit is an (almost) exact linear
    map on the shape space, which keeps joints within a millimetre of Anny's for unseen shapes.
    The tiny ridge pulls toward uniform weights only where the samples leave them undetermined.

    Args: rest_vertices (N, V, 3), rest_joints (N, 24, 3), metres.
    """
    count = len(rest_vertices)
    mean_vertices, mean_joints = rest_vertices.mean(0), rest_joints.mean(0)
    regressor = np.zeros((NUM_SMPL_JOINTS, rest_vertices.shape[1]))
    ones = np.ones((REGRESSOR_SUPPORT, 1))
    kkt_border = np.block(
        [[np.zeros((REGRESSOR_SUPPORT, REGRESSOR_SUPPORT)), ones], [ones.T, np.zeros((1, 1))]]
    )
    for j in range(NUM_SMPL_JOINTS):
        support = np.argsort(np.linalg.norm(mean_vertices - mean_joints[j], axis=1))[:REGRESSOR_SUPPORT]
        design = rest_vertices[:, support, :].transpose(0, 2, 1).reshape(-1, REGRESSOR_SUPPORT)
        target = rest_joints[:, j, :].reshape(-1)
        ridge = REGRESSOR_RIDGE * count
        lhs = kkt_border.copy()
        lhs[:REGRESSOR_SUPPORT, :REGRESSOR_SUPPORT] = design.T @ design + ridge * np.eye(REGRESSOR_SUPPORT)
        rhs = np.concatenate([design.T @ target + ridge / REGRESSOR_SUPPORT, [1.0]])
        regressor[j, support] = np.linalg.solve(lhs, rhs)[:REGRESSOR_SUPPORT]
    return regressor


def merged_weights() -> np.ndarray:
    """(V, 24) Anny's skinning weights summed over the bones moving with each SMPL joint."""
    model = anny_bridge.anny_model()
    joint_of_bone = torch.as_tensor(anny_bridge.bone_joint_index(model.bone_labels, model.bone_parents))
    weights = torch.zeros(model.template_vertices.shape[0], NUM_SMPL_JOINTS, dtype=torch.float64)
    weights.scatter_add_(
        1, joint_of_bone[model.vertex_bone_indices.long()], model.vertex_bone_weights.double()
    )
    return weights.numpy()


def selector_vertex_ids(template_m: np.ndarray, heel_ids: tuple[int, int]) -> dict[str, int]:
    """smplx's joint-selector vertices on Anny's topology, from the Anny bone each vertex follows most."""
    model = anny_bridge.anny_model()
    dense = torch.zeros(template_m.shape[0], model.bone_count, dtype=torch.float64)
    dense.scatter_add_(1, model.vertex_bone_indices.long(), model.vertex_bone_weights.double())
    dominant = np.asarray(model.bone_labels)[dense.argmax(1).numpy()]
    x, z = template_m[:, 0], template_m[:, 2]

    def extreme(bones: list[str], score: np.ndarray) -> int:
        candidates = np.nonzero(np.isin(dominant, bones))[0]
        return int(candidates[np.argmax(score[candidates])])

    ids = {"nose": extreme(["head"], z - 10 * np.abs(x))}
    for side, letter, sign in (("l", "L", 1.0), ("r", "R", -1.0)):
        ids[f"{side}eye"] = extreme([f"eye.{letter}"], z)
        ids[f"{side}ear"] = extreme(["head"], sign * x)
        wrist = template_m[extreme([f"wrist.{letter}"], sign * x)]
        for k, finger in enumerate(("thumb", "index", "middle", "ring", "pinky"), start=1):
            tip = [f"finger{k}-3.{letter}"]
            ids[f"{side}{finger}"] = extreme(tip, np.linalg.norm(template_m - wrist, axis=1))
        ids[f"{letter}BigToe"] = extreme([f"toe1-{n}.{letter}" for n in (1, 2)], z)
        ids[f"{letter}SmallToe"] = extreme([f"toe5-{n}.{letter}" for n in (1, 2, 3)], z)
    ids["LHeel"], ids["RHeel"] = heel_ids
    return {name: ids[name] for name in SELECTOR_NAMES}


def walking_poses(mocap_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T1, 24, 3), (T2, 24, 3): SMPL rotations of the first and second half of the walking clips."""
    from ..mocap import walking_clips

    if not mocap_dir.is_dir():
        raise HMNError(mocap_dir, "the walking motion capture folder is missing (pass --mocap-dir)")
    clips = walking_clips(mocap_dir)
    if len(clips) < 2:
        raise HMNError(mocap_dir, "need at least two walking clips")
    half = len(clips) // 2
    first = np.concatenate([clip.local_rotvec_rad for clip in clips[:half]])
    second = np.concatenate([clip.local_rotvec_rad for clip in clips[half:]])
    return first.astype(np.float64), second.astype(np.float64)


def learn_posedirs(
    body: BodyModel,
    phenotypes: torch.Tensor,
    betas: np.ndarray,
    poses: np.ndarray,
    progress: Progress,
) -> np.ndarray:
    """(V, 3, 207) pose correctives from Anny's posed meshes (see the module docstring)."""
    num_vertices = body.num_vertices
    gram = np.zeros((NUM_POSE_FEATURES, NUM_POSE_FEATURES))
    cross = np.zeros((NUM_POSE_FEATURES, num_vertices * 3))
    squares = np.zeros(num_vertices)
    weights = torch.as_tensor(body.weights, dtype=torch.float64)
    for start in range(0, len(poses), BATCH):
        progress(start / len(poses), f"pose correctives {start}/{len(poses)}")
        pose = poses[start : start + BATCH]
        anny_vertices, _ = anny_bridge.anny_posed(phenotypes[start : start + BATCH], pose)
        open_vertices, _ = body_forward(
            body, torch.as_tensor(betas[start : start + BATCH]), torch.as_tensor(pose)
        )
        local = (
            Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(len(pose), NUM_SMPL_JOINTS, 3, 3)
        )
        blended = torch.einsum("vj,njab->nvab", weights, torch.from_numpy(global_rotmats(local)))
        residual = (anny_vertices - open_vertices).double()[..., None]
        rest_residual = torch.linalg.solve(blended, residual)[..., 0]  # back through the skinning
        features = (local[:, 1:] - np.eye(3)).reshape(len(pose), NUM_POSE_FEATURES)  # SMPL's pose feature
        residual = rest_residual.reshape(len(pose), -1).numpy()
        gram += features.T @ features
        cross += features.T @ residual
        squares += (rest_residual**2).sum(-1).sum(0).numpy()
    columns = np.repeat(np.sqrt(squares / len(poses)) > POSEDIR_MIN_RMS_M, 3)
    posedirs = np.zeros((NUM_POSE_FEATURES, num_vertices * 3))
    posedirs[:, columns] = np.linalg.solve(
        gram + POSEDIR_RIDGE * np.eye(NUM_POSE_FEATURES), cross[:, columns]
    )
    return posedirs.T.reshape(num_vertices, 3, NUM_POSE_FEATURES)


def measure_fidelity(
    body: BodyModel,
    phenotypes: torch.Tensor,
    poses: np.ndarray,
    held_out_rest: np.ndarray,
    progress: Progress,
) -> Fidelity:
    """Compare ``body`` with Anny on ``phenotypes`` x ``poses`` (paired) and on held-out rest meshes."""
    with progress.stage(0.0, 0.5, "fidelity: rest meshes") as sub:
        rest, _ = anny_batches(phenotypes, np.zeros((len(phenotypes), NUM_SMPL_JOINTS, 3)), sub)
    with progress.stage(0.5, 1.0, "fidelity: posed meshes") as sub:
        anny_vertices, anny_joints = anny_batches(phenotypes, poses, sub)
    betas = torch.as_tensor(project_betas(body, rest))
    open_vertices, open_joints = body_forward(body, betas, torch.as_tensor(poses))
    vertex_error = np.linalg.norm(open_vertices.double().numpy() - anny_vertices, axis=-1)
    joint_error = np.linalg.norm(open_joints.double().numpy() - anny_joints, axis=-1)
    fitted_10 = rest_fit(body, held_out_rest, 10)
    variance = ((held_out_rest - held_out_rest.mean(0)) ** 2).sum()
    return Fidelity(
        samples=len(poses),
        vertex_mean_mm=float(1000 * vertex_error.mean()),
        vertex_p99_mm=float(1000 * np.quantile(vertex_error, 0.99)),
        joint_mean_mm=float(1000 * joint_error.mean()),
        joint_max_mm=float(1000 * joint_error.max()),
        variance_explained_10=float(1.0 - ((held_out_rest - fitted_10) ** 2).sum() / variance),
        held_out_rest_mean_mm=_mean_distance_mm(rest_fit(body, held_out_rest, body.num_betas), held_out_rest),
        held_out_rest_mean_10_mm=_mean_distance_mm(fitted_10, held_out_rest),
    )


def rest_fit(body: BodyModel, rest_vertices_m: np.ndarray, num_betas: int) -> np.ndarray:
    """(N, V, 3) best fits of zero-pose meshes with the body's first ``num_betas`` shape directions."""
    truncated = BodyModel(**{**body.__dict__, "shapedirs": body.shapedirs[..., :num_betas]})
    betas = project_betas(truncated, rest_vertices_m)
    return body.v_template_m + np.einsum("vcb,nb->nvc", truncated.shapedirs, betas)


def _mean_distance_mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(1000 * np.linalg.norm(a - b, axis=-1).mean())


def build_open_body(mocap_dir: Path, seed: int, progress: Progress) -> tuple[dict[str, np.ndarray], Fidelity]:
    """The open body's arrays (SMPL keys plus ``selector_*`` and ``metadata_json``) and its fidelity."""
    rng = np.random.default_rng(seed)
    train_poses, test_poses = walking_poses(mocap_dir)
    num_shapes = NUM_TRAIN_SHAPES + NUM_HELD_OUT_SHAPES
    phenotypes = sample_adult_phenotypes(num_shapes, seed)
    with progress.stage(0.0, 0.25, "shapes") as sub:
        rest, rest_joints = anny_batches(phenotypes, np.zeros((num_shapes, NUM_SMPL_JOINTS, 3)), sub)
    train_rest, held_out_rest = rest[:NUM_TRAIN_SHAPES], rest[NUM_TRAIN_SHAPES:]
    template = train_rest.mean(0)
    _, singular, directions = np.linalg.svd(
        (train_rest - template).reshape(NUM_TRAIN_SHAPES, -1), full_matrices=False
    )
    scale = singular[:NUM_BETAS] / np.sqrt(NUM_TRAIN_SHAPES)
    shapedirs = (directions[:NUM_BETAS] * scale[:, None]).T.reshape(-1, 3, NUM_BETAS)
    progress(0.27, "joint regressor")
    regressor = fit_joint_regressor(train_rest, rest_joints[:NUM_TRAIN_SHAPES])
    faces = anny_bridge.anny_model().faces.numpy()
    arrays = {
        "v_template": template,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((template.shape[0], 3, NUM_POSE_FEATURES)),
        "J_regressor": regressor,
        "weights": merged_weights(),
        "kintree_table": np.stack([SMPL_PARENTS, np.arange(NUM_SMPL_JOINTS)]),
        "f": faces,
    }
    body = body_model_from_arrays("open", arrays, "open body")
    landmarks = find_landmarks(body.v_template_m, body.J_regressor @ body.v_template_m)
    selector = selector_vertex_ids(template, (landmarks["left_heel"], landmarks["right_heel"]))

    pick = rng.integers(0, NUM_TRAIN_SHAPES, NUM_POSEDIR_SAMPLES)
    poses = train_poses[rng.integers(0, len(train_poses), NUM_POSEDIR_SAMPLES)].copy()
    noisy = rng.random(NUM_POSEDIR_SAMPLES) < 0.5
    poses[noisy, 1:] += rng.normal(0.0, POSE_NOISE_RAD, (int(noisy.sum()), NUM_SMPL_JOINTS - 1, 3))
    train_betas = project_betas(body, train_rest)
    with progress.stage(0.3, 0.8, "pose correctives") as sub:
        arrays["posedirs"] = learn_posedirs(body, phenotypes[pick], train_betas[pick], poses, sub)
    body = body_model_from_arrays("open", arrays, "open body")

    fidelity_phenotypes = sample_adult_phenotypes(NUM_FIDELITY_SAMPLES, seed + 1)
    fidelity_poses = test_poses[rng.integers(0, len(test_poses), NUM_FIDELITY_SAMPLES)]
    with progress.stage(0.8, 1.0, "fidelity") as sub:
        fidelity = measure_fidelity(body, fidelity_phenotypes, fidelity_poses, held_out_rest, sub)
    metadata = {
        "source": "open body built from anny (CC0 assets) by hmn build-body",
        "seed": seed,
        "anny_version": _anny_version(),
        "num_betas": NUM_BETAS,
        "train_shapes": NUM_TRAIN_SHAPES,
        "posedirs": "learned from Anny's posed meshes (walking poses), zero where the residual RMS < 2 mm",
        "fidelity": fidelity.__dict__,
    }
    stored = {key: np.asarray(value, dtype=np.float32) for key, value in arrays.items()}
    stored["kintree_table"] = arrays["kintree_table"].astype(np.int32)
    stored["f"] = faces.astype(np.int32)
    stored |= {f"selector_{name}": np.int32(vertex) for name, vertex in selector.items()}
    stored["metadata_json"] = np.array(json.dumps(metadata))
    return stored, fidelity


def _anny_version() -> str:
    import anny

    return str(anny.__version__)


def write_open_body(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save compressed (the zero correctives off the arms compress away) and atomically."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
        tmp.chmod(0o644)  # shipped data: readable by all, unlike the temporary's 0600


def check_open_body(path: Path, mocap_dir: Path, seed: int, samples: int, progress: Progress) -> Fidelity:
    """Fidelity of an existing open-body file against Anny (fresh phenotypes, held-out walking poses)."""
    body = load_open_body(path)
    rng = np.random.default_rng(seed)
    _, test_poses = walking_poses(mocap_dir)
    with progress.stage(0.0, 0.5, "held-out shapes") as sub:
        held_out = sample_adult_phenotypes(samples, seed + 2)
        held_out_rest, _ = anny_batches(held_out, np.zeros((samples, NUM_SMPL_JOINTS, 3)), sub)
    phenotypes = sample_adult_phenotypes(samples, seed + 1)
    poses = test_poses[rng.integers(0, len(test_poses), samples)]
    with progress.stage(0.5, 1.0, "fidelity") as sub:
        return measure_fidelity(body, phenotypes, poses, held_out_rest, sub)


def _run(args: argparse.Namespace, progress: Progress) -> int:
    torch.set_num_threads(max(1, min(args.threads, torch.get_num_threads())))
    if args.check:
        fidelity = check_open_body(args.check, args.mocap_dir, args.seed, args.samples, progress)
        print("\n".join([f"{args.check}:", *fidelity.lines()]))
        return 0
    arrays, fidelity = build_open_body(args.mocap_dir, args.seed, progress)
    write_open_body(args.out, arrays)
    size_mb = args.out.stat().st_size / 1e6
    template = arrays["v_template"]
    landmarks = find_landmarks(template, arrays["J_regressor"] @ template)
    print("\n".join([f"wrote {args.out} ({size_mb:.1f} MB)", *fidelity.lines(), f"landmarks: {landmarks}"]))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build-body",
        help="build the open SMPL-format body from Anny and print its fidelity",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--out", type=Path, default=OPEN_BODY_PATH, help="output .npz (default: the shipped file)"
    )
    parser.add_argument("--mocap-dir", type=Path, default=DEFAULT_MOCAP_DIR, help="CMU walking BVH folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--check", type=Path, metavar="NPZ", help="only print the fidelity of an existing file"
    )
    parser.add_argument(
        "--samples", type=int, default=NUM_FIDELITY_SAMPLES, help="fidelity samples for --check"
    )
    parser.set_defaults(handler=_run)
