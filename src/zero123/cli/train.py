"""``zero123 train``: train a Zero123 model on a ``views_release`` folder (see zero123.train.loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import DeviceOption, OutOption, ProgressOption, ThreadsOption


def train(
    data: Annotated[Path, typer.Option("--data", help="views_release folder: <object>/NNN.png + NNN.npy (+ valid_paths.json).")],
    config: Annotated[Path, typer.Option("--config", help="YAML config (see configs/*.yaml); saved into the run folder.")],
    out: OutOption,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its latest checkpoint (or its interrupted VAE stage).")] = False,
    device: DeviceOption = "auto",
    progress: ProgressOption = True,
    threads: ThreadsOption = None,
) -> None:
    """Train (or fine-tune) a Zero123 model into the run folder --out (config, checkpoints, TensorBoard
    logs, sample grids). Ctrl-C / SIGTERM save a checkpoint (or the VAE stage's progress) before
    exiting; continue with --resume.

    Multi-process / multi-GPU: ``accelerate launch --num_processes N $(which zero123) train ...``.
    """
    import logging
    import os

    from rich.logging import RichHandler

    from ..train.config import Config
    from ..train.loop import train as run_training
    from ._common import option_names

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    cfg = Config.load(config)
    with option_names("device"):
        result = run_training(data, cfg, out, resume=resume, show_progress=progress, device=device)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if result.interrupted:
        where = f"checkpoint {result.last_checkpoint}" if result.last_checkpoint else f"VAE stage progress in {out / 'vae_stage'}"
        typer.echo(f"interrupted at step {result.step}; {where}; continue with --resume")
        raise typer.Exit(code=130)
    typer.echo(
        f"done: step {result.step}, loss {result.final_loss:.4f}, {result.samples_per_second:.1f} samples/s, "
        f"checkpoint {result.last_checkpoint}"
    )
