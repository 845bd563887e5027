"""Temporal consistency (DESIGN.md section 1, stage 3): learned and classical smoothers of SMPL motion.

- :mod:`.smooth`: ``smooth_motion(rotvec, transl, fps, method)``, the one entry the pipeline calls.
- :mod:`.filters`: zero-lag Butterworth, Savitzky-Golay, One-Euro.
- :mod:`.model`: the graph-convolution + BiLSTM residual model, windowed inference, weights I/O.
- :mod:`.noise`: the fit-error model used for training and evaluation.
- :mod:`.train`: ``python -m hmn_blender_addon.temporal.train`` (training and the comparison table).
"""

from .smooth import SMOOTHERS, smooth_motion

__all__ = ["SMOOTHERS", "smooth_motion"]
