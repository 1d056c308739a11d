"""``zero123 info MODEL``: format, components, parameter counts, camera embedding, prediction type, EMA, dtype."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from ._common import JsonOption, ThreadsOption, TrustPickleOption
from .convert import parse_config_overrides


def describe(model: str, *, trust_pickle: bool = False, config_overrides: dict | None = None) -> dict[str, Any]:
    """What :func:`zero123.checkpoints.load_components` finds in ``model``, as a plain dict.

    An original file is memory-mapped and loaded in its stored dtype, so this is cheap even for a
    15.5 GB checkpoint.
    """
    from ..checkpoints import load_components
    from ..checkpoints.layouts import PROJECTION_LAYOUT, stored_dtype

    loaded = load_components(model, torch_dtype=None, trust_pickle=trust_pickle, config_overrides=config_overrides)
    comps = {}
    for name in ("unet", "vae", "image_encoder", "cc_projection", "scheduler"):
        obj = loaded.components[name]
        entry: dict[str, Any] = {"class": type(obj).__name__}
        if hasattr(obj, "parameters"):
            params = list(obj.parameters())
            entry["parameters"] = sum(p.numel() for p in params)
            # what is stored: a folder's loader may cast, so read the dtype from its weight files
            sub = PROJECTION_LAYOUT[loaded.format][0] if name == "cc_projection" and loaded.format != "ldm" else name
            on_disk = stored_dtype(loaded.path, sub) if loaded.format != "ldm" else None
            entry["dtype"] = on_disk or str(params[0].dtype).replace("torch.", "")
        comps[name] = entry
    return {
        "path": str(loaded.path),
        "format": loaded.format,
        "camera_embedding": loaded.camera_embedding,
        "ema": {None: "n/a (format stores one U-Net)", True: "present", False: "absent"}[loaded.has_ema],
        "image_size": int(loaded.components["vae"].config.sample_size),
        "in_channels": int(loaded.components["unet"].config.in_channels),
        "prediction_type": loaded.components["scheduler"].config.get("prediction_type", "epsilon"),
        "components": comps,
        "total_parameters": sum(c.get("parameters", 0) for c in comps.values()),
        "ignored_keys": len(loaded.ignored_keys),
    }


def info(
    model: Annotated[str, typer.Argument(help="A checkpoint file, a folder (any layout) or a known name.")],
    trust_pickle: TrustPickleOption = False,
    config_overrides: Annotated[Optional[str], typer.Option(help="JSON config values for non-standard original files.")] = None,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Describe a Zero-1-to-3 checkpoint without converting it (dtypes as stored on disk)."""
    d = describe(model, trust_pickle=trust_pickle, config_overrides=parse_config_overrides(config_overrides))
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{d['path']}[/bold]")
    console.print(
        f"format: {d['format']}   camera embedding: {d['camera_embedding']}   EMA: {d['ema']}   "
        f"image size: {d['image_size']}   U-Net in_channels: {d['in_channels']}   predicts: {d['prediction_type']}"
    )
    table = Table("component", "class", "parameters", "dtype")
    for name, c in d["components"].items():
        table.add_row(name, c["class"], f"{c['parameters']:,}" if "parameters" in c else "-", c.get("dtype", "-"))
    table.add_row("total", "", f"{d['total_parameters']:,}", "")
    console.print(table)
    if d["ignored_keys"]:
        console.print(f"{d['ignored_keys']} keys ignored on purpose (text-side CLIP, diffusion buffers, unused U-Net copy)")
