"""Official SMPL files: a generated fixture in the official layout loads; bad and crafted files are refused.

The fixture is made here (random arrays on a body-shaped point set, a fake chumpy ``Ch`` pickled
under chumpy's module path, a scipy sparse regressor, Python-2-style protocol 2): no SMPL data.
"""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse

from hmn_blender_addon.body import smpl_files
from hmn_blender_addon.body.model import as_smplx, body_forward, load_body_model
from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.skeleton import SMPL_PARENTS

NUM_VERTICES = 6890


class Ch:
    """A stand-in for chumpy.ch.Ch pickling chumpy's state (its __dict__ less _parents and _cache)."""

    def __init__(self, x: np.ndarray) -> None:
        self._dirty_vars = {"x"}
        self._itr = None
        self._make_dense = False
        self._make_sparse = False
        self._depends_on_deps: dict = {}
        self.x = x

    def __getstate__(self) -> dict:
        return dict(self.__dict__)


@pytest.fixture(scope="module")
def official_arrays() -> dict[str, np.ndarray]:
    """SMPL's arrays: a 6890-point sample of the open body's surface and random model parts."""
    open_body = load_body_model("open")
    rng = np.random.default_rng(7)
    chosen = np.sort(rng.choice(open_body.num_vertices, NUM_VERTICES, replace=False))
    template = open_body.v_template_m[chosen].astype(np.float64)
    joints = open_body.J_regressor @ open_body.v_template_m
    regressor = np.zeros((24, NUM_VERTICES))
    for j in range(24):
        nearest = np.argsort(np.linalg.norm(template - joints[j], axis=1))[:20]
        regressor[j, nearest] = 1.0 / 20
    kintree = np.stack([SMPL_PARENTS, np.arange(24)]).astype(np.uint32)  # root's parent: 2**32 - 1
    return {
        "v_template": template,
        "shapedirs": rng.normal(0, 0.01, (NUM_VERTICES, 3, 10)),
        "posedirs": rng.normal(0, 0.001, (NUM_VERTICES, 3, 207)),
        "J_regressor": regressor,
        "weights": rng.dirichlet(np.ones(24), NUM_VERTICES),
        "kintree_table": kintree,
        "f": rng.integers(0, NUM_VERTICES, (13776, 3)).astype(np.uint32),
    }


def _pickle_with_fake_chumpy(content: dict, monkeypatch: pytest.MonkeyPatch) -> bytes:
    module = types.ModuleType("chumpy.ch")
    module.Ch = Ch
    monkeypatch.setattr(Ch, "__module__", "chumpy.ch")
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    return pickle.dumps(content, protocol=2)


@pytest.fixture(scope="module")
def official_pickle(official_arrays) -> bytes:
    """The arrays in the official .pkl layout (chumpy, sparse regressor, extra keys)."""
    content = {
        "v_template": Ch(official_arrays["v_template"]),
        "shapedirs": Ch(official_arrays["shapedirs"]),
        "posedirs": official_arrays["posedirs"],
        "J_regressor": sparse.csc_matrix(official_arrays["J_regressor"]),
        "J_regressor_prior": sparse.csc_matrix(official_arrays["J_regressor"]),
        "weights": Ch(official_arrays["weights"]),
        "kintree_table": official_arrays["kintree_table"],
        "f": official_arrays["f"],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "J": Ch(official_arrays["J_regressor"] @ official_arrays["v_template"]),
    }
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _pickle_with_fake_chumpy(content, monkeypatch)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HMN_CACHE_DIR", str(folder))
    return folder


