"""Keypoints holding given full-frame person masks, stored the way MediaPipe's are (box + crop)."""

from __future__ import annotations

import cv2
import numpy as np

from hmn_blender_addon.keypoints import MASK_SHAPE, Keypoints


def keypoints_from_masks(masks: np.ndarray, fps: float = 30.0) -> Keypoints:
    """(T, H, W) bool masks, each with the person in it -> Keypoints (landmarks NaN)."""
    boxes, packed = [], []
    for mask in masks:
        rows, cols = np.nonzero(mask)
        x0, y0 = max(cols.min() - 4, 0), max(rows.min() - 4, 0)
        x1, y1 = cols.max() + 5, rows.max() + 5
        crop = cv2.resize(
            mask[y0:y1, x0:x1].astype(np.float32), MASK_SHAPE[::-1], interpolation=cv2.INTER_AREA
        )
        boxes.append([x0, y0, x1, y1])
        packed.append(np.packbits((crop > 0.5).ravel()))
    count, height, width = masks.shape
    return Keypoints(
        landmarks_px=np.full((count, 33, 3), np.nan, np.float32),
        visibility=np.ones((count, 33), np.float32),
        world_m=np.zeros((count, 33, 3), np.float32),
        detected=np.ones(count, bool),
        interpolated=np.zeros(count, bool),
        times_s=np.arange(count) / fps,
        mask_boxes_px=np.array(boxes, np.float32),
        masks_packed=np.stack(packed),
        width=width,
        height=height,
        fps=fps,
    )
