"""The bpy-free parts of the Blender experience: the panel's rows and bands, the .mot text, the camera."""

from __future__ import annotations

import numpy as np
import pytest

from hmn_blender_addon.export import mot_text, report_csv_text
from hmn_blender_addon.normative import BANDS, report_rows


def report(obliquity: float, spinal_si: float, cycles: int, source: str = "heel_strikes") -> dict:
    summary = {"mean": 0.0, "sd": 0.0, "per_cycle": [0.0]}
    return {
        "metrics": {
            "cycles": {"count": cycles, "source": source},
            "pelvic_range_deg": {"obliquity": {"mean": obliquity, "sd": 1.25, "per_cycle": [obliquity]}},
            "lumbar_rom_deg": {"sagittal": summary},
            "symmetry_index_pct": {
                "lateral_bending": 3.0,
                "axial_rotation": 2.0 * spinal_si - 3.0,
                "spinal": spinal_si,
            },
        },
        "quality": {"frames_with_person": 0.85},
    }


def test_rows_are_flagged_against_smiths_band_and_robinsons_cut_off():
    # Smith 2002: 8.4 +- 3.5 deg -> band [1.4, 15.4]; SI cut-off 10%.
    assert (
        BANDS["metrics.pelvic_range_deg.obliquity"].low,
        BANDS["metrics.pelvic_range_deg.obliquity"].high,
    ) == (
        pytest.approx(1.4),
        pytest.approx(15.4),
    )
    rows = {row.key: row for row in report_rows(report(obliquity=16.0, spinal_si=9.5, cycles=2))}
    assert rows["metrics.pelvic_range_deg.obliquity"].flag == "above"
    assert rows["metrics.pelvic_range_deg.obliquity"].text == "16.00 +- 1.25 deg"
    assert rows["metrics.symmetry_index_pct.spinal"].flag == "within"
    assert rows["metrics.symmetry_index_pct.axial_rotation"].flag == "above"  # 16 %
    assert rows["metrics.lumbar_rom_deg.sagittal"].flag == "no band"
    assert rows["quality.frames_with_person"].flag == "below"
    assert "metrics.lumbar_rom_deg.frontal" not in rows  # absent from the report: no row


def test_rows_of_planes_the_view_does_not_show_say_so():
    side = report(8.0, 1.0, cycles=2) | {
        "view": {"azimuth_deg": 88.0, "kind": "side", "planes_shown": ["sagittal"]}
    }
    rows = {row.key: row for row in report_rows(side)}
    assert rows["metrics.lumbar_rom_deg.sagittal"].text == "0.00 +- 0.00 deg"
    assert rows["metrics.pelvic_range_deg.obliquity"].text == "8.00 +- 1.25 deg (not seen in this side view)"
    assert rows["metrics.symmetry_index_pct.spinal"].text == "1.00 % (not seen in this side view)"
    oblique = side | {
        "view": {"azimuth_deg": 45.0, "kind": "oblique", "planes_shown": ["frontal", "transverse"]}
    }
    rows = {row.key: row for row in report_rows(oblique)}
    assert rows["metrics.lumbar_rom_deg.sagittal"].text == "0.00 +- 0.00 deg (not seen in this oblique view)"
    assert [key for key, row in rows.items() if "not seen" in row.text] == ["metrics.lumbar_rom_deg.sagittal"]


def test_the_spine_profile_rows_say_where_it_came_from():
    profile = {"lumbar_lordosis_deg": 48.0, "thoracic_kyphosis_deg": 36.5, "source": "mask_contour"}
    rows = {row.key: row for row in report_rows(report(8.0, 1.0, 2) | {"spine_morphology": profile})}
    assert rows["spine_morphology.lumbar_lordosis_deg"].text == "48.00 deg"
    assert rows["spine_morphology.thoracic_kyphosis_deg"].flag == "no band"
    fallback = profile | {"source": "body_surface"}
    rows = {row.key: row for row in report_rows(report(8.0, 1.0, 2) | {"spine_morphology": fallback})}
    assert rows["spine_morphology.lumbar_lordosis_deg"].text.endswith(
        "(the fitted body's back: not seen in profile)"
    )
    rejected = fallback | {
        "rejected_mask_reading": {"lumbar_lordosis_deg": -30.0, "thoracic_kyphosis_deg": 12.7}
    }
    rows = {row.key: row for row in report_rows(report(8.0, 1.0, 2) | {"spine_morphology": rejected})}
    assert (
        rows["spine_morphology.thoracic_kyphosis_deg"].text
        == "36.50 deg (the fitted body's back: the mask read no back)"
    )


def test_a_clip_without_a_complete_cycle_says_so():
    rows = {row.key: row for row in report_rows(report(8.0, 1.0, cycles=0, source="whole_clip"))}
    cycles = rows["metrics.cycles.count"]
    assert (cycles.flag, cycles.text) == ("below", "0 (whole clip used)")
    assert rows["metrics.pelvic_range_deg.obliquity"].flag == "within"


def test_mot_text_is_an_opensim_storage_table():
    text = mot_text(
        np.array([0.0, 0.5]),
        {"pelvis_tilt": np.array([1.0, 2.5]), "lumbar_bending": np.array([-3.0, 4.0])},
        "walk",
    )
    assert text.splitlines() == [
        "walk",
        "version=1",
        "nRows=2",
        "nColumns=3",
        "inDegrees=yes",
        "endheader",
        "time\tpelvis_tilt\tlumbar_bending",
        "0.00000000\t1.00000000\t-3.00000000",
        "0.50000000\t2.50000000\t4.00000000",
    ]


def test_report_csv_has_one_row_per_number():
    lines = report_csv_text(
        {"metrics": {"cycles": {"count": 2}, "x": {"per_cycle": [1.5, 2.5]}}}
    ).splitlines()
    assert lines == [
        "key,value",
        "metrics.cycles.count,2",
        "metrics.x.per_cycle.1,1.5",
        "metrics.x.per_cycle.2,2.5",
    ]
