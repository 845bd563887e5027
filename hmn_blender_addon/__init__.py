"""HumanMoveNet core: monocular gait video -> SMPL body, dynamic spine, low-back-pain metrics.

Importable without Blender. Only :mod:`hmn_blender_addon.blender` imports ``bpy``. The package
uses relative imports only, so it works as the top-level package ``hmn_blender_addon`` (CLI,
tests) and as a sub-package of the installed Blender extension.
"""

__version__ = "0.1.0"
