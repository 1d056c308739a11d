"""``zero123 nvs IMAGE``: novel views of an object from one photo (a thin layer over
:func:`zero123.nvs.generate_views`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import (
    DEFAULT_MODEL,
    DEFAULT_QUALITY,
    DeviceOption,
    DtypeOption,
    EtaOption,
    GuidanceOption,
    JsonOption,
    MaxBatchOption,
    ModelOption,
    OutOption,
    QualityOption,
    SolverOption,
    StepsOption,
    ThreadsOption,
    TrustPickleOption,
    broadcast_lists,
    parse_float_list,
)

SEGMENT_HELP = (
    "How the object is cut out of the photo: auto (alpha channel if transparent, else a plain-background "
    "flood fill, else GrabCut), alpha, threshold, grabcut or rembg (optional package)."
)


def novel_views(
    image: str | Path,
    views: list[dict[str, float]],
    output_dir: str | Path,
    *,
    model: str = DEFAULT_MODEL,
    quality: str = "original",
    steps: int | None = None,
    solver: str | None = None,
    guidance: float = 3.0,
    eta: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    segment: str = "auto",
    object_size: float = 200 / 256,
    cond_elevation: float | None = None,
    max_batch: int | None = None,
    trust_pickle: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate ``views`` of ``image`` with :func:`zero123.nvs.generate_views` and write them, the
    model input, the cut-out and a contact sheet. ``quality`` names a :data:`zero123.nvs.QUALITY_PRESETS`
    entry; ``steps`` / ``solver`` override it when given. Returns a dict of what was written (``--json``)."""
    from ..devices import dtype_name
    from ..loading import load_pipeline
    from ..nvs import Preprocessing, check_cameras, generate_views, prepare_input
    from ._common import check_output_dir, option_names, parse_device, parse_dtype, parse_sampling, progress_display

    # 1. Check every argument, the output folder and the image before any heavy work
    settings = parse_sampling(quality, steps=steps, solver=solver, guidance=guidance, eta=eta, max_batch=max_batch)
    with option_names("object_size", "segment", "azimuth", "elevation", "radius", "cond_elevation"):
        preprocessing = Preprocessing(segment=segment, object_size=object_size)
        check_cameras(views, cond_elevation=cond_elevation)
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    out = Path(output_dir)
    check_output_dir(out)
    prepared = prepare_input(image, preprocessing)

    # 2. Load the model, sample every view in one call (progress per denoising step), write atomically
    with option_names("model"):
        pipe = load_pipeline(model, device=dev, dtype=dt, trust_pickle=trust_pickle)
    with progress_display(progress) as bar:
        task = bar.add_task(f"sampling {len(views)} view(s)", total=None)
        result = generate_views(pipe, prepared, views, settings=settings, seed=seed, cond_elevation=cond_elevation,
                                on_step=lambda done, total: bar.update(task, completed=done, total=total))
    written = result.save(out)
    return {
        "image": str(image),
        "model": str(model),
        "preprocess": result.prepared.method,
        "quality": quality,
        "solver": settings.solver,
        "steps": settings.steps,
        "guidance": settings.guidance,
        "eta": settings.eta,
        "device": str(dev),
        "dtype": dtype_name(dt),
        **written,
    }


def nvs(
    image: Annotated[Path, typer.Argument(help="Input photo of one object (PNG/JPEG/...; RGBA alpha is used as the mask).")],
    azimuth: Annotated[str, typer.Option(help="Azimuth change(s) in degrees, + = counter-clockwise seen from above; e.g. 0,90,180,270.")] = "30",
    elevation: Annotated[str, typer.Option(help="Elevation change(s) in degrees, + = camera moves up (-180 to 180; beyond +-90 passes over the pole).")] = "0",
    radius: Annotated[str, typer.Option(help="Distance ratio(s) target/input (1.0 = same distance).")] = "1.0",
    model: ModelOption = DEFAULT_MODEL,
    quality: QualityOption = DEFAULT_QUALITY,
    steps: StepsOption = None,
    solver: SolverOption = None,
    guidance: GuidanceOption = 3.0,
    eta: EtaOption = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; view i uses seed + i, so a view does not change when others are added after it.")] = 0,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    segment: Annotated[str, typer.Option("--segment", help=SEGMENT_HELP)] = "auto",
    no_preprocess: Annotated[bool, typer.Option("--no-preprocess", help="Use the image as it is: no cut-out or recentring; a non-square image is padded to a square (white, centred), not squashed.")] = False,
    object_size: Annotated[float, typer.Option(help="The object's longest side as a share of the image side (the original demo: 200/256).")] = 200 / 256,
    cond_elevation: Annotated[Optional[float], typer.Option(help="Input view's elevation in degrees, -90 to 90 (needed by Stable Zero123 models).")] = None,
    max_batch: MaxBatchOption = None,
    trust_pickle: TrustPickleOption = False,
    out: OutOption = Path("zero123-nvs"),
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate novel views of IMAGE for one or more camera changes; writes each view, the model input,
    the cut-out (cutout.png, full size) and a contact sheet."""
    if no_preprocess and segment != "auto":
        raise ValueError(f"--no-preprocess and --segment {segment} contradict each other: give one of them")
    views = broadcast_lists(
        azimuth=parse_float_list(azimuth, "--azimuth"),
        elevation=parse_float_list(elevation, "--elevation"),
        radius=parse_float_list(radius, "--radius"),
    )
    report = novel_views(
        image, views, out, model=model, quality=quality, steps=steps, solver=solver, guidance=guidance, eta=eta, seed=seed, device=device,
        dtype=dtype, segment="none" if no_preprocess else segment, object_size=object_size,
        cond_elevation=cond_elevation, max_batch=max_batch, trust_pickle=trust_pickle, progress=not as_json,
    )
    if as_json:
        from ._common import print_json

        print_json(report)
        return
    method = report["preprocess"]
    if method == "none":
        typer.echo("input: used as it is (--no-preprocess; padded to a square if it was not one)")
    else:
        typer.echo(f"input: object cut out with segmentation method {method!r} -> {report['cutout']}")
    typer.echo(f"wrote {len(report['views'])} view(s) and {report['contact_sheet']}")
