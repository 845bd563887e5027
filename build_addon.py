"""Build the installable HumanMoveNet extension zip with Blender's own extension tool.

    python build_addon.py                      # linux-x64 (this machine's platform)
    python build_addon.py --platform all       # one zip per platform the registry serves wheels for
    python build_addon.py --offline            # only wheels already in ./wheels (no registry access)

Steps: download the pinned runtime wheels per platform from the package registry (cached in
./wheels/<platform>/, verified: readable zip, CRCs, name and version), stage the extension
sources with those wheels listed in the manifest, run ``blender_ext.py build`` (with
``--split-platforms`` for several platforms) and ``blender_ext.py validate``, and print each
zip's path and size. The add-on then installs with no network. Exit status 1 with one line
naming the wheel or step on any failure.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
LOCK_FILE = ROOT / "requirements.lock"
MANIFEST = ROOT / "blender_manifest.toml"
# What goes into the extension besides the manifest and the wheels.
SOURCE_ITEMS = ("__init__.py", "hmn_blender_addon", "operators", "panels", "README.md")

# The import-time closure of what the add-on imports, found by importing each library from a
# folder holding only these wheels. numpy is not bundled: Blender ships it. mediapipe's declared
# jax, jaxlib, sounddevice and sentencepiece are not imported by `mediapipe.solutions.pose` (our
# only use), so they stay out (jax and jaxlib alone are about 90 MB); its drawing utilities
# import matplotlib, which the reports use anyway. torch imports sympy (and mpmath) at import.
RUNTIME_WHEELS: tuple[str, ...] = (
    "torch",
    "typing-extensions",
    "sympy",
    "mpmath",
    "smplx",
    "scipy",
    "tqdm",
    "mediapipe",
    "absl-py",
    "attrs",
    "flatbuffers",
    "protobuf",
    "opencv-contrib-python",
    "matplotlib",
    "contourpy",
    "cycler",
    "fonttools",
    "kiwisolver",
    "packaging",
    "pillow",
    "pyparsing",
    "python-dateutil",
)

# Blender platform -> pip platform tags. Only platforms for which every runtime wheel exists on
# the registry for CPython 3.11: torch 2.13 has no macOS x86_64 wheel, mediapipe 0.10.21 no
# Linux aarch64 wheel, and Windows on ARM has neither.
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_14_0_arm64", "macosx_11_0_arm64", "macosx_11_0_universal2"),
}


class BuildError(Exception):
    """A build failure; the message names the file or step and the problem."""


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str

    def for_platform(self, platform: str) -> str:
        # The local label "+cpu" names the CPU-only Linux torch build; other platforms' torch
        # wheels on the registry are CPU builds without a label.
        version = self.version if platform == "linux-x64" else self.version.split("+")[0]
        return f"{self.name}=={version}"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(lock_file: Path = LOCK_FILE) -> list[Requirement]:
    """The runtime wheels with their versions from the lock file (one source of truth)."""
    try:
        lines = lock_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BuildError(f"{lock_file}: cannot read the lock file ({exc.strerror})") from exc
    pins = {}
    for line in lines:
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split(";")[0].strip().split("==", 1)
            pins[normalise(name)] = version.strip()
    missing = [name for name in RUNTIME_WHEELS if normalise(name) not in pins]
    if missing:
        raise BuildError(f"{lock_file}: no pinned version for {', '.join(missing)}")
    return [Requirement(name, pins[normalise(name)]) for name in RUNTIME_WHEELS]


def wheel_identity(path: Path) -> tuple[str, str]:
    """(normalised name, version) of a wheel, read from its METADATA after checking every CRC."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
            if bad_member is not None:
                raise BuildError(f"{path}: corrupt wheel (bad CRC in {bad_member})")
            metadata_names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            if len(metadata_names) != 1:
                raise BuildError(f"{path}: not a wheel (no single .dist-info/METADATA)")
            metadata = email.parser.Parser().parsestr(archive.read(metadata_names[0]).decode("utf-8"))
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BuildError(f"{path}: corrupt wheel ({exc})") from exc
    return normalise(metadata["Name"]), metadata["Version"]


def find_wheel(folder: Path, requirement: Requirement, platform: str) -> Path | None:
    """The wheel for ``requirement`` in ``folder`` (verified), or None if there is none."""
    wanted_version = requirement.for_platform(platform).split("==")[1]
    prefix = normalise(requirement.name).replace("-", "_") + "-"
    for path in sorted(folder.glob("*.whl")):
        if normalise(path.name).replace("-", "_").startswith(prefix.replace("-", "_")) and (
            path.name.split("-")[1] == wanted_version
        ):
            name, version = wheel_identity(path)
            if name != normalise(requirement.name) or version != wanted_version:
                raise BuildError(
                    f"{path}: wheel holds {name} {version}, expected {requirement.name} {wanted_version}"
                )
            return path
    return None


