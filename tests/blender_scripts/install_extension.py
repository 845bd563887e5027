"""Run by tests/test_extension.py in a fresh Python with only bpy and numpy on sys.path.

Installs the built zip as a user would, enables it, exercises it, disables it, and prints one
JSON line of observations. argv: ZIP SANDBOX_DIR
"""

import json
import sys

sys.path.insert(0, sys.argv[2])

import bpy

zip_path = sys.argv[1]
package = "bl_ext.user_default.humanmovenet"
seen = {}
seen["install"] = sorted(
    bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True, overwrite=True
    )
)
seen["enabled"] = package in bpy.context.preferences.addons
seen["operators"] = sorted(
    name for name in ("HMN_OT_check_environment", "HMN_OT_open_cache_folder") if hasattr(bpy.types, name)
)
panel = getattr(bpy.types, "VIEW3D_PT_humanmovenet", None)
seen["panel"] = panel and [panel.bl_space_type, panel.bl_region_type, panel.bl_category]
prefs = bpy.context.preferences.addons[package].preferences
seen["preferences"] = sorted(k for k in ("smpl_model_dir", "cache_dir") if hasattr(prefs, k))
seen["check_environment"] = sorted(bpy.ops.hmn.check_environment())

# The bundled libraries really work from the extension's own site-packages.
import importlib.util  # noqa: E402

import numpy as np  # noqa: E402

seen["origins"] = {
    name: (importlib.util.find_spec(name).origin if importlib.util.find_spec(name) else None)
    for name in ("torch", "mediapipe", "cv2", "scipy", "smplx", "matplotlib", "jax")
}
import mediapipe as mp  # noqa: E402
import torch  # noqa: E402

with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
    seen["pose_on_blank_frame"] = pose.process(np.zeros((120, 160, 3), np.uint8)).pose_landmarks is None
seen["torch_sum"] = float(torch.arange(4.0).sum())

bpy.ops.preferences.addon_disable(module=package)
seen["after_disable"] = {
    "enabled": package in bpy.context.preferences.addons,
    "operator": hasattr(bpy.types, "HMN_OT_check_environment"),
    "panel": hasattr(bpy.types, "VIEW3D_PT_humanmovenet"),
}
print("RESULT " + json.dumps(seen))
