"""The extension zip: built with Blender's own tool, installed and registered as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import build_addon
import hmn_blender_addon

REPO_ROOT = Path(__file__).resolve().parents[1]


def members(package: Path) -> dict[str, int]:
    with zipfile.ZipFile(package) as archive:
        return {info.filename: info.CRC for info in archive.infolist()}


def test_zip_holds_the_addon_and_only_the_needed_wheels(built_zip):
    names = members(built_zip)
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "hmn_blender_addon/cli.py" in names and "operators/environment.py" in names
    assert not any(name.startswith("tests/") or "__pycache__" in name for name in names)
    wheels = sorted(name.split("/")[1].split("-")[0].lower() for name in names if name.startswith("wheels/"))
    assert "mediapipe" in wheels and "torch" in wheels and "opencv_contrib_python" in wheels
    assert not {"jax", "jaxlib", "numpy", "bpy", "anny"} & set(wheels)
    with zipfile.ZipFile(built_zip) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == ["linux-x64"]
    assert manifest["permissions"] == {"files": manifest["permissions"]["files"]}
    assert len(manifest["wheels"]) == len(build_addon.RUNTIME_WHEELS)


def test_versions_agree_everywhere():
    manifest = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert manifest["version"] == project["project"]["version"] == hmn_blender_addon.__version__


def test_building_twice_gives_the_same_contents(built_zip, tmp_path):
    assert build_addon.main(["--out", str(tmp_path), "--offline"]) == 0
    (again,) = tmp_path.glob("*.zip")
    assert members(again) == members(built_zip)


def test_installs_enables_and_disables_in_headless_blender(built_zip, bpy_only_sandbox, tmp_path):
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user")}
    script = REPO_ROOT / "tests" / "blender_scripts" / "install_extension.py"
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(built_zip), str(bpy_only_sandbox)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    seen = json.loads(lines[0][len("RESULT ") :])
    assert seen["install"] == ["FINISHED"] and seen["enabled"]
    assert seen["operators"] == ["HMN_OT_check_environment", "HMN_OT_open_cache_folder"]
    assert seen["panel"] == ["VIEW_3D", "UI", "HumanMoveNet"]
    assert seen["preferences"] == ["cache_dir", "smpl_model_dir"]
    assert seen["check_environment"] == ["FINISHED"]
    extension_site = str(tmp_path / "blender_user" / "extensions" / ".local")
    for name in ("torch", "mediapipe", "cv2", "scipy", "smplx", "matplotlib"):
        assert seen["origins"][name].startswith(extension_site), (name, seen["origins"][name])
    assert seen["origins"]["jax"] is None
    assert seen["pose_on_blank_frame"] is True and seen["torch_sum"] == 6.0
    assert seen["after_disable"] == {"enabled": False, "operator": False, "panel": False}


def copy_wheels(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels" / "linux-x64"
    shutil.copytree(REPO_ROOT / "wheels" / "linux-x64", wheels, copy_function=os.link)
    return wheels.parent


def test_a_corrupt_wheel_stops_the_build_naming_it(built_zip, tmp_path, capsys):
    wheels = copy_wheels(tmp_path)
    (victim,) = (wheels / "linux-x64").glob("tqdm-*.whl")
    data = victim.read_bytes()
    victim.unlink()  # the copy is a hard link: replace it, never write through it
    victim.write_bytes(data[: len(data) // 2])
    code = build_addon.main(["--out", str(tmp_path / "out"), "--offline", "--wheels-dir", str(wheels)])
    assert code == 1
    assert capsys.readouterr().err.strip().startswith(f"build_addon: error: {victim}: corrupt wheel")
    assert not (tmp_path / "out").exists()


def test_a_missing_wheel_stops_an_offline_build_naming_it(built_zip, tmp_path, capsys):
    wheels = copy_wheels(tmp_path)
    (victim,) = (wheels / "linux-x64").glob("smplx-*.whl")
    victim.unlink()
    code = build_addon.main(["--out", str(tmp_path / "out"), "--offline", "--wheels-dir", str(wheels)])
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert message == (
        f"build_addon: error: {wheels / 'linux-x64'}: missing wheels for smplx==0.1.28"
        " (run without --offline to download them)"
    )
