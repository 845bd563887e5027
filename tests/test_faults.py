"""Faults and bad input: each gives one exact line naming the input and the problem, and leaves the
output folder as it was (no partial file, no staging folder); the clips that a phone really makes
(rotated, variable frame rate, odd paths, two people, a subject who walks out) work.

Clips are derived from one shared 40-frame clip of the sample walker (tests/faults_clips.py), so
most faults fail within a second, before the fit; the rest reuse its cached keypoints and fit.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from faults_clips import QUICK, background, sample_frames, short_clip_fixture, write_frames  # noqa: F401
from test_video import box_chain, set_frame_durations, set_rotation_tag

from hmn_blender_addon import cache, pipeline
from hmn_blender_addon.body.model import load_body_model
from hmn_blender_addon.errors import HMNError
from hmn_blender_addon.fitting import FitSettings, fit_settings_key
from hmn_blender_addon.keypoints import extract_keypoints, keypoints_settings
from hmn_blender_addon.pipeline import RunSettings, run
from hmn_blender_addon.report import flatten
from hmn_blender_addon.temporal.model import DEFAULT_WEIGHTS
from hmn_blender_addon.temporal.smooth import smooth_motion

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = str(REPO_ROOT / "hmn_blender_addon")


def tree(folder: Path) -> list[str]:
    """Everything below ``folder`` (hidden staging folders and .part files included)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def out(tmp_path) -> Path:
    """An output folder that already holds earlier work, which a failed run must leave alone."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("earlier work")
    return folder


def expect_failure(video: Path, out: Path, message: str, settings: RunSettings = QUICK) -> None:
    before = tree(out)
    with pytest.raises(HMNError) as raised:
        run(video, out, settings)
    assert str(raised.value) == message
    assert tree(out) == before


@pytest.fixture(scope="module")
def clip_run(short_clip, tmp_path_factory):
    """A successful run of the shared clip: warms the keypoints and fit caches for the others."""
    return run(short_clip, tmp_path_factory.mktemp("reference") / "out", QUICK)


# ---------------------------------------------------------------- files that are not usable clips


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes((3000 * np.sin(np.arange(16000) / 5.0)).astype("<i2").tobytes())
    return path


def _image(path: Path, extension: str) -> Path:
    path.write_bytes(cv2.imencode(extension, sample_frames()[0])[1].tobytes())
    return path


def _frames_destroyed(path: Path, clip: Path) -> Path:
    data = bytearray(clip.read_bytes())
    offset, size = box_chain(data, ["mdat"])[0]
    data[offset + 8 : offset + size] = bytes(size - 8)  # the index survives, every frame is zeros
    path.write_bytes(bytes(data))
    return path


def _file_faults(folder: Path, clip: Path) -> dict[str, tuple[Path, str]]:
    frames = sample_frames()
    data = clip.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])  # a copy cut short: the index (moov) is at the end
    text = folder / "notes.mp4"
    text.write_text("patient 12, left knee\n")
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    not_a_video = "not a video file (no decoder could open it)"
    still = "not a video (no frame count or frame rate: a still image or unknown format)"
    return {
        "missing": (folder / "missing.mp4", "file not found"),
        "zero_byte": (empty, "empty file (0 bytes)"),
        "truncated": (truncated, not_a_video),
        "text_renamed": (text, not_a_video),
        "png_renamed": (_image(folder / "photo.mp4", ".png"), still),
        "jpeg_renamed": (_image(folder / "snapshot.mp4", ".jpg"), still),
        # a WAV in an .mp4 / .avi name: OpenCV's FFmpeg backend opens no audio-only file
        "audio_only_mp4": (_wav(folder / "voice.mp4"), not_a_video),
        "audio_only_avi": (_wav(folder / "voice.avi"), not_a_video),
        "one_frame": (
            write_frames(folder / "one.mp4", frames[:1]),
            "clip too short: 0.03 s (at least 1 s is needed)",
        ),
        "under_one_second": (
            write_frames(folder / "short.mp4", frames[:20]),
            "clip too short: 0.67 s (at least 1 s is needed)",
        ),
        "folder": (folder, "is a folder, not a video file"),
        "frames_destroyed": (_frames_destroyed(folder / "zeroed.mp4", clip), "no decodable frames"),
    }


FILE_FAULTS = [
    "missing",
    "zero_byte",
    "truncated",
    "text_renamed",
    "png_renamed",
    "jpeg_renamed",
    "audio_only_mp4",
    "audio_only_avi",
    "one_frame",
    "under_one_second",
    "folder",
    "frames_destroyed",
]


@pytest.mark.parametrize("kind", FILE_FAULTS)
def test_a_file_that_is_not_a_usable_clip_fails_fast(kind, tmp_path, out, short_clip):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    video, problem = _file_faults(inputs, short_clip)[kind]
    started = time.perf_counter()
    expect_failure(video, out, f"{video}: {problem}")
    assert time.perf_counter() - started < 5.0  # before the body model and the fit


def test_a_failed_run_leaves_no_folder_it_created(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(HMNError, match="file not found"):
        run(missing, tmp_path / "new" / "out", QUICK)
    assert tree(tmp_path) == []


# ---------------------------------------------------------------- clips without a usable subject


def _shrunk(frame: np.ndarray, factor: int) -> np.ndarray:
    """The frame scaled down by ``factor`` and pasted in the middle of an edge-padded frame."""
    height, width = frame.shape[:2]
    small = cv2.resize(frame, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    pad_y, pad_x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    return np.pad(
        small,
        ((pad_y, height - small.shape[0] - pad_y), (pad_x, width - small.shape[1] - pad_x), (0, 0)),
        "edge",
    )


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("no_person", "no walking person found in 40 of 40 frames (more than half)"),
        ("person_leaves_early", "no walking person found in 28 of 40 frames (more than half)"),
        ("tiny_person", "no walking person found in 40 of 40 frames (more than half)"),
        ("extreme_resolution", "no walking person found in 40 of 40 frames (more than half)"),
    ],
)
def test_a_clip_without_a_walking_subject_names_the_missing_frames(kind, problem, tmp_path, out):
    frames, empty = sample_frames(), background()
    made = {
        "no_person": lambda: [empty] * len(frames),
        "person_leaves_early": lambda: frames[:12] + [empty] * 28,
        "tiny_person": lambda: [_shrunk(f, 8) for f in frames],
        "extreme_resolution": lambda: [
            cv2.resize(f, (4096, 16), interpolation=cv2.INTER_AREA) for f in frames
        ],
    }[kind]()
    video = write_frames(tmp_path / f"{kind}.mp4", made)
    expect_failure(video, out, f"{video}: {problem}")


# ---------------------------------------------------------------- clips that must work


def _hips(keypoints) -> np.ndarray:
    """(T, 2) image position of the left hip landmark (23), NaN where the subject is absent."""
    return keypoints.landmarks_px[:, 23, :2]


def test_a_subject_who_walks_out_late_is_kept_where_present(tmp_path, clip_run):
    frames = sample_frames()
    video = write_frames(tmp_path / "walks_out.mp4", frames[:30] + [background()] * 12)
    keypoints = extract_keypoints(video)
    assert keypoints.present[:30].all() and not keypoints.present[-8:].any()


def test_of_two_people_one_is_followed_throughout(tmp_path, short_clip, clip_run):
    """A second walker 300 px behind the first: the subject is one of them in every frame."""
    frames, empty = sample_frames(), background()

    def two(frame: np.ndarray) -> np.ndarray:
        person = np.roll(np.abs(frame.astype(int) - empty).sum(-1) > 40, 300, axis=1)
        out = frame.copy()
        out[person] = np.roll(frame, 300, axis=1)[person]
        return out

    keypoints = extract_keypoints(write_frames(tmp_path / "two.mp4", [two(f) for f in frames]))
    alone = _hips(extract_keypoints(short_clip))
    offsets = _hips(keypoints)[:, 0] - alone[:, 0]
    assert keypoints.present.mean() > 0.9
    present = keypoints.present & np.isfinite(offsets)
    assert np.all(np.abs(offsets[present]) < 10) or np.all(np.abs(offsets[present] - 300) < 10)


def test_a_variable_frame_rate_clip_keeps_its_timestamps(tmp_path, clip_run):
    video = write_frames(tmp_path / "vfr.mp4", sample_frames())
    set_frame_durations(video, [(20, 512), (20, 1024)])  # mp4v's timescale: 512 ticks = 1/30 s
    keypoints = extract_keypoints(video)
    steps = np.diff(keypoints.times_s)
    assert steps[:19] == pytest.approx(1 / 30, abs=1e-3)
    assert steps[20:] == pytest.approx(1 / 15, abs=1e-3)
    assert keypoints.present.mean() > 0.9


def test_a_rotated_phone_clip_runs_upright(tmp_path, short_clip, clip_run):
    """Frames stored sideways with a 90 degree display matrix, as phones write them."""
    video = write_frames(tmp_path / "phone.mp4", [np.ascontiguousarray(np.rot90(f)) for f in sample_frames()])
    set_rotation_tag(video, 90)
    result = run(video, tmp_path / "out", QUICK)
    assert (result.report["video"]["width"], result.report["video"]["height"]) == (640, 480)
    upright, original = _hips(extract_keypoints(video)), _hips(extract_keypoints(short_clip))
    assert np.nanmax(np.abs(upright - original)) < 4.0  # the same landmarks, in the same upright pixels


def test_non_ascii_and_space_paths_work(tmp_path, short_clip, clip_run):
    folder = tmp_path / "Pacientes año 2024" / "Zoë Müller"
    folder.mkdir(parents=True)
    video = folder / "marcha lenta 1 — ß.mp4"
    shutil.copy(short_clip, video)
    result = run(video, folder / "résultats d'analyse", QUICK)
    assert result.report_path.is_file() and result.reconstruction_path.is_file()
    assert result.report["metrics"] == clip_run.report["metrics"]


# ---------------------------------------------------------------- output folder and disk


def test_an_output_folder_that_is_a_file(tmp_path, short_clip):
    target = tmp_path / "out"
    target.write_text("a file")
    with pytest.raises(HMNError) as raised:
        run(short_clip, target, QUICK)
    assert str(raised.value) == f"{target}: the output folder is a file"
    assert target.read_text() == "a file"


def test_an_output_folder_below_a_file(tmp_path, short_clip):
    (tmp_path / "report").write_text("a file")
    target = tmp_path / "report" / "out"
    with pytest.raises(HMNError) as raised:
        run(short_clip, target, QUICK)
    assert str(raised.value) == f"{target}: cannot write to the output folder (Not a directory)"
    assert tree(tmp_path) == ["report"]


def test_an_unwritable_output_folder(out, short_clip, monkeypatch):
    """Permissions do not stop root (these tests may run as root): the refusal is simulated."""

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(pipeline.tempfile, "mkdtemp", refuse)
    expect_failure(short_clip, out, f"{out}: cannot write to the output folder (Permission denied)")


def test_a_full_disk_names_the_file_and_leaves_nothing(out, short_clip, clip_run, monkeypatch):
    def fill_disk(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez_compressed", fill_disk)
    expect_failure(
        short_clip, out, f"{out / 'reconstruction.npz'}: cannot write the file (No space left on device)"
    )


def test_a_cache_folder_that_is_a_file(out, short_clip, tmp_path, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    monkeypatch.setenv("HMN_CACHE_DIR", str(blocked))
    message = f"{blocked}: cannot create the cache folder (File exists); set HMN_CACHE_DIR"
    expect_failure(short_clip, out, message)


# ---------------------------------------------------------------- caches


def test_a_corrupt_fit_cache_entry_is_rebuilt(tmp_path, short_clip, clip_run):
    quick = RunSettings(smoother="butterworth", write_blend=False, fit=FitSettings(iterations=5))
    first = run(short_clip, tmp_path / "first", quick)
    fit = FitSettings(**{**quick.fit.__dict__, "focal_px": None})
    settings = {
        "keypoints": keypoints_settings(960),
        "fit": fit_settings_key(fit, load_body_model("open"), None),
    }
    key = cache.stage_key("fit", cache.video_hash(short_clip), settings)
    entry = cache.stage_path("fit", key)
    entry.write_bytes(entry.read_bytes()[:500])  # a crash mid-copy, a bad sector
    rebuilt = run(short_clip, tmp_path / "second", quick)
    # the same numbers up to float32 rounding (after other tests' imports the rebuilt fit has
    # differed in the sixth digit, the cause not found)
    (keys, values), (first_keys, first_values) = (
        zip(*flatten(result.report["metrics"]), strict=True) for result in (rebuilt, first)
    )
    assert keys == first_keys
    assert list(values) == [pytest.approx(v, rel=1e-4) if isinstance(v, float) else v for v in first_values]
    assert cache.load_stage("fit", key) is not None  # written again, complete


def test_a_tampered_keypoints_cache_entry_is_not_trusted(short_clip, clip_run):
    key = cache.stage_key("keypoints", cache.video_hash(short_clip), keypoints_settings(960))
    path = cache.stage_path("keypoints", key)
    original = extract_keypoints(short_clip)
    with np.load(path) as entry:
        arrays = {name: entry[name] for name in entry.files}
    arrays["landmarks_px"] = arrays["landmarks_px"] + 50.0  # shifted, its digest left as it was
    np.savez(path, **arrays)
    rebuilt = extract_keypoints(short_clip)
    np.testing.assert_array_equal(rebuilt.landmarks_px, original.landmarks_px)
    assert cache.load_stage("keypoints", key) is not None


# ---------------------------------------------------------------- body model and smoother weights


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _body_faults(folder: Path) -> dict[str, tuple[Path, str]]:
    truncated = folder / "SMPL_NEUTRAL.pkl"
    truncated.write_bytes(pickle.dumps({"v_template": np.zeros((6890, 3))}, protocol=2)[:200])
    crafted = folder / "SMPL_CRAFTED.pkl"
    crafted.write_bytes(pickle.dumps({"v_template": _RunsCode()}, protocol=2))
    small = folder / "small.npz"
    np.savez(small, v_template=np.zeros((100, 3)), f=np.zeros((10, 3), np.int32))
    return {
        "truncated": (truncated, "the file is truncated or damaged (the pickle ends early)"),
        "runs_code": (
            crafted,
            "refused: the pickle asks for posix.system, which an SMPL model file never contains "
            "(it could run code); nothing was executed",
        ),
        "wrong_shape": (small, "its template has 100 vertices, an SMPL body has 6890"),
        "missing": (folder / "models", "no such SMPL model file or folder"),
    }


@pytest.mark.parametrize("kind", ["truncated", "runs_code", "wrong_shape", "missing"])
def test_a_corrupt_or_crafted_body_model(kind, tmp_path, out, short_clip, clip_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, problem = _body_faults(tmp_path)[kind]
    settings = RunSettings(body="smpl", smpl_model=str(path), smoother="butterworth", write_blend=False)
    expect_failure(short_clip, out, f"{path}: {problem}", settings)
    assert not (tmp_path / "pwned").exists()


def _smoother_input() -> tuple[np.ndarray, np.ndarray]:
    rotations = np.random.default_rng(0).normal(0, 0.1, (40, 24, 3))
    return rotations, np.zeros((40, 3))


def test_corrupt_smoother_weights(tmp_path):
    broken = tmp_path / "weights.safetensors"
    broken.write_bytes(DEFAULT_WEIGHTS.read_bytes()[:64])
    with pytest.raises(HMNError) as raised:
        smooth_motion(*_smoother_input(), 30.0, "gcn_lstm", weights=broken)
    message = str(raised.value)
    assert message.startswith(f"{broken}: not a readable temporal-model weight file (SafetensorError: ")
    assert "\n" not in message


def test_smoother_weights_of_another_model(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as handle:
        metadata = handle.metadata()
    crafted = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(crafted), metadata=metadata)
    with pytest.raises(HMNError) as raised:
        smooth_motion(*_smoother_input(), 30.0, "gcn_lstm", weights=crafted)
    message = str(raised.value)
    assert message.startswith(f"{crafted}: weights do not match the temporal model (Error(s) in loading")
    assert "\n" not in message


def test_a_negative_focal_length(out, short_clip, clip_run):
    settings = RunSettings(focal_px=-5.0, smoother="butterworth", write_blend=False, fit=QUICK.fit)
    expect_failure(short_clip, out, "--focal-px: must be positive, got -5.0", settings)


# ---------------------------------------------------------------- interruption and cancellation


class _InterruptAtCall:
    """A trace function that counts calls into the package and interrupts the ``at``-th
    (KeyboardInterrupt, as Ctrl-C would at that point); ``at=None`` only counts."""

    def __init__(self, at: int | None = None) -> None:
        self.at, self.calls = at, 0

    def __call__(self, frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(PACKAGE_DIR):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
        return None

    def run(self, *args) -> None:
        sys.settrace(self)
        try:
            run(*args)
        finally:
            sys.settrace(None)


def test_interrupting_at_20_random_points_leaves_nothing(out, short_clip, clip_run):
    """Anywhere in the package's code, not only at progress reports (those are cancellation's)."""
    counter = _InterruptAtCall()
    counter.run(short_clip, out.parent / "counted", QUICK)
    before, parts_before = tree(out), _cache_parts()
    for point in sorted(random.Random(10).sample(range(1, counter.calls), 20)):
        with pytest.raises(KeyboardInterrupt):
            _InterruptAtCall(point).run(short_clip, out, QUICK)
        assert tree(out) == before, f"interrupted at call {point} of {counter.calls}"
    assert _cache_parts() == parts_before


def _cache_parts() -> list[Path]:
    return sorted(cache.cache_dir().joinpath("stages").rglob("*.part*"))


QUICK_CLI = """
import dataclasses, sys
from hmn_blender_addon import cli, pipeline
from hmn_blender_addon.fitting import FitSettings
made = pipeline._settings_from_args
pipeline._settings_from_args = lambda args: dataclasses.replace(made(args), fit=FitSettings(iterations=60))
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigint_mid_run_then_rerun(tmp_path, short_clip, clip_run):
    out = tmp_path / "work" / "out"
    command = [sys.executable, "-c", QUICK_CLI, "--quiet", "run", str(short_clip), "--out", str(out)]
    command += ["--smoother", "butterworth", "--no-blend"]
    # an empty stage cache: keypoints and fit must run, so the run has seconds left when its
    # staging folder appears, however loaded the machine
    env = {**os.environ, "HMN_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not any(out.glob(".hmn-run-*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "hmn: interrupted"
    assert tree(tmp_path / "work") == []
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert tree(out) == tree(clip_run.out_dir)


def test_the_command_line_exits_2_with_one_line(tmp_path, short_clip):
    """A representative subset through ``hmn`` itself, run side by side."""
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    afile = tmp_path / "afile"
    afile.write_text("x")
    empty_model = tmp_path / "SMPL_NEUTRAL.pkl"
    empty_model.write_bytes(b"")
    cases = {
        "missing": (["run", str(tmp_path / "gone.mp4")], f"{tmp_path / 'gone.mp4'}: file not found"),
        "text": (["run", str(text)], f"{text}: not a video file (no decoder could open it)"),
        "out_is_file": (
            ["run", str(short_clip), "--out", str(afile)],
            f"{afile}: the output folder is a file",
        ),
        "empty_model": (
            ["run", str(short_clip), "--body", "smpl", "--smpl-model", str(empty_model)],
            f"{empty_model}: the SMPL model file is empty",
        ),
    }
    processes = {}
    for name, (args, _) in cases.items():
        extra = [] if "--out" in args else ["--out", str(tmp_path / f"out_{name}")]
        command = [sys.executable, "-c", QUICK_CLI, "--quiet", *args, *extra, "--smoother", "butterworth"]
        processes[name] = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, (name, stderr)
        assert stderr.strip().splitlines()[-1] == f"hmn: error: {cases[name][1]}"
        assert not (tmp_path / f"out_{name}").exists()
