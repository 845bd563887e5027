"""The scene's HumanMoveNet settings and state (``scene.hmn``), shown by the sidebar panel."""

import bpy

BODY_ITEMS = (
    ("open", "Open body", "The open SMPL-format body shipped with the add-on (no licence needed)"),
    ("smpl", "SMPL", "The official SMPL files named in the add-on preferences"),
)
SMOOTHER_ITEMS = (
    ("gcn_lstm", "GCN + LSTM", "The learned temporal smoother"),
    ("butterworth", "Butterworth", "4th-order 6 Hz zero-lag low-pass"),
    ("none", "None", "No smoothing"),
)


class HMNSceneSettings(bpy.types.PropertyGroup):
    video_path: bpy.props.StringProperty(
        name="Video", description="The gait video to reconstruct", subtype="FILE_PATH"
    )
    output_dir: bpy.props.StringProperty(
        name="Output",
        description="Folder for the run's outputs; empty = <video stem>_hmn beside the video",
        subtype="DIR_PATH",
    )
    body: bpy.props.EnumProperty(name="Body", items=BODY_ITEMS, default="open")
    smoother: bpy.props.EnumProperty(name="Smoother", items=SMOOTHER_ITEMS, default="gcn_lstm")
    subject_height_m: bpy.props.FloatProperty(
        name="Subject Height",
        description="The subject's measured height: the fitted body's stature, which scales the body, "
        "walking speed and stride and step lengths; 0 = unknown (the fitted body's own scale)",
        min=0.0,
        max=2.5,
        unit="LENGTH",
    )
    progress: bpy.props.FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    status: bpy.props.StringProperty(name="Status")
    report_json: bpy.props.StringProperty(name="Report", description="report.json of the subject shown")
    report_dir: bpy.props.StringProperty(name="Report Folder", subtype="DIR_PATH")
    subject: bpy.props.PointerProperty(
        name="Subject", type=bpy.types.Object, description="The armature shown"
    )
