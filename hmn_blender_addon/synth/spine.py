"""The synthetic subject's spine profile, drawn from physiological ranges.

The profile's meaning, the vertebra chain it draws and its placement in the trunk are shared with
the pipeline: :mod:`hmn_blender_addon.spine.profile`.
"""

from __future__ import annotations

import numpy as np

from ..spine.profile import SpineProfile

LORDOSIS_RANGE_DEG = (30.0, 60.0)
KYPHOSIS_RANGE_DEG = (25.0, 55.0)


def sample_profile(rng: np.random.Generator) -> SpineProfile:
    """Lordosis and kyphosis uniform over their ranges; sacral slope about 0.75 lordosis (balanced spine)."""
    lordosis = float(rng.uniform(*LORDOSIS_RANGE_DEG))
    kyphosis = float(rng.uniform(*KYPHOSIS_RANGE_DEG))
    sacral_slope = float(0.75 * lordosis + rng.normal(0.0, 3.0))
    return SpineProfile(lordosis, kyphosis, sacral_slope)
