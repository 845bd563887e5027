"""One body-model interface for the open body and official SMPL files.

The fitting, the spine and the Blender side take a :class:`BodyModel` and never ask which body
it is. Both bodies are SMPL-format: a zero-pose template in a T-pose, linear shape directions,
pose correctives, a joint regressor, skinning weights on SMPL's 24-joint tree (SMPL's frame: y up,
x to the subject's left, z forward; metres). ``smplx.SMPL`` runs either unchanged
(:func:`as_smplx`); :func:`body_forward` is the same linear blend skinning as a plain function.

Which body: ``load_body_model("open")`` reads the open body shipped in the package (built from
Anny by ``build-body``); ``load_body_model("smpl", smpl_path, gender)`` reads an official SMPL
file (or a folder holding one) named by the argument, else by the ``HMN_SMPL_MODEL_DIR``
environment variable (the add-on's preferences set it).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import HMNError
from ..paths import DATA_DIR
from ..skeleton import NUM_SMPL_JOINTS, SMPL_PARENTS
from .landmarks import OPEN_BODY_LANDMARKS, SELECTOR_NAMES, SMPL_SELECTOR_VERTEX_IDS, find_landmarks

if TYPE_CHECKING:
    import smplx

OPEN_BODY_PATH = DATA_DIR / "open_body.npz"
SMPL_MODEL_DIR_ENV = "HMN_SMPL_MODEL_DIR"
NUM_POSE_FEATURES = 9 * (NUM_SMPL_JOINTS - 1)  # SMPL's pose corrective inputs: (R - I) of 23 joints
SMPL_ARRAY_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
# smplx.SMPL keeps at most 10 betas unless the shape space has its full 300 directions.
_SMPLX_SHAPE_SPACE_DIM = 300


@dataclass(frozen=True)
class BodyModel:
    """An SMPL-format body (float32 arrays; V vertices, B shape directions, F triangles).

    kind: "open" or "smpl". v_template_m (V, 3): zero-pose (T-pose) mean shape. shapedirs
    (V, 3, B): metres per unit beta. posedirs (V, 3, 207): metres per unit of SMPL's pose
    feature (R_j - I of joints 1..23, row-major). J_regressor (24, V): joint centres from the
    shaped template. weights (V, 24): skinning weights, rows sum to 1. parents (24,): SMPL's
    tree, -1 at the root. faces (F, 3). landmarks: name -> vertex id, the surface landmarks of
    ``landmarks.LANDMARK_RULES`` and smplx's joint-selector vertices. metadata: build facts.
    """

    kind: str
    v_template_m: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    landmarks: dict[str, int]
    metadata: dict

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def num_vertices(self) -> int:
        return int(self.v_template_m.shape[0])


def body_model_from_arrays(kind: str, arrays: dict[str, np.ndarray], source: str | os.PathLike) -> BodyModel:
    """A :class:`BodyModel` from SMPL-format arrays (the keys of :data:`SMPL_ARRAY_KEYS`).

    Raises :class:`HMNError` naming ``source`` when an array is missing or its shape is off.
    """
    missing = [key for key in SMPL_ARRAY_KEYS if key not in arrays]
    if missing:
        raise HMNError(source, f"not an SMPL-format body model: missing {', '.join(missing)}")
    v_template = np.asarray(arrays["v_template"], dtype=np.float32)
    num_vertices = v_template.shape[0]
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float32)
    posedirs = np.asarray(arrays["posedirs"], dtype=np.float32).reshape(num_vertices, 3, -1)
    regressor = np.asarray(arrays["J_regressor"], dtype=np.float32)
    weights = np.asarray(arrays["weights"], dtype=np.float32)
    parents = np.asarray(arrays["kintree_table"], dtype=np.int64)[0].copy()
    parents[0] = -1
    if shapedirs.ndim != 3:
        raise HMNError(source, f"shapedirs has shape {shapedirs.shape}, expected (vertices, 3, betas)")
    expected = {
        "v_template": (v_template.shape, (num_vertices, 3)),
        "shapedirs": (shapedirs.shape[:2], (num_vertices, 3)),
        "posedirs": (posedirs.shape, (num_vertices, 3, NUM_POSE_FEATURES)),
        "J_regressor": (regressor.shape, (NUM_SMPL_JOINTS, num_vertices)),
        "weights": (weights.shape, (num_vertices, NUM_SMPL_JOINTS)),
    }
    for key, (shape, want) in expected.items():
        if tuple(shape) != want:
            raise HMNError(source, f"{key} has shape {tuple(shape)}, expected {want} for an SMPL body")
    if not np.array_equal(parents, SMPL_PARENTS):
        raise HMNError(source, "its kinematic tree is not SMPL's 24-joint tree")
    faces = np.asarray(arrays["f"], dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= num_vertices:
        raise HMNError(
            source, f"its faces (shape {faces.shape}) are not triangles of its {num_vertices} vertices"
        )
    metadata = json.loads(str(arrays["metadata_json"])) if "metadata_json" in arrays else {}
    return BodyModel(
        kind=kind,
        v_template_m=v_template,
        shapedirs=shapedirs,
        posedirs=posedirs,
        J_regressor=regressor,
        weights=weights,
        parents=parents,
        faces=faces,
        landmarks={},
        metadata=metadata,
    )


def _with_landmarks(model: BodyModel, landmarks: dict[str, int]) -> BodyModel:
    return BodyModel(**{**model.__dict__, "landmarks": landmarks})


def _found_landmarks(model: BodyModel, source: str | os.PathLike) -> dict[str, int]:
    try:
        return find_landmarks(model.v_template_m, model.J_regressor @ model.v_template_m)
    except ValueError as exc:
        raise HMNError(source, f"cannot place the surface landmarks: {exc}") from None


def load_open_body(path: str | os.PathLike = OPEN_BODY_PATH) -> BodyModel:
    """The open body (``build-body``'s .npz: SMPL arrays plus ``selector_*`` vertex ids and metadata).

    Read once per process and file version: a batch of clips shares one model, whose arrays no
    caller changes (torch.from_numpy takes them as they are).
    """
    path = Path(path)
    if not path.is_file():
        raise HMNError(
            path, "the open body model file is missing; rebuild it with `hmn build-body --out PATH`"
        )
    stat = path.stat()
    return _read_open_body(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_open_body(path: Path, mtime_ns: int, size: int) -> BodyModel:
    """``load_open_body``'s reading, cached by the file's path, modification time and size."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise HMNError(path, f"cannot read the open body model ({exc})") from exc
    model = body_model_from_arrays("open", arrays, path)
    selector = {
        name: int(arrays[f"selector_{name}"]) for name in SELECTOR_NAMES if f"selector_{name}" in arrays
    }
    if len(selector) != len(SELECTOR_NAMES):
        raise HMNError(path, "the open body model lacks its joint-selector vertex ids; rebuild it")
    return _with_landmarks(model, OPEN_BODY_LANDMARKS | selector)


def resolve_smpl_path(smpl_path: str | os.PathLike | None) -> Path:
    """The SMPL file or folder the user named: the argument, else ``$HMN_SMPL_MODEL_DIR``."""
    chosen = smpl_path if smpl_path not in (None, "") else os.environ.get(SMPL_MODEL_DIR_ENV)
    if not chosen:
        raise HMNError(
            "--smpl-model",
            f"the SMPL body needs the official SMPL files: pass their path or set {SMPL_MODEL_DIR_ENV}",
        )
    return Path(chosen).expanduser()


def load_body_model(
    kind: str = "open", smpl_path: str | os.PathLike | None = None, gender: str = "neutral"
) -> BodyModel:
    """The body model of ``kind`` ("open" or "smpl"); see the module docstring for where it comes from."""
    if kind == "open":
        return load_open_body()
    if kind != "smpl":
        raise HMNError("--body", f"unknown body model {kind!r}: choose 'open' or 'smpl'")
    from .smpl_files import load_smpl_arrays

    path, arrays = load_smpl_arrays(resolve_smpl_path(smpl_path), gender)
    model = body_model_from_arrays("smpl", arrays, path)
    return _with_landmarks(model, _found_landmarks(model, path) | SMPL_SELECTOR_VERTEX_IDS)


def as_smplx(model: BodyModel, num_betas: int = 10, batch_size: int = 1, **kwargs) -> smplx.SMPL:
    """An ``smplx.SMPL`` module running ``model`` unchanged (extra kwargs go to its constructor).

    The shape directions are zero-padded to smplx's 300 so that it keeps ``num_betas`` (it
    would cap them at 10 otherwise); betas beyond the model's own have no effect.
    """
    import smplx
    from smplx.utils import Struct

    padding = np.zeros((model.num_vertices, 3, _SMPLX_SHAPE_SPACE_DIM - model.num_betas), dtype=np.float32)
    kintree = np.stack([model.parents, np.arange(NUM_SMPL_JOINTS)])
    data_struct = Struct(
        v_template=model.v_template_m,
        shapedirs=np.concatenate([model.shapedirs, padding], axis=-1),
        posedirs=model.posedirs,
        J_regressor=model.J_regressor,
        weights=model.weights,
        kintree_table=kintree,
        f=model.faces,
    )
    vertex_ids = {name: model.landmarks[name] for name in SELECTOR_NAMES}
    return smplx.SMPL(
        model_path=model.kind,  # unused: smplx reads data_struct
        data_struct=data_struct,
        num_betas=num_betas,
        batch_size=batch_size,
        vertex_ids=vertex_ids,
        **kwargs,
    )


def body_forward(
    model: BodyModel,
    betas: torch.Tensor,
    pose_rotvec_rad: torch.Tensor,
    transl_m: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posed vertices and joints, batched and differentiable (smplx's ``lbs``).

    Args:
        betas: (N, b) shape coefficients, b <= model.num_betas (the rest count as 0).
        pose_rotvec_rad: (N, 24, 3) axis-angle, parent-relative, index 0 the global orientation.
        transl_m: optional (N, 3) translation.
    Returns:
        vertices_m (N, V, 3) and joints_m (N, 24, 3), float32.
    """
    from smplx.lbs import lbs

    count = betas.shape[-1]
    vertices, joints = lbs(
        betas.float(),
        pose_rotvec_rad.reshape(pose_rotvec_rad.shape[0], -1).float(),
        torch.from_numpy(model.v_template_m),
        torch.from_numpy(model.shapedirs[..., :count]),
        torch.from_numpy(model.posedirs.reshape(-1, NUM_POSE_FEATURES).T),
        torch.from_numpy(model.J_regressor),
        torch.from_numpy(model.parents),
        torch.from_numpy(model.weights),
        pose2rot=True,
    )
    if transl_m is not None:
        offset = transl_m.float()[:, None, :]
        vertices, joints = vertices + offset, joints + offset
    return vertices, joints


def project_betas(model: BodyModel, rest_vertices_m: np.ndarray) -> np.ndarray:
    """(N, V, 3) zero-pose meshes on the model's topology -> (N, B) least-squares betas."""
    directions = model.shapedirs.reshape(-1, model.num_betas).astype(np.float64)
    offsets = (rest_vertices_m - model.v_template_m).reshape(len(rest_vertices_m), -1).astype(np.float64)
    return np.linalg.lstsq(directions, offsets.T, rcond=None)[0].T
