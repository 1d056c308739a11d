"""``zero123 export``: a training run -> a pipeline folder (EMA weights by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import ThreadsOption


def export(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by `zero123 train`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Pipeline folder to write (loads with Zero123Pipeline.from_pretrained).")],
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Use the EMA U-Net weights (default) or the raw ones.")] = True,
    step: Annotated[Optional[int], typer.Option("--step", help="Export this checkpoint step instead of the latest.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the -o/--out folder if it exists.")] = False,
    threads: ThreadsOption = None,
) -> None:
    """Export a trained model as a pipeline folder."""
    from ..train.export import export_run
    from ._common import progress_display

    with progress_display() as bar:
        bar.add_task("exporting", total=None)
        path = export_run(run_dir, out, use_ema=ema, step=step, overwrite=overwrite)
    typer.echo(f"exported {run_dir} -> {path}")
