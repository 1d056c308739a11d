"""``zero123 nvs IMAGE``: novel views of an object from one photo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import DEFAULT_MODEL, broadcast_lists, parse_float_list, run_cli_errors

#: Views per row in the contact sheet (the input image comes first).
SHEET_COLUMNS = 6


def _label(view: dict[str, float]) -> str:
    return f"az {view['azimuth']:g} el {view['elevation']:g} r {view['radius']:g}"


def _file_name(i: int, view: dict[str, float]) -> str:
    return f"view_{i:02d}_az{view['azimuth']:g}_el{view['elevation']:g}_r{view['radius']:g}.png"


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
    """Generate ``views`` of ``image`` and write them, the model input and a contact sheet.

    Each view ``i`` is sampled with its own generator seeded ``seed + i``, so a view does not change
    when others are added after it. Returns a dict of what was written (the ``--json`` output).
    """
    import torch
    from PIL import Image

    from ..image_io import load_image
    from ..utils.fileio import atomic_save_image
    from ..utils.grid import contact_sheet
    from ._common import load_pipeline, parse_device, parse_dtype

    # 1. Check arguments before any heavy work
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"--steps must be an integer >= 2, got {steps!r}")
    if not 0.1 <= object_size <= 1.0:
        raise ValueError(f"--object-size is the object's share of the image side, in [0.1, 1.0]; got {object_size}")
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o/--output {out} exists and is not a folder")

    # 2. Load and prepare the input image
    pil = load_image(Path(image), name="IMAGE")
    if preprocess:
        from ..preprocess import preprocess_image

        canvas = 256
        prepared = preprocess_image(pil, object_size=round(object_size * canvas), canvas_size=canvas)
        model_input, method = prepared.image, prepared.method
    else:
        model_input, method = pil, "none"

    # 3. Load the model and sample every view in one call
    pipe = load_pipeline(model, dev, dt, trust_pickle=trust_pickle)
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(views))]
    result = pipe(
        model_input,
        views,
        num_inference_steps=steps,
        guidance_scale=guidance,
        eta=eta,
        generator=generators,
        cond_elevation=cond_elevation,
        max_batch=max_batch,
        output_type="pil",
    )

    # 4. Write each view, the model input and a labelled contact sheet (all atomic)
    out.mkdir(parents=True, exist_ok=True)
    # what the model saw: the pipeline's own resize + composite, back to 8-bit RGB
    seen = (pipe.image_to_tensor(model_input)[0].permute(1, 2, 0).numpy() + 1.0) * 127.5
    shown_input = Image.fromarray(seen.round().clip(0, 255).astype("uint8"))
    input_path = atomic_save_image(shown_input, out / "input.png")
    written = []
    for i, (view, img) in enumerate(zip(views, result.images)):
        path = atomic_save_image(img, out / _file_name(i, view))
        written.append({"path": str(path), **view, "seed": seed + i})
    cell = max(128, pipe.image_size)
    tiles = [t.resize((cell, cell), Image.Resampling.NEAREST) if t.width < cell else t for t in (shown_input, *result.images)]
    labels = ["input", *(_label(v) for v in views)]
    rows = [tiles[i : i + SHEET_COLUMNS] for i in range(0, len(tiles), SHEET_COLUMNS)]
    row_labels = None
    col_count = min(SHEET_COLUMNS, len(tiles))
    if len(rows) == 1:
        col_labels = labels
    else:  # several rows: label each cell's column by position, and rows by their first view
        col_labels = [str(c) for c in range(col_count)]
        row_labels = [labels[i] for i in range(0, len(tiles), SHEET_COLUMNS)]
    sheet = contact_sheet(rows, col_labels=col_labels, row_labels=row_labels, cell_size=cell)
    sheet_path = atomic_save_image(sheet, out / "contact_sheet.png")
    return {
        "image": str(image),
        "model": str(model),
        "preprocess": method,
        "steps": steps,
        "guidance": guidance,
        "eta": eta,
        "device": str(dev),
        "dtype": str(dt).replace("torch.", ""),
        "input": str(input_path),
        "views": written,
        "contact_sheet": str(sheet_path),
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
