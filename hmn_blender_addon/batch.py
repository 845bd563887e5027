"""``batch``: one ``run`` per video of a cohort, in parallel, resumable; cohort table and group statistics.

Each video's outputs go to ``DIR/<video stem>/`` (the stem plus a hash of the full path when two
videos share a stem, so names stay the same from one call to the next). Jobs run in local worker
processes (spawned, so that torch and MediaPipe start clean; their number bounded by the cores and
the available memory, each worker limited to its share of the cores), or as Ray tasks when a Ray
address is given. A video that fails is recorded with its one-line error and never stops the
others. ``DIR/batch.json`` records each video's state: a second call skips the finished ones and
retries the failed ones. ``DIR/cohort.csv`` has one row per video with the scalar metrics of its
``report.json`` (section 6: the spine's, the gait markers, the thorax-pelvis coordination), and a
metadata CSV with a group column adds per-group mean +- SD and Welch's t-test per metric
(``DIR/groups.csv``, ``DIR/groups.png``); its optional ``subject_height_m`` column gives each
video's fit and gait markers their metric scale (as ``run --subject-height-m``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_path, write_text_atomic
from .errors import HMNError
from .progress import Progress

if TYPE_CHECKING:  # the pipeline (torch) is imported only where a run happens
    from .pipeline import RunSettings

STATE_FILE = "batch.json"
COHORT_FILE = "cohort.csv"
GROUPS_FILE = "groups.csv"
GROUPS_PLOT = "groups.png"
# Peak resident memory of one worker on a 720p clip, with a margin: measured 0.65 GB for 60 s
# and 0.68 GB for 600 s (frames stream; the per-frame arrays are small).
WORKER_MEMORY_BYTES = 2 << 30
HEIGHT_COLUMN = "subject_height_m"  # the metadata CSV's optional per-video height
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Job:
    """One video of the batch and the folder its run writes."""

    name: str
    video: Path
    out_dir: Path
    subject_height_m: float | None = None  # from the metadata CSV; overrides the run settings'


@dataclass
class Outcome:
    """How one job ended: ``status`` "done", "failed" or "skipped" (finished by an earlier call)."""

    name: str
    video: str
    status: str
    error: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class BatchResult:
    """Outcomes in the order of the videos, the worker count used and the files written."""

    outcomes: list[Outcome]
    workers: int
    seconds: float
    written: list[Path] = field(default_factory=list)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def plan_jobs(videos: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> list[Job]:
    """A job per video; a stem shared by several videos gets an 8-hex hash of the absolute path."""
    paths = [Path(v) for v in videos]
    stems = [p.stem for p in paths]
    jobs = []
    for path, stem in zip(paths, stems, strict=True):
        name = stem
        if stems.count(stem) > 1:
            name = f"{stem}-{hashlib.sha1(str(path.absolute()).encode()).hexdigest()[:8]}"
        jobs.append(Job(name, path, Path(out_dir) / name))
    seen: set[Path] = set()
    for job in jobs:
        if job.video.absolute() in seen:
            raise HMNError(job.video, "named twice in the batch")
        seen.add(job.video.absolute())
    return jobs


def available_memory_bytes() -> int:
    """Memory available to new processes (Linux MemAvailable; else physical memory)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(requested: int | None, jobs: int) -> int:
    """Workers to start: ``requested`` (default: the cores) bounded by cores, memory and jobs."""
    if requested is not None and requested < 1:
        raise HMNError("--workers", f"needs at least 1 worker, got {requested}")
    cores = usable_cores()
    by_memory = max(1, available_memory_bytes() // WORKER_MEMORY_BYTES)
    return max(1, min(requested or cores, cores, by_memory, max(jobs, 1)))


def limit_threads(threads: int) -> None:
    """Keep this process to ``threads`` cores (torch, OpenCV and the BLAS/OpenMP pools)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def run_job(job: Job, settings: RunSettings, threads: int) -> Outcome:
    """Run one job (in a worker); any failure becomes the outcome's one-line error.

    Errors other than HMNError are bugs or faults below the project (a decoder, the disk): they
    are reported with their type so that the rest of the cohort still runs.
    """
    from .pipeline import run

    limit_threads(threads)
    started = time.perf_counter()
    if job.subject_height_m is not None:
        settings = replace(settings, subject_height_m=job.subject_height_m)
    try:
        run(job.video, job.out_dir, settings)
        status, error = "done", ""
    except HMNError as err:
        status, error = "failed", str(err)
    except Exception as exc:
        status, error = "failed", str(HMNError(job.video, f"unexpected {type(exc).__name__}: {exc}"))
    return Outcome(job.name, str(job.video), status, error, time.perf_counter() - started, peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (NaN where the OS does not say: Windows)."""
    try:
        import resource
    except ImportError:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _worker_init(threads: int) -> None:
    for name in THREAD_VARIABLES:  # before torch starts its pools in this fresh process
        os.environ[name] = str(threads)


JobRunner = Callable[[Job, "RunSettings", int], Outcome]


def _run_local(
    jobs: list[Job], settings: RunSettings, workers: int, record: Callable[[Outcome], None], runner: JobRunner
) -> None:
    """Jobs in ``workers`` spawned processes.

    A worker that dies (a crash, the OOM killer) breaks the pool and every job not finished in
    it. Those jobs then run one at a time; in that serial pool the first broken job is the one
    that was running, so it alone is recorded as failed and the rest go on.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pending, serial = list(jobs), False
    while pending:
        count = 1 if serial else workers
        threads = max(1, usable_cores() // count)
        broken = []
        with ProcessPoolExecutor(count, context, initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(runner, job, settings, threads): job for job in pending}
            try:
                remaining = set(futures)
                while remaining:
                    done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for future in done:
                        try:
                            record(future.result())
                        except BrokenProcessPool:
                            broken.append(futures[future])
            except BaseException:  # Ctrl-C, or a cancel from the progress: stop the workers' runs too
                # SIGINT, not SIGTERM: a run removes its staging folder on KeyboardInterrupt
                for process in list((pool._processes or {}).values()):
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGINT)
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        broken.sort(key=pending.index)
        if serial and broken:
            died = broken.pop(0)
            problem = "its worker process died (a crash, or out of memory)"
            record(Outcome(died.name, str(died.video), "failed", str(HMNError(died.video, problem))))
        pending, serial = broken, serial or bool(broken)


def _run_ray(
    jobs: list[Job], settings: RunSettings, workers: int, address: str, record: Callable[[Outcome], None]
) -> None:
    """Jobs as Ray tasks of one CPU each; ``address`` "local" starts a local instance of
    ``workers`` CPUs. Every node needs this package installed (as for the ``hmn`` command)."""
    try:
        import ray
    except ImportError as exc:
        raise HMNError("--ray-address", "Ray is not installed (pip install ray)") from exc
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise HMNError(address, f"cannot connect to the Ray cluster ({exc})") from exc
    remote = ray.remote(num_cpus=1, max_retries=1)(run_job)
    refs = {remote.remote(job, settings, 1): job for job in jobs}
    try:
        remaining = list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            job = refs[done[0]]
            try:
                record(ray.get(done[0]))
            except ray.exceptions.RayError as exc:
                problem = f"its Ray task failed ({type(exc).__name__})"
                record(Outcome(job.name, str(job.video), "failed", str(HMNError(job.video, problem))))
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise


def _load_state(out_dir: Path) -> dict[str, dict]:
    try:
        state = json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}  # no earlier call, or an unreadable record: redo everything, trust nothing


def _finished(job: Job, state: dict[str, dict]) -> bool:
    entry = state.get(job.name, {})
    return (
        entry.get("status") == "done"
        and entry.get("video") == str(job.video.absolute())
        and (job.out_dir / "report.json").is_file()
    )


def run_batch(
    videos: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: RunSettings | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: Progress | None = None,
    runner: JobRunner = run_job,
    heights_m: dict[str, float] | None = None,
) -> BatchResult:
    """Run every video not finished by an earlier call; write batch.json and cohort.csv.

    ``settings`` is a :class:`~.pipeline.RunSettings` (default settings when None). ``runner``
    runs one job in a worker (a picklable function; the default runs the pipeline).
    ``heights_m``: job name -> the subject's height (:func:`subject_heights`), the gait scale.
    """
    from .pipeline import RunSettings

    settings = settings or RunSettings()
    progress = progress or Progress()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise HMNError(out_dir, "the output folder is a file")
    jobs = [
        replace(job, subject_height_m=(heights_m or {}).get(job.name, job.subject_height_m))
        for job in plan_jobs(videos, out_dir)
    ]
    if not jobs:
        raise HMNError("batch", "no videos given")
    state = _load_state(out_dir)
    outcomes = {
        job.name: Outcome(job.name, str(job.video), "skipped") for job in jobs if _finished(job, state)
    }
    todo = [job for job in jobs if job.name not in outcomes]
    count = worker_count(workers, len(todo))
    progress(len(outcomes) / len(jobs), f"{len(todo)} to run on {count} workers")

    def record(outcome: Outcome) -> None:
        outcomes[outcome.name] = outcome
        state[outcome.name] = {
            "video": str(Path(outcome.video).absolute()),
            "status": outcome.status,
            "error": outcome.error,
        }
        write_text_atomic(out_dir / STATE_FILE, json.dumps(state, indent=1))
        progress(len(outcomes) / len(jobs), f"{outcome.name} {outcome.status}")

    if todo:
        out_dir.mkdir(parents=True, exist_ok=True)
        if ray_address:
            _run_ray(todo, settings, count, ray_address, record)
        else:
            _run_local(todo, settings, count, record, runner)
    ordered = [outcomes[job.name] for job in jobs]
    written = [write_cohort(out_dir / COHORT_FILE, jobs, ordered)]
    return BatchResult(ordered, count, time.perf_counter() - started, written)


# ---------------------------------------------------------------- cohort table


def metric_columns(metrics: dict) -> list[tuple[str, object]]:
    """The scalar entries of a report's ``metrics`` block as (dotted.key, value); per-cycle
    lists are left out (their length differs between videos: their mean and SD are kept)."""
    from .report import flatten

    return [(key, value) for key, value in flatten(metrics) if ".per_cycle." not in f".{key}."]


def report_columns(report: dict) -> list[tuple[str, object]]:
    """A report's cohort columns: its metrics (:func:`metric_columns`), the spine profile and its
    source, and the view's kind (which tells the planes the clip shows; blank in reports written
    before the view was reported)."""
    morphology = report.get("spine_morphology", {})
    profile_keys = ("lumbar_lordosis_deg", "thoracic_kyphosis_deg", "source")
    return [
        *metric_columns(report["metrics"]),
        *((f"spine_morphology.{key}", morphology.get(key)) for key in profile_keys),
        ("view.kind", report.get("view", {}).get("kind")),
    ]


def cohort_rows(jobs: Sequence[Job], outcomes: Sequence[Outcome]) -> list[dict[str, object]]:
    """One row per video: name, video, status, error, then its report's columns (empty when it
    failed)."""
    rows = []
    for job, outcome in zip(jobs, outcomes, strict=True):
        row: dict[str, object] = {
            "name": job.name,
            "video": str(job.video),
            "status": "failed" if outcome.status == "failed" else "done",
            "error": outcome.error,
        }
        if outcome.status != "failed":
            report = json.loads((job.out_dir / "report.json").read_text(encoding="utf-8"))
            row |= dict(report_columns(report))
        rows.append(row)
    return rows


def _csv_text(rows: Sequence[dict[str, object]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_cohort(path: Path, jobs: Sequence[Job], outcomes: Sequence[Outcome]) -> Path:
    return write_text_atomic(path, _csv_text(cohort_rows(jobs, outcomes)))


# ---------------------------------------------------------------- group statistics


def read_metadata(
    meta_csv: str | os.PathLike, jobs: Sequence[Job]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """(job name -> its row, the columns) of a metadata CSV with a ``video`` column (a file name, or
    a path relative to the CSV's folder); videos it does not list are left out."""
    meta_csv = Path(meta_csv)
    try:
        with meta_csv.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except FileNotFoundError:
        raise HMNError(meta_csv, "file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HMNError(meta_csv, f"not a readable CSV file ({exc})") from None
    if "video" not in columns:
        raise HMNError(meta_csv, f"no 'video' column (columns: {', '.join(columns) or 'none'})")
    by_path = {(meta_csv.parent / row["video"]).resolve(): row for row in rows}
    by_name = {Path(row["video"]).name: row for row in rows}
    matched = {}
    for job in jobs:
        row = by_path.get(job.video.resolve(), by_name.get(job.video.name))
        if row is not None:
            matched[job.name] = row
    return matched, columns


def read_groups(meta_csv: str | os.PathLike, group_column: str, jobs: Sequence[Job]) -> dict[str, str]:
    """Job name -> group from the metadata CSV's ``group_column`` (:func:`read_metadata`)."""
    rows, columns = read_metadata(meta_csv, jobs)
    if group_column not in columns:
        raise HMNError(meta_csv, f"no {group_column!r} column (columns: {', '.join(columns) or 'none'})")
    return {
        name: row[group_column].strip() for name, row in rows.items() if (row[group_column] or "").strip()
    }


def subject_heights(meta_csv: str | os.PathLike, jobs: Sequence[Job]) -> dict[str, float]:
    """Job name -> subject height (m) from the metadata CSV's optional :data:`HEIGHT_COLUMN` (blank
    cells: unknown); a cell that is not a height in metres is a one-line error naming the video."""
    from .pipeline import SUBJECT_HEIGHT_RANGE_M

    rows, columns = read_metadata(meta_csv, jobs)
    if HEIGHT_COLUMN not in columns:
        return {}
    heights = {}
    low, high = SUBJECT_HEIGHT_RANGE_M
    for name, row in rows.items():
        text = (row[HEIGHT_COLUMN] or "").strip()
        if not text:
            continue
        height = _number(text)
        if not low <= height <= high:
            raise HMNError(
                meta_csv, f"{row['video']}: {HEIGHT_COLUMN} must be {low} to {high} metres, got {text!r}"
            )
        heights[name] = height
    return heights


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def group_statistics(rows: Sequence[dict[str, object]], groups: dict[str, str]) -> list[dict[str, object]]:
    """Per numeric metric: n, mean and SD (ddof 1) per group and Welch's t and p per pair of groups."""
    import numpy as np
    from scipy.stats import ttest_ind

    done = [row for row in rows if row["status"] == "done" and row["name"] in groups]
    labels = sorted({groups[row["name"]] for row in done})
    metrics = [
        key
        for key in dict.fromkeys(k for row in done for k in row)
        if key not in ("name", "video", "status", "error")
        and any(math.isfinite(_number(row.get(key))) for row in done)
    ]
    table = []
    for metric in metrics:
        values = {
            label: np.array(
                [
                    v
                    for row in done
                    if groups[row["name"]] == label
                    if math.isfinite(v := _number(row.get(metric)))
                ]
            )
            for label in labels
        }
        entry: dict[str, object] = {"metric": metric}
        for label in labels:
            sample = values[label]
            entry[f"{label}_n"] = len(sample)
            entry[f"{label}_mean"] = float(sample.mean()) if len(sample) else math.nan
            entry[f"{label}_sd"] = float(sample.std(ddof=1)) if len(sample) > 1 else math.nan
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                if min(len(values[a]), len(values[b])) > 1:
                    test = ttest_ind(values[a], values[b], equal_var=False)
                    t, p = float(test.statistic), float(test.pvalue)
                else:
                    t = p = math.nan
                entry[f"t_{a}_vs_{b}"], entry[f"p_{a}_vs_{b}"] = t, p
        table.append(entry)
    return table


def groups_figure(table: Sequence[dict[str, object]], labels: Sequence[str]):
    """A panel per metric: each group's mean with its SD as an error bar; the first pair's p above."""
    from matplotlib.figure import Figure

    columns = 5
    rows = max(1, math.ceil(len(table) / columns))
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), layout="constrained")
    pair = f"{labels[0]}_vs_{labels[1]}" if len(labels) > 1 else ""
    for index, entry in enumerate(table):
        axes = figure.add_subplot(rows, columns, index + 1)
        means = [_number(entry[f"{label}_mean"]) for label in labels]
        sds = [_number(entry[f"{label}_sd"]) for label in labels]
        axes.bar(labels, means, yerr=[0 if math.isnan(s) else s for s in sds], capsize=3, color="0.6")
        p_text = f"\np = {_number(entry[f'p_{pair}']):.3g}" if pair else ""
        axes.set_title(f"{entry['metric']}{p_text}", fontsize=7)
        axes.tick_params(labelsize=7)
    return figure


