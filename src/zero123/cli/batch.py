"""``zero123 batch MANIFEST --out DIR``: novel views (or a mesh) for many images, resumable, local/accelerate/Ray."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..devices import DEVICE_HELP
from ._common import (
    DEFAULT_MODEL,
    DEFAULT_QUALITY,
    DtypeOption,
    EtaOption,
    GuidanceOption,
    JsonOption,
    MaxBatchOption,
    ModelOption,
    OutOption,
    ProgressOption,
    QualityOption,
    SolverOption,
    StepsOption,
    TrustPickleOption,
    broadcast_lists,
    fail,
    parse_float_list,
)
from .nvs import SEGMENT_HELP
from .reconstruct import TURNTABLES

#: Seconds between progress lines on stderr.
PROGRESS_SECONDS = 30.0


@contextlib.contextmanager
def _sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """SIGTERM (``scancel``, a preempted node, a launcher stopping its processes) stops the job as
    Ctrl-C does: the row in flight is dropped with its temporary folder, finished rows and their
    result lines stay, the exit code is 143; rerun the command to resume."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def batch(
    manifest: Annotated[Path, typer.Argument(help="JSON Lines file (one row per input: id, image, cameras, seed) or a folder of images (with --azimuth).")],
    out: OutOption,
    azimuth: Annotated[Optional[str], typer.Option(help="Cameras of rows that give none (and of a folder): azimuth change(s) in degrees, e.g. 0,90,180,270.")] = None,
    elevation: Annotated[str, typer.Option(help="Elevation change(s) in degrees for those cameras (+ = camera moves up).")] = "0",
    radius: Annotated[str, typer.Option(help="Distance ratio(s) target/input for those cameras.")] = "1.0",
    task: Annotated[str, typer.Option("--task", help="What each row makes: nvs (novel views) or reconstruct (a textured mesh, the image-to-3D fast route; rows need no cameras).")] = "nvs",
    cond_elevation: Annotated[Optional[float], typer.Option(help="The photos' elevation in degrees for rows without cond_elevation (reconstruct: default 15; nvs: needed by Stable Zero123 models).")] = None,
    preset: Annotated[str, typer.Option("--preset", help="reconstruct: fast or quality (as `zero123 reconstruct --preset`).")] = "fast",
    turntable: Annotated[str, typer.Option("--turntable", help="reconstruct: turntable video per row: mp4, gif or none.")] = "mp4",
    model: ModelOption = DEFAULT_MODEL,
    quality: QualityOption = DEFAULT_QUALITY,
    steps: StepsOption = None,
    solver: SolverOption = None,
    guidance: GuidanceOption = 3.0,
    eta: EtaOption = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of rows that give none; view i of a row uses the row's seed + i.")] = 0,
    device: Annotated[str, typer.Option("--device", help=f"Device: {DEVICE_HELP}; under accelerate/Ray, auto is each worker's own GPU.")] = "auto",
    dtype: DtypeOption = "auto",
    segment: Annotated[str, typer.Option("--segment", help=SEGMENT_HELP)] = "auto",
    no_preprocess: Annotated[bool, typer.Option("--no-preprocess", help="Use each image as it is (padded to a square): no cut-out or recentring.")] = False,
    object_size: Annotated[float, typer.Option(help="The object's longest side as a share of the image side (the original demo: 200/256).")] = 200 / 256,
    max_batch: MaxBatchOption = None,
    no_contact_sheet: Annotated[bool, typer.Option("--no-contact-sheet", help="Do not write contact_sheet.png per row.")] = False,
    trust_pickle: TrustPickleOption = False,
    backend: Annotated[str, typer.Option("--backend", help="local (this process), accelerate (under accelerate launch) or ray (Ray Data).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray: cluster address ('auto' = the running cluster; default: start a local one).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Ray: actors in the generation pool, one model each [1].")] = None,
    gpus_per_worker: Annotated[Optional[float], typer.Option(help="Ray: GPUs per actor [1 when the cluster has GPUs, else 0; 0.5 = two per GPU].")] = None,
    cpus_per_worker: Annotated[Optional[float], typer.Option(help="Ray: CPUs reserved per actor [1].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Ray: rows per actor call [1].")] = None,
    shard_index: Annotated[int, typer.Option(help="Run only rows with index % num-shards == shard-index (job arrays).")] = 0,
    num_shards: Annotated[int, typer.Option(help="Number of shards of the job.")] = 1,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="torch CPU threads of each worker (CPU outputs are bit-identical for the same value; default: as for every command).")] = None,
    progress: ProgressOption = True,
    as_json: JsonOption = False,
) -> None:
    """Run novel views (or a mesh) over every row of MANIFEST into --out; prints done/skipped/failed, exit 1 if any row failed."""
    from ..batch import (BACKEND_NAMES, TASK_NAMES, AccelerateBackend, LocalBackend, NvsTask, RayBackend, ReconstructTask, RowDefaults,
                         load_rows, run_batch)
    from ..batch.backends import launcher_world_size
    from ..nvs import Preprocessing
    from ._common import check_output_dir, option_names, parse_sampling, progress_display

    # 1. Check the options (device included) before any heavy work, then read the rows
    if task not in TASK_NAMES:
        raise ValueError(f"--task must be one of {', '.join(TASK_NAMES)}, got {task!r}")
    if backend not in BACKEND_NAMES:
        raise ValueError(f"--backend must be one of {', '.join(BACKEND_NAMES)}, got {backend!r}")
    if no_preprocess and segment != "auto":
        raise ValueError(f"--no-preprocess and --segment {segment} contradict each other: give one of them")
    ray_options = {"ray_address": ray_address, "workers": workers, "gpus_per_worker": gpus_per_worker,
                   "cpus_per_worker": cpus_per_worker, "batch_size": batch_size}
    given = {k: v for k, v in ray_options.items() if v is not None}
    if backend != "ray" and given:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        verb = "applies" if len(given) == 1 else "apply"
        raise ValueError(f"{names} {verb} only to --backend ray (local and accelerate run one row per pipeline call)")
    if backend != "accelerate" and launcher_world_size() > 1:
        raise ValueError(f"this command runs in {launcher_world_size()} launched processes; pass --backend accelerate "
                         "so they split the rows (else each would run every row)")
    if task != "reconstruct" and (preset != "fast" or turntable != "mp4"):
        raise ValueError("--preset and --turntable apply only to --task reconstruct")
    if turntable not in TURNTABLES:
        raise ValueError(f"--turntable must be one of {TURNTABLES}, got {turntable!r}")
    sampling = parse_sampling(quality, steps=steps, solver=solver, guidance=guidance, eta=eta, max_batch=max_batch)
    with option_names("object_size", "segment", "seed", "threads", "workers",
                      "batch_size", "gpus_per_worker", "cpus_per_worker", "device", "dtype", "cond_elevation", "preset"):
        preprocessing = Preprocessing(segment="none" if no_preprocess else segment, object_size=object_size)
        if task == "reconstruct":
            from ..threed.reconstruct import ImageRouteSettings, get_preset

            row_task = ReconstructTask(model=model, trust_pickle=trust_pickle, turntable=None if turntable == "none" else turntable,
                                       route=ImageRouteSettings(sampling=sampling, preprocessing=preprocessing, reconstruct=get_preset(preset)))
        else:
            row_task = NvsTask(model=model, sampling=sampling, preprocessing=preprocessing, trust_pickle=trust_pickle,
                               contact_sheet=not no_contact_sheet)
        if backend == "ray":
            runner = RayBackend(address=ray_address, device=device, dtype=dtype, threads=threads,
                                **{k: v for k, v in given.items() if k != "ray_address"})
        else:
            runner = (AccelerateBackend if backend == "accelerate" else LocalBackend)(device=device, dtype=dtype, threads=threads)
        cameras = () if azimuth is None else tuple(broadcast_lists(
            azimuth=parse_float_list(azimuth, "--azimuth"), elevation=parse_float_list(elevation, "--elevation"),
            radius=parse_float_list(radius, "--radius")))
        defaults = RowDefaults(cameras=cameras, seed=seed, cond_elevation=cond_elevation, needs_cameras=task != "reconstruct")
    check_output_dir(out)
    rows = load_rows(manifest, defaults)

    # 2. Run: a live count on a terminal, a line every PROGRESS_SECONDS in a log, each failure as it happens
    with progress_display(progress and not as_json) as bar:
        counter = bar.add_task(f"batch ({backend})", total=None)
        seen = {"rows": 0, "failed": 0, "last": time.monotonic()}

        def on_result(result) -> None:
            seen["rows"] += 1
            bar.advance(counter)
            if not result.ok:
                seen["failed"] += 1
                bar.console.print(f"failed {result.row.id}: {result.error}", markup=False, highlight=False)
            if not bar.console.is_terminal and time.monotonic() - seen["last"] >= PROGRESS_SECONDS:
                seen["last"] = time.monotonic()
                bar.console.print(f"batch: {seen['rows']} rows recorded so far ({seen['failed']} failed)", markup=False)

        try:
            with option_names("shard_index", "num_shards"), _sigterm_stops_like_ctrl_c():
                summary = run_batch(rows, out, row_task, runner, shard_index=shard_index, num_shards=num_shards, on_result=on_result)
        except (ImportError, RuntimeError) as e:  # Ray missing, or a Ray worker that cannot load the model
            raise fail(str(e)) from None

    # 3. The summary and the exit code, from the main process only (under a launcher the job's
    #    exit code is the first failing process's)
    if runner.processes()[0] != 0:
        return
    if as_json:
        from ._common import print_json

        print_json(summary.to_json())
    else:
        typer.echo(f"batch: {summary.done} done, {summary.skipped} skipped, {len(summary.failed)} failed "
                   f"in {summary.seconds:.1f} s; results in {Path(summary.out_dir) / 'results.jsonl'}")
    sys.stdout.flush()
    if summary.failed:
        raise typer.Exit(code=1)
