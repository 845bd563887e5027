"""The report's headline values and where each stands against its normative band (the sidebar's rows).

:data:`BANDS` is the one table of bands (REFERENCES.md section 1 and 3). Only bands backed by a
verified source are given; a metric without one reads "no band" rather than being compared to a
number nobody checked (REFERENCES.md marks the Crosbie 1997 and Cury 2021 tables as not retrieved).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """Inclusive [low, high] (either may be None: open-ended) and where it comes from."""

    low: float | None
    high: float | None
    source: str

    def flag(self, value: float) -> str:
        """ "below", "above" or "within"."""
        if self.low is not None and value < self.low:
            return "below"
        if self.high is not None and value > self.high:
            return "above"
        return "within"


SYMMETRY_CUTOFF_PCT = 10.0  # the customary (and arbitrary) cut-off of |SI| (REFERENCES.md section 3)
# Verified population ranges (REFERENCES.md section 1), degrees: mean, SD, source. Pelvic obliquity
# at comfortable speed, Smith, Lelas & Kerrigan 2002 (n = 120): women 9.4 +- 3.5, men 7.4 +- 3.4
# (the mean of both here). No verified norm exists in REFERENCES.md for the other planes.
NORMATIVE_ROM_DEG: dict[str, tuple[float, float, str]] = {
    "metrics.pelvic_range_deg.obliquity": (8.4, 3.5, "Smith et al. 2002"),
}
_ROBINSON = f"|SI| <= {SYMMETRY_CUTOFF_PCT:.0f}%: the customary (and arbitrary) cut-off (Robinson 1987)"
# Normal adult walking. Speed: the mean slow-pace and fast-pace speeds of a meta-analysis of 35
# studies, 14,015 healthy adults (Murtagh et al. 2020, Sports Med 51:125-141: slow 0.82, usual
# 1.31, fast 1.72 m/s). Cadence: the review's ranges of normal walking cadence in the laboratory
# over the lifespan, 96-138 steps/min for women and 81-135 for men (Tudor-Locke & Rowe 2012,
# Sports Med 42:381-398), both sexes together.
WALKING_SPEED_BAND_M_S = (0.82, 1.72)
CADENCE_BAND_STEPS_PER_MIN = (81.0, 138.0)
# Keys are report.json paths (section 10), joined with ".". Population ranges span mean +- 2 SD.
BANDS: dict[str, Band] = {
    **{
        key: Band(mean - 2 * sd, mean + 2 * sd, f"{source}: {mean} +- {sd} deg (band mean +- 2 SD)")
        for key, (mean, sd, source) in NORMATIVE_ROM_DEG.items()
    },
    "metrics.symmetry_index_pct.lateral_bending": Band(0.0, SYMMETRY_CUTOFF_PCT, _ROBINSON),
    "metrics.symmetry_index_pct.axial_rotation": Band(0.0, SYMMETRY_CUTOFF_PCT, _ROBINSON),
    "metrics.symmetry_index_pct.spinal": Band(0.0, SYMMETRY_CUTOFF_PCT, _ROBINSON),
    "metrics.gait.walking_speed_m_s": Band(
        *WALKING_SPEED_BAND_M_S, "slow to fast pace of healthy adults (Murtagh et al. 2020)"
    ),
    "metrics.gait.cadence_steps_per_min": Band(
        *CADENCE_BAND_STEPS_PER_MIN, "normal walking cadence, adults of all ages (Tudor-Locke & Rowe 2012)"
    ),
    "metrics.gait.symmetry_index_pct.step_time": Band(0.0, SYMMETRY_CUTOFF_PCT, _ROBINSON),
    "metrics.gait.symmetry_index_pct.step_length": Band(0.0, SYMMETRY_CUTOFF_PCT, _ROBINSON),
    "metrics.cycles.count": Band(1.0, None, "at least one complete gait cycle (else the whole clip is used)"),
    # The pipeline bridges short gaps; below 90% of frames the motion is mostly bridged (project threshold).
    "quality.frames_with_person": Band(0.9, None, "project threshold: subject seen in >= 90% of frames"),
}


@dataclass(frozen=True)
class MetricRow:
    """One sidebar row: ``key`` (report path), ``label``, ``value`` (and ``sd`` for mean +- SD
    rows), ``unit``, ``flag`` ("within", "below", "above" or "no band"), ``text`` as shown."""

    key: str
    label: str
    value: float
    sd: float | None
    unit: str
    flag: str
    text: str


# (report path, label, unit, has SD); the path of a mean +- SD entry points at its dict.
ROWS: tuple[tuple[str, str, str, bool], ...] = (
    ("metrics.lumbar_rom_deg.sagittal", "Lumbar ROM sagittal", "deg", True),
    ("metrics.lumbar_rom_deg.frontal", "Lumbar ROM frontal", "deg", True),
    ("metrics.lumbar_rom_deg.transverse", "Lumbar ROM transverse", "deg", True),
    ("metrics.pelvic_range_deg.tilt", "Pelvic tilt range", "deg", True),
    ("metrics.pelvic_range_deg.obliquity", "Pelvic obliquity range", "deg", True),
    ("metrics.pelvic_range_deg.rotation", "Pelvic rotation range", "deg", True),
    ("metrics.symmetry_index_pct.lateral_bending", "Symmetry index, lateral bending", "%", False),
    ("metrics.symmetry_index_pct.axial_rotation", "Symmetry index, axial rotation", "%", False),
    ("metrics.symmetry_index_pct.spinal", "Spinal symmetry index", "%", False),
    ("metrics.gait.walking_speed_m_s", "Walking speed", "m/s", False),
    ("metrics.gait.stride_length_m", "Stride length", "m", True),
    ("metrics.gait.cadence_steps_per_min", "Cadence", "steps/min", False),
    ("metrics.gait.symmetry_index_pct.step_time", "Symmetry index, step time", "%", False),
    ("metrics.gait.symmetry_index_pct.step_length", "Symmetry index, step length", "%", False),
    ("metrics.coordination_deg.transverse", "Thorax-pelvis phase, transverse", "deg", True),
    ("metrics.coordination_deg.frontal", "Thorax-pelvis phase, frontal", "deg", True),
    ("metrics.cycles.count", "Gait cycles", "", False),
    ("spine_morphology.lumbar_lordosis_deg", "Lumbar lordosis", "deg", False),
    ("spine_morphology.thoracic_kyphosis_deg", "Thoracic kyphosis", "deg", False),
    ("quality.silhouette_iou", "Silhouette IoU", "", False),
    ("quality.mask_psnr_db", "Mask PSNR", "dB", False),
    ("quality.reprojection_px", "Reprojection error", "px", False),
    ("quality.frames_with_person", "Frames with the subject", "", False),
)


SCALE_NOTES = {"subject_height": "scaled by the subject's height", "fitted_shape": "fitted body's scale"}

# The anatomical planes each angle row is measured in (the symmetry indices: lateral bending is
# frontal, axial rotation transverse); a row whose planes the clip's view does not show says so.
ROW_PLANES = {
    "metrics.lumbar_rom_deg.sagittal": ("sagittal",),
    "metrics.lumbar_rom_deg.frontal": ("frontal",),
    "metrics.lumbar_rom_deg.transverse": ("transverse",),
    "metrics.pelvic_range_deg.tilt": ("sagittal",),
    "metrics.pelvic_range_deg.obliquity": ("frontal",),
    "metrics.pelvic_range_deg.rotation": ("transverse",),
    "metrics.symmetry_index_pct.lateral_bending": ("frontal",),
    "metrics.symmetry_index_pct.axial_rotation": ("transverse",),
    "metrics.symmetry_index_pct.spinal": ("frontal", "transverse"),
    "metrics.coordination_deg.transverse": ("transverse",),
    "metrics.coordination_deg.frontal": ("frontal",),
}


def _lookup(report: dict, key: str):
    value = report
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def report_rows(report: dict) -> list[MetricRow]:
    """The rows of :data:`ROWS` that ``report`` (report.json's content) holds, flagged by :data:`BANDS`."""
    rows = []
    for key, label, unit, has_sd in ROWS:
        entry = _lookup(report, key)
        if entry is None or (has_sd and entry["mean"] is None):  # e.g. no complete stride
            continue
        value = float(entry["mean"] if has_sd else entry)
        sd = float(entry["sd"]) if has_sd else None
        band = BANDS.get(key)
        flag = band.flag(value) if band else "no band"
        number = f"{value:.0f}" if key == "metrics.cycles.count" else f"{value:.2f}"
        text = f"{number} +- {sd:.2f}" if sd is not None else number
        if key == "metrics.cycles.count" and _lookup(report, "metrics.cycles.source") == "whole_clip":
            text += " (whole clip used)"
        text = f"{text} {unit}".strip()
        if key == "metrics.gait.walking_speed_m_s":
            scale = _lookup(report, "metrics.gait.scale.source")
            text += f" ({SCALE_NOTES.get(scale, scale)})"
        if (
            key.startswith("spine_morphology.")
            and _lookup(report, "spine_morphology.source") == "body_surface"
        ):
            rejected = _lookup(report, "spine_morphology.rejected_mask_reading") is not None
            text += (
                f" (the fitted body's back: {'the mask read no back' if rejected else 'not seen in profile'})"
            )
        view = _lookup(report, "view")
        if view is not None and not set(ROW_PLANES.get(key, ())) <= set(view["planes_shown"]):
            text += f" (not seen in this {view['kind']} view)"
        rows.append(MetricRow(key, label, value, sd, unit, flag, text))
    return rows
