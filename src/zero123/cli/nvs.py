"""``zero123 nvs IMAGE``: novel views of an object from one photo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import DEFAULT_MODEL, broadcast_lists, parse_float_list, run_cli_errors


def novel_views(
    image: str | Path,
    views: list[dict[str, float]],
    output_dir: str | Path,
    *,
    model: str = DEFAULT_MODEL,
    steps: int = 50,
    guidance: float = 3.0,
    eta: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    preprocess: bool = True,
    object_size: float = 200 / 256,
    cond_elevation: float | None = None,
    max_batch: int | None = None,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """Generate ``views`` of ``image`` with :func:`zero123.nvs.generate_views` and write them, the
    model input and a contact sheet. Returns a dict of what was written (the ``--json`` output)."""
    from ..devices import dtype_name
    from ..loading import load_pipeline
    from ..nvs import Preprocessing, SamplingSettings, generate_views, prepare_input
    from ._common import option_names, parse_device, parse_dtype

    # 1. Check arguments and the image before any heavy work
    with option_names("steps", "guidance", "eta", "max_batch", "object_size"):
        settings = SamplingSettings(steps=steps, guidance=guidance, eta=eta, max_batch=max_batch)
        preprocessing = Preprocessing(segment="auto" if preprocess else "none", object_size=object_size)
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o/--output {out} exists and is not a folder")
    prepared = prepare_input(image, preprocessing)

    # 2. Load the model, sample every view in one call, write everything (atomically)
    pipe = load_pipeline(model, device=dev, dtype=dt, trust_pickle=trust_pickle, progress_bar=True)
    result = generate_views(pipe, prepared, views, settings=settings, seed=seed, cond_elevation=cond_elevation)
    written = result.save(out)
    return {
        "image": str(image),
        "model": str(model),
        "preprocess": result.prepared.method,
        "steps": steps,
        "guidance": guidance,
        "eta": eta,
        "device": str(dev),
        "dtype": dtype_name(dt),
        **written,
    }


@run_cli_errors
def nvs(
    image: Annotated[Path, typer.Argument(help="Input photo of one object (PNG/JPEG/...; RGBA alpha is used as the mask).")],
    azimuth: Annotated[str, typer.Option(help="Azimuth change(s) in degrees, + = counter-clockwise seen from above; e.g. 0,90,180,270.")] = "30",
    elevation: Annotated[str, typer.Option(help="Elevation change(s) in degrees, + = camera moves up.")] = "0",
    radius: Annotated[str, typer.Option(help="Distance ratio(s) target/input (1.0 = same distance).")] = "1.0",
    model: Annotated[str, typer.Option(help="Model folder, checkpoint file, or 'bundled' (the small model shipped with the package).")] = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(help="DDIM steps S (original grid: S = 50 runs 49 steps).")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 3.0,
    eta: Annotated[float, typer.Option(help="DDIM eta (1.0 = the original demo's stochastic sampler).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed; view i uses seed + i.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.")] = "auto",
    no_preprocess: Annotated[bool, typer.Option("--no-preprocess", help="Skip background removal and recentring; just resize and composite on white.")] = False,
    object_size: Annotated[float, typer.Option(help="With preprocessing: the object's longest side as a share of the image side (SPEC section 5: 200/256).")] = 200 / 256,
    cond_elevation: Annotated[Optional[float], typer.Option(help="Input view's elevation in degrees (needed by Stable Zero123 models).")] = None,
    max_batch: Annotated[Optional[int], typer.Option(help="Largest U-Net batch per call (bounds memory).")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow unpickling an original Lightning .ckpt (only for files you trust).")] = False,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("zero123-nvs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Generate novel views of IMAGE for one or more camera changes; writes each view and a contact sheet."""
    views = broadcast_lists(
        azimuth=parse_float_list(azimuth, "--azimuth"),
        elevation=parse_float_list(elevation, "--elevation"),
        radius=parse_float_list(radius, "--radius"),
    )
    report = novel_views(
        image,
        views,
        output,
        model=model,
        steps=steps,
        guidance=guidance,
        eta=eta,
        seed=seed,
        device=device,
        dtype=dtype,
        preprocess=not no_preprocess,
        object_size=object_size,
        cond_elevation=cond_elevation,
        max_batch=max_batch,
        trust_pickle=trust_pickle,
    )
    if as_json:
        from ._common import print_json

        print_json(report)
    else:
        typer.echo(f"wrote {len(report['views'])} view(s) and {report['contact_sheet']}")
