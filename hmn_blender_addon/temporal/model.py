"""The learned temporal smoother: graph convolution over the SMPL tree, then a BiLSTM over time.

The fitted sequence is first smoothed by a fixed zero-lag Butterworth pre-filter (the "base"; its
cut-off is part of the model's config). Per frame, a few graph-convolution layers (Kipf &
Welling: H' = act(A_hat H W) with the symmetric-normalised adjacency of the 24-joint kinematic
tree plus self-loops) mix each joint's deviation of the fit from the base and the base's velocity
(6D rotations) with its neighbours'; the flattened joint features and the same two signals of the
root translation go through a bidirectional LSTM over the frames; a linear head, initialised at
zero, predicts a residual correction added to the base rotations (6D) and translation. The
pre-filter gives the network a smooth starting point, so that a few minutes of CPU training
suffice; the network learns what the filter cannot do: undo swaps, dropouts and outliers, and
restore the peaks the filter rounds off. Clips of any length run as overlapping windows blended
with triangular weights.

Weights are a safetensors file whose metadata holds the constructor arguments (``config``) and
the training record (``training``); a missing, corrupt or mismatched file raises HMNError.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import HMNError
from ..paths import DATA_DIR
from ..skeleton import NUM_SMPL_JOINTS, SMPL_PARENTS, kinematic_adjacency
from .filters import butterworth
from .rotation6d import rot6d_to_matrix_torch

DEFAULT_WEIGHTS = DATA_DIR / "temporal_gcn_lstm.safetensors"
MODEL_FPS = 30.0  # frame rate of the training windows
WINDOWS_PER_BATCH = 4  # windows per forward pass (about 130 frames): bounds inference memory


def normalized_adjacency() -> torch.Tensor:
    """(24, 24) D^-1/2 (A + I) D^-1/2 of the SMPL kinematic tree."""
    adjacency = kinematic_adjacency() + np.eye(NUM_SMPL_JOINTS, dtype=np.float32)
    inv_sqrt_degree = 1.0 / np.sqrt(adjacency.sum(axis=1))
    return torch.from_numpy(inv_sqrt_degree[:, None] * adjacency * inv_sqrt_degree[None, :])


class TemporalGcnLstm(nn.Module):
    """Residual smoother of (B, T, 24, 6) rotations and (B, T, 3) translations (metres)."""

    def __init__(
        self,
        gcn_channels: int = 16,
        gcn_layers: int = 2,
        embed: int = 128,
        lstm_hidden: int = 64,
        lstm_layers: int = 2,
        dropout: float = 0.2,
        base_cutoff_hz: float = 2.0,
    ) -> None:
        super().__init__()
        self.config = {
            "gcn_channels": gcn_channels,
            "gcn_layers": gcn_layers,
            "embed": embed,
            "lstm_hidden": lstm_hidden,
            "lstm_layers": lstm_layers,
            "dropout": dropout,
            "base_cutoff_hz": base_cutoff_hz,
        }
        self.register_buffer("adjacency", normalized_adjacency(), persistent=False)
        self.gcn = nn.ModuleList(
            nn.Linear(12 if i == 0 else gcn_channels, gcn_channels) for i in range(gcn_layers)
        )
        self.embed = nn.Linear(NUM_SMPL_JOINTS * gcn_channels + 6, embed)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            embed,
            lstm_hidden,
            lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.head = nn.Linear(2 * lstm_hidden, NUM_SMPL_JOINTS * 6 + 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def prefilter(self, x: np.ndarray) -> np.ndarray:
        """The base: (T, ...) -> (T, ...) low-passed along time at MODEL_FPS."""
        return butterworth(x, MODEL_FPS, self.config["base_cutoff_hz"])

    def forward(
        self,
        rot6d: torch.Tensor,
        transl_m: torch.Tensor,
        base_rot6d: torch.Tensor,
        base_transl_m: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 24, 6) fitted and base rotations, (B, T, 3) fitted and base translations -> refined."""
        batch, frames = rot6d.shape[:2]

        def velocity(x: torch.Tensor) -> torch.Tensor:
            return torch.diff(x, dim=1, prepend=x[:, :1])

        # Only what the fit deviates from the base and how the base moves: no absolute pose, so
        # the network cannot memorise the training subjects' postures (x10: about unit scale).
        h = 10.0 * torch.cat([rot6d - base_rot6d, velocity(base_rot6d)], dim=-1)
        for layer in self.gcn:
            h = nn.functional.gelu(layer(torch.einsum("ij,btjc->btic", self.adjacency, h)))
        root = 10.0 * torch.cat([transl_m - base_transl_m, velocity(base_transl_m)], dim=-1)
        features = torch.cat([h.reshape(batch, frames, -1), root], dim=-1)
        hidden, _ = self.lstm(self.dropout(nn.functional.gelu(self.embed(features))))
        delta = self.head(hidden)
        rot_out = base_rot6d + delta[..., :-3].reshape(batch, frames, NUM_SMPL_JOINTS, 6)
        return rot_out, base_transl_m + delta[..., -3:]