def _assert_same_body(model, arrays: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(model.v_template_m, arrays["v_template"], atol=1e-6)
    np.testing.assert_allclose(model.shapedirs, arrays["shapedirs"], atol=1e-6)
    np.testing.assert_allclose(model.posedirs, arrays["posedirs"], atol=1e-6)
    np.testing.assert_allclose(model.J_regressor, arrays["J_regressor"], atol=1e-6)
    np.testing.assert_allclose(model.weights, arrays["weights"], atol=1e-6)
    np.testing.assert_array_equal(model.faces, arrays["f"].astype(np.int64))
    np.testing.assert_array_equal(model.parents, SMPL_PARENTS)


def test_official_pickle_loads_without_chumpy_and_is_cached(
    tmp_path, cache, official_pickle, official_arrays, monkeypatch
) -> None:
    folder = tmp_path / "smpl"
    folder.mkdir()
    (folder / "basicModel_neutral_lbs_10_207_0_v1.1.0.pkl").write_bytes(official_pickle)
    assert "chumpy" not in sys.modules
    model = load_body_model("smpl", folder, "neutral")
    assert "chumpy" not in sys.modules
    assert model.kind == "smpl"
    _assert_same_body(model, official_arrays)
    assert len(list((cache / "smpl").glob("basicModel_neutral_*.npz"))) == 1
    # Later loads read the cached conversion, not the pickle.
    monkeypatch.setattr(smpl_files, "read_smpl_pickle", lambda path: pytest.fail("pickle read again"))
    monkeypatch.setenv("HMN_SMPL_MODEL_DIR", str(folder))
    _assert_same_body(load_body_model("smpl"), official_arrays)


def test_smplx_runs_the_converted_official_model(tmp_path, cache, official_pickle) -> None:
    path = tmp_path / "SMPL_MALE.pkl"
    path.write_bytes(official_pickle)
    model = load_body_model("smpl", path, "male")
    assert set(model.landmarks) >= {"C7", "left_PSIS", "nose", "LHeel"}
    assert model.landmarks["nose"] == 332  # smplx's own selector ids for SMPL's topology
    rng = np.random.default_rng(0)
    betas = torch.tensor(rng.normal(0, 1, (2, 10)), dtype=torch.float32)
    pose = torch.tensor(rng.normal(0, 0.3, (2, 24, 3)), dtype=torch.float32)
    out = as_smplx(model, num_betas=10, batch_size=2)(
        betas=betas, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(2, -1)
    )
    vertices, joints = body_forward(model, betas, pose)
    torch.testing.assert_close(out.vertices, vertices)
    torch.testing.assert_close(out.joints[:, :24], joints)


def test_npz_form_is_accepted(tmp_path, cache, official_arrays) -> None:
    path = tmp_path / "SMPL_FEMALE.npz"
    np.savez(path, **official_arrays)
    _assert_same_body(load_body_model("smpl", tmp_path, "female"), official_arrays)


class _RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, cache) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": _RunsCommand(f"touch {marker}")}, protocol=2))
    with pytest.raises(HMNError, match=r"refused: the pickle asks for posix\.system.*nothing was executed"):
        load_body_model("smpl", path)
    assert not marker.exists()
    assert not (cache / "smpl").exists() or not list((cache / "smpl").iterdir())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the SMPL model file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "this is a PNG image, not an SMPL model file"),
        (b"\xff\xd8\xff\xe0" + bytes(100), "this is a JPEG image, not an SMPL model file"),
        (pickle.dumps([1, 2, 3], protocol=2), r"not an SMPL model file \(the pickle holds a list\)"),
        (b"hello, not a pickle", "not a readable SMPL pickle"),
        (
            pickle.dumps({"v_template": np.zeros((10475, 3)), "lmk_faces_idx": np.zeros(51)}, protocol=2),
            "this is an SMPL-X model; use an SMPL body model file",
        ),
        (
            pickle.dumps(
                {"hands_components": np.zeros((45, 45)), "v_template": np.zeros((778, 3))}, protocol=2
            ),
            "this is a MANO hand model, not an SMPL body model",
        ),
        (
            pickle.dumps({"v_template": np.zeros((NUM_VERTICES, 3)), "f": np.zeros((3, 3))}, protocol=2),
            "not an SMPL-format body model: missing shapedirs, posedirs, J_regressor, weights, kintree_table",
        ),
    ],
)
def test_wrong_files_get_their_own_message(tmp_path, cache, content, message) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(HMNError, match=message) as info:
        load_body_model("smpl", path)
    assert str(info.value).startswith(str(path))


def test_truncated_pickle(tmp_path, cache, official_pickle) -> None:
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(official_pickle[: len(official_pickle) // 3])
    with pytest.raises(HMNError, match="the file is truncated or damaged"):
        load_body_model("smpl", path)


def test_inconsistent_arrays_are_named(tmp_path, cache, official_arrays) -> None:
    broken = {**official_arrays, "f": official_arrays["f"] + NUM_VERTICES}
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **broken)
    with pytest.raises(HMNError, match="are not triangles of its 6890 vertices"):
        load_body_model("smpl", tmp_path)
    np.savez(
        tmp_path / "SMPL_NEUTRAL.npz", **{**official_arrays, "weights": official_arrays["weights"][:, :22]}
    )
    with pytest.raises(HMNError, match=r"weights has shape \(6890, 22\), expected \(6890, 24\)"):
        load_body_model("smpl", tmp_path)


def test_npz_with_pickled_objects_and_missing_gender_file(tmp_path, cache) -> None:
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, v_template=np.array([{"a": 1}], dtype=object))
    with pytest.raises(HMNError, match="holds pickled objects; refusing it"):
        load_body_model("smpl", path)
    with pytest.raises(HMNError, match="no female SMPL model file here"):
        load_body_model("smpl", tmp_path, "female")