def fetch_wheels(platform: str, wheels_dir: Path, offline: bool) -> list[Path]:
    """Verified wheels for every runtime requirement on ``platform``, downloading what is missing."""
    folder = wheels_dir / platform
    folder.mkdir(parents=True, exist_ok=True)
    requirements = pinned_requirements()
    missing = [r for r in requirements if find_wheel(folder, r, platform) is None]
    if missing and offline:
        raise BuildError(
            f"{folder}: missing wheels for {', '.join(r.for_platform(platform) for r in missing)}"
            " (run without --offline to download them)"
        )
    if missing:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version", "3.11", "--implementation", "cp", "--dest", str(folder)]
        for tag in PLATFORM_TAGS[platform]:
            command += ["--platform", tag]
        command += [r.for_platform(platform) for r in missing]
        print(f"[{platform}] downloading {len(missing)} wheels", flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise BuildError(f"pip download for {platform}: {last}")
    wheels = []
    for requirement in requirements:
        wheel = find_wheel(folder, requirement, platform)
        if wheel is None:
            raise BuildError(f"{folder}: missing wheel for {requirement.for_platform(platform)}")
        wheels.append(wheel)
    return wheels


def blender_ext_script() -> Path:
    """Blender's extension command-line tool, shipped inside the bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("bpy: not installed (pip install -r requirements.lock)")
    bpy_dir = Path(next(iter(spec.submodule_search_locations)))
    scripts = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not scripts:
        raise BuildError(f"{bpy_dir}: Blender's extension tool blender_ext.py not found")
    return scripts[-1]


def staged_manifest(platforms: list[str], wheel_names: list[str]) -> str:
    text = MANIFEST.read_text(encoding="utf-8")
    if "\nwheels" in text or "\nplatforms" in text:
        raise BuildError(f"{MANIFEST}: must not list platforms or wheels (build_addon.py adds them)")
    listed_platforms = ", ".join(f'"{p}"' for p in platforms)
    listed_wheels = "".join(f'  "./wheels/{name}",\n' for name in sorted(wheel_names))
    generated = f"platforms = [{listed_platforms}]\nwheels = [\n{listed_wheels}]\n"
    # Top-level keys must come before the first [table].
    head, table, tail = text.partition("\n[")
    return f"{head.rstrip()}\n\n{generated}\n{table.lstrip()}{tail}"


def stage_sources(stage: Path, platforms: list[str], wheels: list[Path]) -> None:
    """Copy the extension's sources and wheels into ``stage`` with the completed manifest."""
    stage.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in SOURCE_ITEMS:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, stage / item, ignore=ignore)
        else:
            shutil.copy2(source, stage / item)
    (stage / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, stage / "wheels" / wheel.name)
    (stage / "blender_manifest.toml").write_text(
        staged_manifest(platforms, [w.name for w in wheels]), encoding="utf-8"
    )


def run_blender_ext(arguments: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, str(blender_ext_script()), *arguments], capture_output=True, text=True
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise BuildError(f"blender_ext {arguments[0]}: {output[-1] if output else 'failed'}")
    return result.stdout


def build(platforms: list[str], out_dir: Path, wheels_dir: Path, offline: bool) -> list[Path]:
    """Build and validate one zip per platform; return their paths."""
    wheels: list[Path] = []
    for platform in platforms:
        wheels += [
            w for w in fetch_wheels(platform, wheels_dir, offline) if w.name not in {x.name for x in wheels}
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("humanmovenet-*.zip"):
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="hmn-stage-") as stage_root:
        stage = Path(stage_root) / "humanmovenet"
        stage_sources(stage, platforms, wheels)
        arguments = ["build", "--source-dir", str(stage)]
        if len(platforms) > 1:
            arguments += ["--output-dir", str(out_dir), "--split-platforms"]
        else:
            arguments += ["--output-filepath", str(out_dir / f"humanmovenet-{platforms[0]}.zip")]
        run_blender_ext(arguments)
    zips = sorted(out_dir.glob("humanmovenet-*.zip"))
    if not zips:
        raise BuildError(f"{out_dir}: blender_ext build wrote no zip")
    for package in zips:
        run_blender_ext(["validate", str(package)])
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--platform",
        action="append",
        choices=[*PLATFORM_TAGS, "all"],
        help="target platform (repeatable); default linux-x64; 'all' = " + ", ".join(PLATFORM_TAGS),
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default ./dist)")
    parser.add_argument("--wheels-dir", type=Path, default=ROOT / "wheels", help="wheel cache folder")
    parser.add_argument("--offline", action="store_true", help="use only wheels already in --wheels-dir")
    args = parser.parse_args(argv)
    chosen = args.platform or ["linux-x64"]
    platforms = list(PLATFORM_TAGS) if "all" in chosen else list(dict.fromkeys(chosen))
    try:
        zips = build(platforms, args.out, args.wheels_dir, args.offline)
    except BuildError as err:
        print(f"build_addon: error: {err}", file=sys.stderr)
        return 1
    for package in zips:
        print(f"{package} {package.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