def window_starts(num_frames: int, window: int, hop: int) -> np.ndarray:
    """Starts of windows of ``window`` frames every ``hop`` frames; the last ends at the clip's end."""
    if num_frames <= window:
        return np.array([0])
    starts = np.arange(0, num_frames - window, hop)
    return np.append(starts, num_frames - window)


def refine_windows(
    model: TemporalGcnLstm,
    rot6d: np.ndarray,
    transl_m: np.ndarray,
    window: int = 64,
    hop: int = 32,
    windows_per_batch: int = WINDOWS_PER_BATCH,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over a whole clip: (T, 24, 6), (T, 3) -> same shapes, in overlapping windows.

    Overlaps are blended with triangular weights so that window edges (where the BiLSTM sees only
    one side) count least. Windows go through the model ``windows_per_batch`` at a time, so that
    memory stays flat however long the clip.
    """
    num_frames = rot6d.shape[0]
    base_rot6d, base_transl = model.prefilter(rot6d), model.prefilter(transl_m)  # column by column
    length = min(window, num_frames)
    ramp = np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)).astype(np.float32)
    weights = np.zeros(num_frames, dtype=np.float32)
    rot_sum = np.zeros((num_frames, *rot6d.shape[1:]), dtype=np.float32)
    transl_sum = np.zeros((num_frames, 3), dtype=np.float32)
    starts = window_starts(num_frames, length, hop)
    for first in range(0, len(starts), windows_per_batch):
        index = starts[first : first + windows_per_batch, None] + np.arange(length)[None, :]
        inputs = [
            rot6d[index],
            transl_m[index],
            base_rot6d[index],
            base_transl[index],
        ]
        with torch.inference_mode():
            rot_w, transl_w = model(*(torch.from_numpy(x.astype(np.float32)) for x in inputs))
        np.add.at(weights, index, np.broadcast_to(ramp, index.shape))
        np.add.at(rot_sum, index, rot_w.numpy() * ramp[None, :, None, None])
        np.add.at(transl_sum, index, transl_w.numpy() * ramp[None, :, None])
    rot_sum /= weights[:, None, None]
    transl_sum /= weights[:, None]
    return rot_sum, transl_sum


def forward_kinematics_torch(rotmats: torch.Tensor, rest_joints_m: torch.Tensor) -> torch.Tensor:
    """(..., 24, 3, 3) local rotations, (24, 3) rest joints -> (..., 24, 3) joints, pelvis at the origin.

    The torch twin of ``kinematics.forward_kinematics`` for differentiable training losses.
    """
    rot = [rotmats[..., 0, :, :]]
    pos = [torch.zeros_like(rotmats[..., 0, :, 0])]
    for j in range(1, NUM_SMPL_JOINTS):
        p = int(SMPL_PARENTS[j])
        pos.append(pos[p] + rot[p] @ (rest_joints_m[j] - rest_joints_m[p]))
        rot.append(rot[p] @ rotmats[..., j, :, :])
    return torch.stack(pos, dim=-2)


def rot6d_joints(rot6d: torch.Tensor, rest_joints_m: torch.Tensor) -> torch.Tensor:
    """(..., 24, 6) -> (..., 24, 3) pelvis-relative joints."""
    return forward_kinematics_torch(rot6d_to_matrix_torch(rot6d), rest_joints_m)


def save_weights(model: TemporalGcnLstm, path: Path, training: dict) -> None:
    """Write the model's weights and config (and a training record) as safetensors, atomically."""
    from safetensors.torch import save_file

    from ..atomic import atomic_path

    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {"config": json.dumps(model.config), "training": json.dumps(training)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> TemporalGcnLstm:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        config = json.loads(metadata["config"])
        model = TemporalGcnLstm(**config)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise HMNError(
            path, f"not a readable temporal-model weight file ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise HMNError(path, f"weights do not match the temporal model ({' '.join(first[:2])})") from exc
    return model.eval()


def load_model(path: Path = DEFAULT_WEIGHTS) -> TemporalGcnLstm:
    """The temporal model stored at ``path`` (cached while the file is unchanged)."""
    path = Path(path)
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError as exc:
        raise HMNError(path, f"temporal-model weights not found ({exc.strerror or exc})") from exc
    return _load_cached(str(path), mtime_ns)
