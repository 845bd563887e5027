"""Train the temporal model on the CMU walks and compare it with the classical filters.

``python -m hmn_blender_addon.temporal.train [--data DIR] [--out FILE] [--steps N] [--seed S]``

Data: the straight CMU walks (``mocap.walking_clips``), loaded at 120 fps so that windows can be
drawn at a random phase and with a random frame stride of 3 to 5 (walking 25 % slower to 25 %
faster, shown at 30 fps), with joint excursions scaled by 0.8 to 1.2 (other walking styles),
mirrored left/right half of the time, and placed in a random camera frame (OpenCV: y down, z
forward; random heading, pitch within +-15 deg, 3 to 8 m away). The noise model
(``noise.NoiseModel``) corrupts them; the model learns to undo it. Subjects are kept apart: SPLITS
lists the validation and test subjects, all others train. The best validation checkpoint is saved.
The same seed gives the same weights (single-threaded torch).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..kinematics import SMPL_LIKE_REST_JOINTS_M, forward_kinematics
from ..metrics.accuracy import accel_error_mm, mpjpe_mm
from ..mocap import MocapClip, walking_clips
from ..progress import Progress, terminal_sink
from .model import DEFAULT_WEIGHTS, MODEL_FPS, TemporalGcnLstm, rot6d_joints, save_weights
from .noise import NoiseModel, mirror_rotvecs
from .rotation6d import rot6d_to_matrix_torch, rotvec_to_rot6d
from .smooth import smooth_motion

DEFAULT_NOISE = NoiseModel()
SPLITS: dict[str, tuple[str, ...]] = {"val": ("cmu_06", "cmu_10"), "test": ("cmu_02", "cmu_12")}
# The project's shared data sits beside the repository (tests/conftest.py uses the same rule).
DEFAULT_DATA = (
    Path(os.environ.get("HMN_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "mocap"
    / "cmu_walk"
)
# Baseline settings tried on the validation subjects; the one with the lowest sum of MPJPE, joint
# and root acceleration errors (all in mm) is compared on the test subjects.
BASELINE_GRID: dict[str, list[dict]] = {
    "butterworth": [{"cutoff_hz": f} for f in (2.0, 3.0, 4.0, 6.0, 8.0)],
    "savitzky_golay": [{"window_s": w, "polyorder": p} for w in (0.3, 0.5, 0.7, 1.0) for p in (2, 3)],
    "one_euro": [{"min_cutoff_hz": c, "beta": b} for c in (0.5, 1.0, 2.0) for b in (0.0, 0.5, 2.0, 8.0)],
}


def split_clips(clips: list[MocapClip]) -> dict[str, list[MocapClip]]:
    """{"train", "val", "test"}: clips by subject, no subject in two sets."""
    held = {s for subjects in SPLITS.values() for s in subjects}
    out = {name: [c for c in clips if c.subject in subjects] for name, subjects in SPLITS.items()}
    out["train"] = [c for c in clips if c.subject not in held]
    return out


def to_camera(
    rotvec: np.ndarray, transl_m: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Place (B, T, 24, 3) lab-frame (y up) motion in a random OpenCV camera frame per sequence."""
    batch = rotvec.shape[0]
    heading = Rotation.from_euler("y", rng.uniform(-np.pi, np.pi, (batch, 1)))
    camera = Rotation.from_euler("x", np.pi + rng.uniform(-0.26, 0.26, (batch, 1))) * heading
    centre = transl_m.mean(axis=1, keepdims=True)
    offset = np.stack(
        [rng.uniform(-0.5, 0.5, batch), rng.uniform(-0.3, 0.3, batch), rng.uniform(3, 8, batch)], 1
    )
    frames = rotvec.shape[1]
    cam = Rotation.from_quat(np.repeat(camera.as_quat(), frames, axis=0))
    root = (cam * Rotation.from_rotvec(rotvec[:, :, 0].reshape(-1, 3))).as_rotvec().reshape(batch, frames, 3)
    out_rot = rotvec.copy()
    out_rot[:, :, 0] = root
    out_t = cam.apply((transl_m - centre).reshape(-1, 3)).reshape(batch, frames, 3) + offset[:, None]
    return out_rot.astype(np.float32), out_t.astype(np.float32)


