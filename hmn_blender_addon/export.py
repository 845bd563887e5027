"""Exports that need no Blender: angles as an OpenSim ``.mot``, the body motion as an AMASS-style
``.npz``, the report as CSV/JSON. (FBX, BVH and Alembic go through Blender's own exporters in
:mod:`.blender.export`.) Every file is written atomically.

OpenSim ``.mot`` columns use OpenSim's coordinate names with DESIGN.md section 6's signs:
``pelvis_tilt`` (anterior +), ``pelvis_list`` (obliquity, toward the left +), ``pelvis_rotation``
(toward the left +), ``lumbar_extension`` (extension +, i.e. minus flexion), ``lumbar_bending``
(toward the left +), ``lumbar_rotation`` (toward the left +); degrees. An OpenSim model whose
coordinates use other signs needs them flipped.

AMASS-style ``.npz`` (as AMASS ships SMPL fits): ``poses`` (T, 72) axis-angle with the root in a
Z-up world (Blender's: the lab's y up becomes z), ``trans`` (T, 3) so that the pelvis joint is at
``J_pelvis(betas) + trans``, ``betas``, ``mocap_framerate``, ``gender``; plus ``surface_model_type``
("open" or "smpl": which body the betas belong to).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from .atomic import atomic_path, write_text_atomic
from .body.model import BodyModel
from .reconstruction import Reconstruction
from .spine.dynamic import shaped_rest
from .subject import (
    LUMBAR_CURVES,
    PELVIC_CURVES,
    Y_UP_TO_Z_UP,
    angle_curves_deg,
    smpl_global_rotations,
    to_lab,
)

MOT_COLUMNS: dict[str, tuple[str, float]] = {
    "pelvis_tilt": (PELVIC_CURVES[0], 1.0),
    "pelvis_list": (PELVIC_CURVES[1], 1.0),
    "pelvis_rotation": (PELVIC_CURVES[2], 1.0),
    "lumbar_extension": (LUMBAR_CURVES[0], -1.0),
    "lumbar_bending": (LUMBAR_CURVES[1], 1.0),
    "lumbar_rotation": (LUMBAR_CURVES[2], 1.0),
}


def mot_text(times_s: np.ndarray, columns: dict[str, np.ndarray], name: str) -> str:
    """An OpenSim storage file (.mot, angles in degrees) with a ``time`` column then ``columns``."""
    header = [
        name,
        "version=1",
        f"nRows={len(times_s)}",
        f"nColumns={len(columns) + 1}",
        "inDegrees=yes",
        "endheader",
    ]
    table = np.column_stack([times_s, *columns.values()])
    lines = ["\t".join(["time", *columns])]
    lines += ["\t".join(f"{value:.8f}" for value in row) for row in table]
    return "\n".join(header + lines) + "\n"


def write_angles_mot(reconstruction: Reconstruction, path: str | os.PathLike) -> Path:
    """Pelvis and lumbar angles per frame as an OpenSim ``.mot`` (see the module docstring)."""
    curves = angle_curves_deg(reconstruction)
    columns = {column: sign * curves[curve] for column, (curve, sign) in MOT_COLUMNS.items()}
    return write_text_atomic(path, mot_text(reconstruction.frame_times_s, columns, Path(path).stem))


def amass_arrays(reconstruction: Reconstruction, body: BodyModel) -> dict[str, np.ndarray]:
    """The AMASS-style arrays of the module docstring."""
    local = smpl_global_rotations(reconstruction)  # root already in the lab frame
    root_z_up = Rotation.from_matrix(Y_UP_TO_Z_UP @ local[:, 0]).as_rotvec()
    poses = np.concatenate([root_z_up, reconstruction.body_pose.astype(np.float64)], axis=1)
    _, rest_joints = shaped_rest(body, np.asarray(reconstruction.betas, dtype=np.float64))
    pelvis_z_up = to_lab(reconstruction, reconstruction.joints_m[:, 0]) @ Y_UP_TO_Z_UP.T
    return {
        "poses": poses,
        "trans": pelvis_z_up - rest_joints[0],
        "betas": np.asarray(reconstruction.betas, dtype=np.float64),
        "mocap_framerate": np.asarray(float(reconstruction.fps)),
        "gender": np.asarray("neutral"),
        "surface_model_type": np.asarray(reconstruction.body_model),
    }


def write_amass_npz(reconstruction: Reconstruction, body: BodyModel, path: str | os.PathLike) -> Path:
    """The body motion as an AMASS-style ``.npz``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **amass_arrays(reconstruction, body))
    return Path(path)


def report_csv_text(report: dict) -> str:
    """report.json as ``key,value`` rows, as ``run`` writes report.csv (:func:`.report.flatten`)."""
    from .report import flatten

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["key", "value"])
    writer.writerows(flatten(report))
    return buffer.getvalue()


def write_report_files(report: dict, stem: str | os.PathLike) -> tuple[Path, Path]:
    """``<stem>.json`` and ``<stem>.csv`` of ``report``."""
    stem = Path(stem)
    json_path = write_text_atomic(stem.with_suffix(".json"), json.dumps(report, indent=1))
    csv_path = write_text_atomic(stem.with_suffix(".csv"), report_csv_text(report))
    return json_path, csv_path
