"""The shipped open body: SMPL format, smplx runs it unchanged, and it reproduces Anny."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmn_blender_addon.body import build
from hmn_blender_addon.body.landmarks import SELECTOR_NAMES
from hmn_blender_addon.body.model import OPEN_BODY_PATH, as_smplx, body_forward, load_body_model
from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.progress import Progress
from hmn_blender_addon.skeleton import SMPL_PARENTS

# The bounds.
MAX_VERTEX_MEAN_MM = 10.0
MAX_JOINT_MEAN_MM = 10.0
MIN_VARIANCE_10 = 0.95
MAX_HELD_OUT_REST_MM = 5.0


@pytest.fixture(scope="module")
def body():
    return load_body_model("open")


def test_shipped_file_is_small_float32_smpl_format(body) -> None:
    assert OPEN_BODY_PATH.stat().st_size <= 30e6
    with np.load(OPEN_BODY_PATH) as data:
        for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
            assert data[key].dtype == np.float32, key
    assert body.num_betas >= 10
    assert body.posedirs.shape == (body.num_vertices, 3, 207)
    np.testing.assert_array_equal(body.parents, SMPL_PARENTS)
    np.testing.assert_allclose(body.weights.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(body.J_regressor.sum(1), 1.0, atol=1e-4)
    assert body.faces.max() < body.num_vertices
    assert np.abs(body.posedirs).max() > 0  # learned correctives, as the metadata says
    assert "learned" in body.metadata["posedirs"]


def test_build_time_fidelity_meets_the_bounds(body) -> None:
    fidelity = body.metadata["fidelity"]
    assert fidelity["samples"] == 200
    assert fidelity["vertex_mean_mm"] <= MAX_VERTEX_MEAN_MM
    assert fidelity["joint_mean_mm"] <= MAX_JOINT_MEAN_MM
    assert fidelity["variance_explained_10"] >= MIN_VARIANCE_10
    assert fidelity["held_out_rest_mean_mm"] <= MAX_HELD_OUT_REST_MM


def test_fidelity_recomputed_on_fresh_samples(shared_data) -> None:
    """A smaller fresh draw (new seed) of the build's own measurement, against Anny itself."""
    fidelity = build.check_open_body(
        OPEN_BODY_PATH, shared_data / "mocap" / "cmu_walk", seed=123, samples=24, progress=Progress()
    )
    assert fidelity.vertex_mean_mm <= MAX_VERTEX_MEAN_MM
    assert fidelity.joint_mean_mm <= MAX_JOINT_MEAN_MM
    assert fidelity.variance_explained_10 >= MIN_VARIANCE_10
    assert fidelity.held_out_rest_mean_mm <= MAX_HELD_OUT_REST_MM


def test_smplx_runs_the_open_body_unchanged(body) -> None:
    rng = np.random.default_rng(0)
    betas = torch.tensor(rng.normal(0, 1, (3, 12)), dtype=torch.float32)
    pose = torch.tensor(rng.normal(0, 0.3, (3, 24, 3)), dtype=torch.float32)
    transl = torch.tensor(rng.normal(0, 1, (3, 3)), dtype=torch.float32)
    smpl = as_smplx(body, num_betas=12, batch_size=3)
    assert smpl.num_betas == 12
    out = smpl(betas=betas, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(3, -1), transl=transl)
    vertices, joints = body_forward(body, betas, pose, transl)
    torch.testing.assert_close(out.vertices, vertices)
    torch.testing.assert_close(out.joints[:, :24], joints)
    # The vertex-joint selector reads the open topology's own landmark vertices.
    tips = [f"{side}{finger}" for side in "lr" for finger in ("thumb", "index", "middle", "ring", "pinky")]
    order = ["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe"]
    selector = [body.landmarks[name] for name in [*order, "RHeel", *tips]]
    assert sorted(selector) == sorted(body.landmarks[name] for name in SELECTOR_NAMES)
    torch.testing.assert_close(out.joints[:, 24:], out.vertices[:, selector])


def test_zero_betas_and_pose_give_the_template_with_pelvis_at_origin(body) -> None:
    vertices, joints = body_forward(body, torch.zeros(1, 10), torch.zeros(1, 24, 3))
    np.testing.assert_allclose(vertices[0].numpy(), body.v_template_m, atol=1e-6)
    np.testing.assert_allclose(joints[0, 0].numpy(), 0.0, atol=1e-3)
    stature = body.v_template_m[:, 1].max() - body.v_template_m[:, 1].min()
    assert 1.6 < stature < 1.8  # the mean sampled adult


def test_joint_regressor_fit_recovers_a_known_linear_regressor() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.3, (build.REGRESSOR_SUPPORT, 3))
    vertices = base + rng.normal(0, 0.02, (300, build.REGRESSOR_SUPPORT, 3))
    truth = np.zeros((24, build.REGRESSOR_SUPPORT))
    for j in range(24):  # each joint: a convex mix of 5 vertices
        support = rng.choice(build.REGRESSOR_SUPPORT, 5, replace=False)
        truth[j, support] = rng.dirichlet(np.ones(5))
    joints = np.einsum("jv,nvc->njc", truth, vertices)
    regressor = build.fit_joint_regressor(vertices[:250], joints[:250])
    np.testing.assert_allclose(regressor.sum(1), 1.0, atol=1e-9)
    held_out = np.einsum("jv,nvc->njc", regressor, vertices[250:])
    np.testing.assert_allclose(held_out, joints[250:], atol=1e-4)


def test_unknown_body_kind_and_missing_smpl_path_are_clear_errors(monkeypatch) -> None:
    with pytest.raises(HMNError, match="unknown body model 'smplx'"):
        load_body_model("smplx")
    monkeypatch.delenv("HMN_SMPL_MODEL_DIR", raising=False)
    with pytest.raises(HMNError, match="HMN_SMPL_MODEL_DIR"):
        load_body_model("smpl")