def sample_windows(
    clips: list[MocapClip], batch: int, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(B, W, 24, 3), (B, W, 3) lab-frame windows from 120 fps clips, stride 3..5, half mirrored,
    joint excursions (about each window's mean) scaled by 0.8..1.2 to vary the walking style."""
    strides = rng.integers(3, 6, size=batch)
    usable = np.array([c.num_frames for c in clips])
    rot = np.empty((batch, window, 24, 3), dtype=np.float32)
    transl = np.empty((batch, window, 3), dtype=np.float32)
    for b, stride in enumerate(strides):  # one gather per window, not per frame
        span = (window - 1) * stride + 1
        candidates = np.nonzero(usable >= span)[0]
        clip = clips[rng.choice(candidates, p=usable[candidates] / usable[candidates].sum())]
        index = rng.integers(0, clip.num_frames - span + 1) + stride * np.arange(window)
        rot[b], transl[b] = clip.local_rotvec_rad[index], clip.root_transl_m[index]
    mean = rot[:, :, 1:].mean(axis=1, keepdims=True)
    rot[:, :, 1:] = mean + rng.uniform(0.8, 1.2, size=(batch, 1, 1, 1)) * (rot[:, :, 1:] - mean)
    mirrored = rng.random(batch) < 0.5
    rot[mirrored] = mirror_rotvecs(rot[mirrored])
    transl[mirrored, :, 0] *= -1.0
    return rot, transl


def make_batch(
    model: TemporalGcnLstm,
    clips: list[MocapClip],
    batch: int,
    window: int,
    rng: np.random.Generator,
    noise: NoiseModel,
) -> dict[str, torch.Tensor]:
    """Noisy, pre-filtered and clean windows in a camera frame, as model tensors."""
    clean_rot, clean_t = to_camera(*sample_windows(clips, batch, window, rng), rng)
    noisy_rot, noisy_t = noise.corrupt(clean_rot, clean_t, rng)
    noisy_6d = rotvec_to_rot6d(noisy_rot)
    flat = np.concatenate([noisy_6d.reshape(batch, window, -1), noisy_t], axis=-1)
    base = np.moveaxis(model.prefilter(np.moveaxis(flat, 1, 0)), 0, 1)
    return {
        "noisy_rot6d": torch.from_numpy(noisy_6d.astype(np.float32)),
        "noisy_transl": torch.from_numpy(noisy_t),
        "base_rot6d": torch.from_numpy(base[..., :-3].reshape(noisy_6d.shape).astype(np.float32)),
        "base_transl": torch.from_numpy(base[..., -3:].astype(np.float32)),
        "clean_rot6d": torch.from_numpy(rotvec_to_rot6d(clean_rot).astype(np.float32)),
        "clean_transl": torch.from_numpy(clean_t),
    }


def loss_terms(
    model: TemporalGcnLstm, data: dict[str, torch.Tensor], rest: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Rotation-matrix L1, joint position and acceleration errors (m, m/frame^2), translation errors."""
    pred_rot, pred_t = model(
        data["noisy_rot6d"], data["noisy_transl"], data["base_rot6d"], data["base_transl"]
    )
    pred_mat, true_mat = rot6d_to_matrix_torch(pred_rot), rot6d_to_matrix_torch(data["clean_rot6d"])
    pred_j = rot6d_joints(pred_rot, rest)
    true_j = rot6d_joints(data["clean_rot6d"], rest)

    def accel(x: torch.Tensor) -> torch.Tensor:
        return x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]

    terms = {
        "rot": (pred_mat - true_mat).abs().mean(),
        "pos": (pred_j - true_j).norm(dim=-1).mean(),
        "accel": (accel(pred_j) - accel(true_j)).norm(dim=-1).mean(),
        "transl": (pred_t - data["clean_transl"]).norm(dim=-1).mean(),
        "transl_accel": (accel(pred_t) - accel(data["clean_transl"])).norm(dim=-1).mean(),
    }
    terms["total"] = (
        terms["rot"]
        + 20 * terms["pos"]
        + 40 * terms["accel"]
        + 5 * terms["transl"]
        + 40 * terms["transl_accel"]
    )
    return terms


def train(
    clips: list[MocapClip],
    val_clips: list[MocapClip],
    *,
    steps: int,
    seed: int = 0,
    batch: int = 16,
    window: int = 64,
    lr: float = 2e-3,
    model_kwargs: dict | None = None,
    noise: NoiseModel = DEFAULT_NOISE,
    progress: Progress | None = None,
) -> tuple[TemporalGcnLstm, dict]:
    """Train a model on 120 fps clips; returns the best-on-validation model and a training record."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TemporalGcnLstm(**(model_kwargs or {}))
    rest = torch.from_numpy(SMPL_LIKE_REST_JOINTS_M)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1
    )
    val_data = make_batch(model, val_clips, 128, window, np.random.default_rng(seed + 1), noise)
    with torch.no_grad():
        initial_val_loss = float(loss_terms(model.eval(), val_data, rest)["total"])
    best = {"val_loss": float("inf"), "step": 0}
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history = []
    started = time.perf_counter()
    for step in range(1, steps + 1):
        model.train()
        loss = loss_terms(model, make_batch(model, clips, batch, window, rng, noise), rest)["total"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                val = {k: float(v) for k, v in loss_terms(model, val_data, rest).items()}
            history.append({"step": step, "train_loss": loss.item(), "val_loss": val["total"]})
            if val["total"] < best["val_loss"]:
                best = {"val_loss": val["total"], "step": step, **{f"val_{k}": v for k, v in val.items()}}
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            if progress is not None:
                progress(step / steps, f"step {step} loss {loss.item():.3f} val {val['total']:.3f}")
    model.load_state_dict(best_state)
    record = {
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "window": window,
        "lr": lr,
        "fps": MODEL_FPS,
        "train_clips": [c.name for c in clips],
        "val_clips": [c.name for c in val_clips],
        "noise": asdict(noise),
        "initial_val_loss": initial_val_loss,
        "best": best,
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model.eval(), record


def noisy_test_set(
    clips: list[MocapClip], seed: int, noise: NoiseModel = DEFAULT_NOISE
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per 30 fps clip, (clean rotvec, clean transl, noisy rotvec, noisy transl) in a seeded camera frame."""
    rng = np.random.default_rng(seed)
    out = []
    for clip in clips:
        clean_rot, clean_t = to_camera(clip.local_rotvec_rad[None], clip.root_transl_m[None], rng)
        noisy_rot, noisy_t = noise.corrupt(clean_rot, clean_t, rng)
        out.append((clean_rot[0], clean_t[0], noisy_rot[0], noisy_t[0]))
    return out


def smoother_errors(
    sequences: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    fps: float,
    method: str,
    weights: Path = DEFAULT_WEIGHTS,
    **kwargs,
) -> dict[str, float]:
    """Frame-weighted mean MPJPE (mm) and acceleration error (mm/frame^2) of one smoother, plus the
    root translation's acceleration error."""
    totals = {"mpjpe_mm": 0.0, "accel_err_mm": 0.0, "transl_accel_err_mm": 0.0}
    frames = 0
    for clean_rot, clean_t, noisy_rot, noisy_t in sequences:
        rot, transl = smooth_motion(noisy_rot, noisy_t, fps, method, weights=weights, **kwargs)
        est = forward_kinematics(rot, SMPL_LIKE_REST_JOINTS_M, transl)
        true = forward_kinematics(clean_rot, SMPL_LIKE_REST_JOINTS_M, clean_t)
        n = len(rot)
        totals["mpjpe_mm"] += n * mpjpe_mm(est, true)
        totals["accel_err_mm"] += n * accel_error_mm(est, true)
        t_acc = np.diff(transl, n=2, axis=0) - np.diff(clean_t, n=2, axis=0)
        totals["transl_accel_err_mm"] += n * 1000.0 * float(np.linalg.norm(t_acc, axis=-1).mean())
        frames += n
    return {k: round(v / frames, 2) for k, v in totals.items()}


def tune_baselines(sequences: list, fps: float) -> dict[str, dict]:
    """Per classical filter, the BASELINE_GRID setting with the lowest sum of the three errors."""
    best = {}
    for method, grid in BASELINE_GRID.items():
        scored = [
            (sum(smoother_errors(sequences, fps, method, **kw).values()), i) for i, kw in enumerate(grid)
        ]
        best[method] = grid[min(scored)[1]]
    return best


def comparison_table(test: list, val: list, fps: float, weights: Path) -> list[dict]:
    """Rows {smoother, settings, mpjpe_mm, accel_err_mm, ...} on the test sequences."""
    rows = [{"smoother": "none", "settings": {}, **smoother_errors(test, fps, "none")}]
    rows.append(
        {
            "smoother": "butterworth",
            "settings": {"cutoff_hz": 6.0},
            **smoother_errors(test, fps, "butterworth"),
        }
    )
    for method, kwargs in tune_baselines(val, fps).items():
        rows.append({"smoother": method, "settings": kwargs, **smoother_errors(test, fps, method, **kwargs)})
    rows.append({"smoother": "gcn_lstm", "settings": {}, **smoother_errors(test, fps, "gcn_lstm", weights)})
    return rows


def held_out_comparison(
    data_dir: Path = DEFAULT_DATA, seed: int = 1000, weights: Path = DEFAULT_WEIGHTS
) -> tuple[list[dict], int]:
    """The comparison on the held-out test subjects' noisy walks (baselines tuned on the validation
    subjects' with seed + 1000): rows as in comparison_table, and the number of test frames."""
    clips = split_clips(walking_clips(data_dir, target_fps=MODEL_FPS))
    test = noisy_test_set(clips["test"], seed)
    val = noisy_test_set(clips["val"], seed + 1000)
    return comparison_table(test, val, MODEL_FPS, weights), sum(len(s[0]) for s in test)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hmn_blender_addon.temporal.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the CMU .bvh.gz walks")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="weights file to write")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps runs reproducible)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    progress = Progress(terminal_sink("train"))
    split = split_clips(walking_clips(args.data, target_fps=120.0))
    with progress.stage(0.0, 0.9, "training") as stage:
        model, record = train(split["train"], split["val"], steps=args.steps, seed=args.seed, progress=stage)
    save_weights(model, args.out, record)
    rows, test_frames = held_out_comparison(args.data, 1000 + args.seed, args.out)
    progress(1.0, "done")
    print(
        f"\nweights: {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), best step {record['best']['step']}"
    )
    print(f"test subjects {', '.join(SPLITS['test'])}: {test_frames} frames at {MODEL_FPS:g} fps")
    print(f"{'smoother':<16}{'MPJPE mm':>10}{'accel mm/f2':>13}{'root accel':>12}  settings")
    for row in rows:
        print(
            f"{row['smoother']:<16}{row['mpjpe_mm']:>10.2f}{row['accel_err_mm']:>13.2f}"
            f"{row['transl_accel_err_mm']:>12.2f}  {json.dumps(row['settings'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
