"""``zero123 convert SRC -o OUT``: any supported checkpoint -> our pipeline folder (safetensors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ._common import ThreadsOption, TrustPickleOption


def parse_config_overrides(text: str | None) -> dict | None:
    """``--config-overrides`` JSON (``{"unet": {"attention_head_dim": 4}}``) -> dict, or a ValueError naming the flag."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--config-overrides must be a JSON object, got {text!r} ({e})") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"--config-overrides must map component names to objects, got {text!r}")
    return value


def convert(
    src: Annotated[str, typer.Argument(help="Original .ckpt/.safetensors, a diffusers folder (either layout) or a known name.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (our Zero123Pipeline layout, safetensors).")],
    half: Annotated[bool, typer.Option("--half", help="Store float16 weights.")] = False,
    no_ema: Annotated[bool, typer.Option("--no-ema", help="Use the raw U-Net weights instead of the EMA ones.")] = False,
    camera_embedding: Annotated[
        Optional[Literal["relative_radius", "cond_polar"]],
        typer.Option(help="What T's 4th slot holds; default: inferred from the name/metadata, else relative_radius."),
    ] = None,
    trust_pickle: TrustPickleOption = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the -o/--out folder if it exists.")] = False,
    config_overrides: Annotated[
        Optional[str], typer.Option(help="JSON of config values shapes cannot show, for non-standard original files.")
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Convert a Zero-1-to-3 checkpoint into our folder format (loads without remote code or pickle)."""
    import torch

    from ..checkpoints import load_components
    from ..pipeline import Zero123Pipeline
    from ..utils.fileio import atomic_directory
    from ._common import check_output_dir, progress_display

    if out.exists() and not overwrite:
        raise FileExistsError(f"-o/--out {str(out)!r} already exists; pass --overwrite to replace it")
    check_output_dir(out)
    with progress_display() as bar:
        bar.add_task("converting", total=None)
        loaded = load_components(
            src,
            torch_dtype=torch.float16 if half else torch.float32,
            use_ema=not no_ema,
            camera_embedding=camera_embedding,
            trust_pickle=trust_pickle,
            config_overrides=parse_config_overrides(config_overrides),
        )
        pipe = Zero123Pipeline(**loaded.components)
        with atomic_directory(out, overwrite=overwrite) as tmp:
            pipe.save_pretrained(tmp, safe_serialization=True)
    ema = {True: "EMA", False: "raw (EMA present, not used)" if loaded.has_ema else "raw (no EMA in file)", None: "-"}
    typer.echo(
        f"converted {loaded.format} {str(loaded.path)!r} -> {str(out)!r} "
        f"({'float16' if half else 'float32'}, U-Net weights: {ema[loaded.used_ema]}, "
        f"camera embedding: {loaded.camera_embedding})"
    )
