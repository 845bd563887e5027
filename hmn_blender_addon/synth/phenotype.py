"""Adult Anny phenotypes drawn from a seed: sex, age 20 to 75, height, weight, muscle, proportions.

Age in years maps to Anny's age parameter through anny's own morphological-age calibration, and
height, weight, muscle and proportions are drawn from anny's age-conditional Beta distributions
(fitted by anny to WHO data), with numpy's seeded generator so that a seed always gives the same body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paths import configure_third_party_caches

AGE_RANGE_YEARS = (20.0, 75.0)
# anny's Beta tails reach skeletal and extremely obese bodies; the benchmark wants the common range
SHAPE_CLIP = (0.1, 0.9)


@dataclass(frozen=True)
class Phenotype:
    """Anny phenotype parameters (each in [0, 1]) and the drawn age and sex."""

    sex: str  # "female" | "male"
    age_years: float
    params: dict[str, float]  # gender, age, muscle, weight, height, proportions


def _age_parameter(age_years: float) -> float:
    configure_third_party_caches()
    import torch
    from anny.paths import get_anny_root_dir
    from anny.shape_distribution import MorphologicalAgeMapping

    state = torch.load(
        get_anny_root_dir() / "data" / "shape_calibration" / "boys.pth", weights_only=True, map_location="cpu"
    )
    mapping = MorphologicalAgeMapping()
    mapping.load_state_dict(state["morphological_age_mapping"])
    return float(mapping.morphological_to_anny_age(torch.tensor([age_years], dtype=torch.float64))[0])


def _beta_parameters(sex: str, anny_age: float) -> dict[str, tuple[float, float]]:
    """(alpha, beta) of anny's Beta distributions of height, weight, muscle and proportions at this age."""
    import torch
    from anny.paths import get_anny_root_dir
    from anny.shape_distribution import ConditionalHeightDistribution

    state = torch.load(
        get_anny_root_dir() / "data" / "shape_calibration" / ("girls.pth" if sex == "female" else "boys.pth"),
        weights_only=True,
        map_location="cpu",
    )
    out = {}
    for name in ("height", "weight", "muscle", "proportions"):
        distribution = ConditionalHeightDistribution()  # all four share this parametrisation
        distribution.load_state_dict(state[f"conditional_{name}_distribution"])
        alpha, beta = distribution.get_distribution_params(torch.tensor([anny_age], dtype=torch.float64))
        out[name] = (float(alpha[0]), float(beta[0]))
    return out


def sample_phenotype(body_seed: int) -> Phenotype:
    """A reproducible adult phenotype for ``body_seed``."""
    rng = np.random.default_rng([body_seed, 1])
    sex = "female" if rng.random() < 0.5 else "male"
    age_years = float(rng.uniform(*AGE_RANGE_YEARS))
    anny_age = _age_parameter(age_years)
    params = {"gender": 1.0 if sex == "female" else 0.0, "age": anny_age}
    for name, (alpha, beta) in _beta_parameters(sex, anny_age).items():
        params[name] = float(np.clip(rng.beta(alpha, beta), *SHAPE_CLIP))
    return Phenotype(sex=sex, age_years=age_years, params=params)
