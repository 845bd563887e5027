"""A reconstruction.npz and report.json made from known motion: the open body walking a CMU clip.

The SMPL joints come from the open body's forward kinematics (``body_forward``), so the scene's
bone heads must reproduce them exactly. The vertebra chain is the spine package's, as
the pipeline makes it without person masks: the morphology from the body's back surface, moved by
``dynamic_spine``. A camera 4 m to the side looks at the walk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from hmn_blender_addon.body.model import body_forward, load_body_model
from hmn_blender_addon.metrics.cycles import heel_strikes_from_joints, spine_metrics
from hmn_blender_addon.mocap import load_bvh_as_smpl
from hmn_blender_addon.reconstruction import Reconstruction, save_reconstruction
from hmn_blender_addon.spine.dynamic import dynamic_spine
from hmn_blender_addon.spine.morphology import spine_morphology

FRAMES = 60
BETAS = np.array([0.8, -0.5, 0.3, 0.0, 0.2, 0.0, -0.1, 0.0, 0.0, 0.1])


def look_at_camera(target_m: np.ndarray, distance_m: float) -> np.ndarray:
    """(4, 4) world_from_camera (OpenCV axes) of a camera ``distance_m`` along +x from ``target_m``, level."""
    forward = np.array([-1.0, 0.0, 0.0])
    down = np.array([0.0, -1.0, 0.0])
    right = np.cross(down, forward)
    transform = np.eye(4)
    transform[:3, :3] = np.stack([right, down, forward], axis=1)
    transform[:3, 3] = target_m - distance_m * forward
    return transform


def known_reconstruction(shared_data: Path, video_path: str = "") -> Reconstruction:
    body = load_body_model("open")
    clip = load_bvh_as_smpl(shared_data / "mocap" / "cmu_walk" / "07_01.bvh.gz", target_fps=30.0)
    rotvec = clip.local_rotvec_rad[:FRAMES].astype(np.float64)
    lab_root = clip.root_transl_m[:FRAMES].astype(np.float64)
    betas = torch.tensor(BETAS[None], dtype=torch.float32)
    _, rest = body_forward(body, betas, torch.zeros(1, 24, 3))
    rest = rest[0].double().numpy()
    world_from_camera = look_at_camera(lab_root.mean(axis=0), 4.0)
    camera_from_world = np.linalg.inv(world_from_camera)
    rotation = camera_from_world[:3, :3]
    # Camera-frame pose: the root orientation and the pelvis position move into the camera frame.
    root = Rotation.from_matrix(rotation @ Rotation.from_rotvec(rotvec[:, 0]).as_matrix()).as_rotvec()
    pelvis_camera = lab_root @ rotation.T + camera_from_world[:3, 3]
    transl = pelvis_camera - rest[0]
    pose = np.concatenate([root[:, None], rotvec[:, 1:]], axis=1)
    _, joints = body_forward(
        body,
        betas.expand(FRAMES, -1),
        torch.tensor(pose, dtype=torch.float32),
        torch.tensor(transl, dtype=torch.float32),
    )
    joints = joints.double().numpy()
    camera_K = np.array([[500.0, 0, 330.0], [0, 500.0, 230.0], [0, 0, 1]])
    morphology = spine_morphology(body, BETAS, transl, world_from_camera, camera_K, None)
    spine = dynamic_spine(body, BETAS, pose, transl, morphology)
    strikes = heel_strikes_from_joints(joints @ world_from_camera[:3, :3].T, 30.0)
    return Reconstruction(
        fps=30.0,
        frame_times_s=np.arange(FRAMES) / 30.0,
        body_model="open",
        betas=BETAS.astype(np.float32),
        global_orient=pose[:, 0].astype(np.float32),
        body_pose=pose[:, 1:].reshape(FRAMES, -1).astype(np.float32),
        transl=transl.astype(np.float32),
        joints_m=joints,
        vertebrae_m=spine.centres_m,
        vertebra_rotations=spine.rotations,
        camera_K=camera_K,
        image_size=np.array([640, 480]),
        world_from_camera=world_from_camera,
        present=np.ones(FRAMES, dtype=bool),
        heel_strikes_left=np.array(strikes["left"], dtype=int),
        heel_strikes_right=np.array(strikes["right"], dtype=int),
        video_path=video_path,
    )


def known_report(reconstruction: Reconstruction) -> dict:
    """A report.json with section 10's layout; the spine metrics computed from the known motion."""
    rotation = reconstruction.world_from_camera[:3, :3]
    metrics = spine_metrics(
        rotation @ reconstruction.vertebra_rotations,
        reconstruction.joints_m[:, 0] @ rotation.T,
        {"left": list(reconstruction.heel_strikes_left), "right": list(reconstruction.heel_strikes_right)},
    )
    return {
        "video": {"path": reconstruction.video_path, "frames": reconstruction.num_frames, "fps": 30.0},
        "body": {"model": "open", "betas": [float(b) for b in reconstruction.betas], "height_m": 1.7},
        "metrics": metrics,
        "quality": {
            "silhouette_iou": 0.81,
            "mask_psnr_db": 17.2,
            "reprojection_px": 4.1,
            "frames_with_person": 1.0,
        },
    }


def write_known_run(folder: Path, shared_data: Path, video_path: str = "") -> tuple[Path, Path]:
    """``folder/reconstruction.npz`` and ``folder/report.json`` of the known motion."""
    reconstruction = known_reconstruction(shared_data, video_path)
    npz = save_reconstruction(reconstruction, folder / "reconstruction.npz")
    report = folder / "report.json"
    report.write_text(json.dumps(known_report(reconstruction), indent=1))
    return npz, report