def write_groups(out_dir: Path, table: Sequence[dict[str, object]], labels: Sequence[str]) -> list[Path]:
    csv_path = write_text_atomic(out_dir / GROUPS_FILE, _csv_text(table))
    with atomic_path(out_dir / GROUPS_PLOT) as tmp:
        groups_figure(table, labels).savefig(tmp, format="png", dpi=80)
    return [csv_path, out_dir / GROUPS_PLOT]


def format_groups(table: Sequence[dict[str, object]], labels: Sequence[str]) -> str:
    """The group table as text: metric, each group's mean +- SD (n), the first pair's Welch p."""
    pair = f"{labels[0]}_vs_{labels[1]}" if len(labels) > 1 else ""
    lines = [
        f"{'metric':44s}" + "".join(f"{label:>22s}" for label in labels) + ("   Welch p" if pair else "")
    ]
    for entry in table:
        cells = "".join(
            f"{_number(entry[f'{label}_mean']):>10.3g} +- "
            f"{_number(entry[f'{label}_sd']):<6.3g}({entry[f'{label}_n']})"
            for label in labels
        )
        lines.append(
            f"{entry['metric']:44s}{cells}" + (f"{_number(entry[f'p_{pair}']):10.3g}" if pair else "")
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    from .pipeline import _settings_from_args

    heights = subject_heights(args.meta, plan_jobs(args.videos, args.out)) if args.meta is not None else {}
    if args.meta is not None and args.group is None and not heights:
        raise HMNError(
            "--meta", f"needs --group (the column naming each video's group) or a {HEIGHT_COLUMN} column"
        )
    settings = _settings_from_args(args)
    result = run_batch(
        args.videos, args.out, settings, args.workers, args.ray_address, progress, heights_m=heights
    )
    done = sum(o.status == "done" for o in result.outcomes)
    skipped = sum(o.status == "skipped" for o in result.outcomes)
    print(
        f"\nbatch: {len(result.outcomes)} videos: {done} done, {skipped} finished earlier, "
        f"{len(result.failures)} failed ({result.workers} workers, {result.seconds:.0f} s)"
    )
    for outcome in result.failures:
        print(f"  failed: {outcome.error}")
    if args.meta is not None and args.group is not None:
        jobs = plan_jobs(args.videos, args.out)
        groups = read_groups(args.meta, args.group, jobs)
        rows = list(csv.DictReader(io.StringIO((Path(args.out) / COHORT_FILE).read_text(encoding="utf-8"))))
        table = group_statistics(rows, groups)
        labels = sorted(set(groups.values()))
        if table and labels:
            result.written += write_groups(Path(args.out), table, labels)
            print(format_groups(table, labels))
        else:
            print(f"{args.meta}: no finished video has a {args.group!r} group: no group statistics")
    print("wrote " + ", ".join(str(p) for p in result.written))
    return 1 if result.failures else 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    from .pipeline import _add_run_options

    parser = subparsers.add_parser(
        "batch", help="run every video of a cohort (parallel, resumable); cohort.csv and group statistics"
    )
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    _add_run_options(parser)
    parser.add_argument(
        "--workers", type=int, help="parallel local workers (default: cores and memory allow)"
    )
    parser.add_argument("--ray-address", help="run on this Ray cluster ('local' starts one here)")
    parser.add_argument(
        "--meta",
        type=Path,
        help=f"CSV with a 'video' column, a group column and optionally {HEIGHT_COLUMN} (metres)",
    )
    parser.add_argument("--group", help="the --meta column that names each video's group (e.g. sex)")
    parser.set_defaults(handler=_handle)
