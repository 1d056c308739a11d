"""Run-folder layout and atomic, keep-last-K training checkpoints.

::

    RUN_DIR/
      config.yaml                  the full config of the run
      base/                        the starting components (diffusers/transformers folders: vae/,
                                   image_encoder/, unet/, scheduler/, cc_projection/)
      checkpoints/step-0000500/    unet.safetensors, unet_ema.safetensors, cc_projection.safetensors,
                                   [image_encoder.safetensors], optimizer.pt, lr_scheduler.pt,
                                   rng.pt, state.json
      logs/                        TensorBoard events
      samples/step-0000500.png     sample grids (condition | target | prediction)

A checkpoint folder is written under a temporary name and renamed into place only when complete
(:func:`zero123.utils.fileio.atomic_directory`), so a crash or a full disk during a save leaves
the previous checkpoints as they were; older ones are pruned only after a new one is complete.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from ..utils.fileio import atomic_directory
from ..utils.quiet import no_loading_bars

COMPONENTS = ("vae", "image_encoder", "unet", "scheduler", "cc_projection")
_STEP_RE = re.compile(r"^step-(\d+)$")


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def save_base(components: dict[str, Any], path: Path) -> None:
    """Save the starting components, one sub-folder each, atomically."""
    with atomic_directory(path, overwrite=True) as tmp:
        for name in COMPONENTS:
            components[name].save_pretrained(tmp / name)


@no_loading_bars()
def load_base(path: Path) -> dict[str, Any]:
    """Components saved by :func:`save_base`."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionModelWithProjection

    from ..models.cc_projection import CCProjection

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder has no base model at {path}")
    return dict(
        vae=AutoencoderKL.from_pretrained(path / "vae"),
        image_encoder=CLIPVisionModelWithProjection.from_pretrained(path / "image_encoder"),
        unet=UNet2DConditionModel.from_pretrained(path / "unet"),
        scheduler=DDIMScheduler.from_pretrained(path / "scheduler"),
        cc_projection=CCProjection.from_pretrained(path / "cc_projection"),
    )


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    unet,
    cc_projection,
    image_encoder=None,
    ema_state: dict[str, torch.Tensor],
    ema_num_updates: int,
    optimizer_state: dict,
    lr_scheduler_state: dict,
    rng_states: list,
    keep_last: int,
    extra: dict | None = None,
) -> Path:
    """Write ``checkpoints/step-<step>`` atomically, then prune to the newest ``keep_last``."""
    from safetensors.torch import save_file

    target = Path(run_dir) / "checkpoints" / f"step-{step:07d}"
    with atomic_directory(target, overwrite=True) as tmp:
        save_file(_state(unet), str(tmp / "unet.safetensors"))
        save_file({k: v.contiguous() for k, v in ema_state.items()}, str(tmp / "unet_ema.safetensors"))
        save_file(_state(cc_projection), str(tmp / "cc_projection.safetensors"))
        if image_encoder is not None:
            save_file(_state(image_encoder), str(tmp / "image_encoder.safetensors"))
        torch.save(optimizer_state, tmp / "optimizer.pt")
        torch.save(lr_scheduler_state, tmp / "lr_scheduler.pt")
        torch.save(rng_states, tmp / "rng.pt")
        state = {"step": step, "ema_num_updates": ema_num_updates, **(extra or {})}
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
    for old in checkpoint_dirs(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Everything :func:`save_checkpoint` wrote (tensors on CPU)."""
    from safetensors.torch import load_file

    path = Path(path)
    out: dict[str, Any] = {"state": json.loads((path / "state.json").read_text())}
    for name in ("unet", "unet_ema", "cc_projection", "image_encoder"):
        f = path / f"{name}.safetensors"
        out[name] = load_file(str(f)) if f.exists() else None
    # Our own files: optimizer state holds plain tensors and Python numbers only.
    out["optimizer"] = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    out["lr_scheduler"] = torch.load(path / "lr_scheduler.pt", map_location="cpu", weights_only=True)
    out["rng"] = torch.load(path / "rng.pt", map_location="cpu", weights_only=True)
    return out
