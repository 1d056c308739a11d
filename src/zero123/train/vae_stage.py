"""Stage 1 of the from-scratch recipe: a small KL autoencoder trained on the dataset's views.

Loss = MSE(reconstruction, image) + ``chroma_weight`` * MSE of the chroma parts (each pixel minus its
RGB mean) + ``kl_weight`` * KL(posterior || N(0, I)) (per-sample sum, batch mean): the usual
latent-diffusion recipe without the perceptual/adversarial terms, plus a colour term that keeps a
small VAE from staying grey on mostly-white renders. Afterwards the
latent ``scaling_factor`` is set to 1 / std of posterior samples, as Stable Diffusion's 0.18215 was,
so the diffused latents have unit variance.

A signal stops the stage at the next step and its progress is kept: the VAE, the optimizer, the step
and both random streams are written atomically to ``state_dir`` (``RUN_DIR/vae_stage``), and the
next call with the same ``state_dir`` continues from there, giving the VAE an uninterrupted run gives.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import VAEStageConfig
from .data import ViewSource

logger = logging.getLogger("zero123.train")


def _view_batch(source: ViewSource, views, rng: np.random.Generator, batch_size: int) -> torch.Tensor:
    imgs = []
    while len(imgs) < batch_size:
        o, v = views[int(rng.integers(len(views)))]
        img = source.images([(o, v)])
        if img is not None:
            imgs.append(img[0])
    return torch.stack(imgs)


def _chroma(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` minus its per-pixel RGB mean: the colour, without the luminance."""
    return images - images.mean(dim=1, keepdim=True)


def save_stage_state(state_dir: Path, vae, opt, step: int, rng: np.random.Generator, gen: torch.Generator) -> None:
    """The interrupted stage's progress, written atomically (a folder appears complete or not at all)."""
    from ..utils.fileio import atomic_directory

    with atomic_directory(state_dir, overwrite=True) as tmp:
        vae.save_pretrained(tmp / "vae")
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        torch.save(gen.get_state(), tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({"step": step, "numpy_rng": rng.bit_generator.state}))


def load_stage_state(state_dir: Path, vae, opt, rng: np.random.Generator, gen: torch.Generator) -> int:
    """Restore what :func:`save_stage_state` wrote into ``vae``, ``opt``, ``rng`` and ``gen``; returns the step."""
    from safetensors.torch import load_file

    weights = next((state_dir / "vae").glob("*.safetensors"))
    vae.load_state_dict(load_file(str(weights)))
    opt.load_state_dict(torch.load(state_dir / "optimizer.pt", map_location="cpu", weights_only=True))
    gen.set_state(torch.load(state_dir / "rng.pt", weights_only=True))
    state = json.loads((state_dir / "state.json").read_text())
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"])


def train_vae(vae, source: ViewSource, cfg: VAEStageConfig, *, seed: int = 0, device="cpu", progress=None, log=print,
              should_stop: Callable[[], bool] | None = None, state_dir: str | Path | None = None) -> float | None:
    """Train ``vae`` in place for ``cfg.steps`` steps and set its ``scaling_factor``.

    Returns the final mean reconstruction MSE on a held-back batch (images in [-1, 1]), or ``None``
    when ``should_stop()`` turned true first (a signal); then, with ``state_dir``, the progress is
    saved there and a later call with the same ``state_dir`` resumes it.
    """
    # 1. Optimizer and random streams (restored from state_dir when an earlier call was interrupted)
    views = source.all_views()
    rng = np.random.default_rng([seed, 1234])
    gen = torch.Generator(device="cpu").manual_seed(seed)
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    start = 0
    if state_dir is not None and (Path(state_dir) / "state.json").is_file():
        start = load_stage_state(Path(state_dir), vae, opt, rng, gen)
        vae.to(device)
        log(f"vae stage resumed at step {start}/{cfg.steps}")
    task = progress.add_task("VAE stage", total=cfg.steps, completed=start) if progress is not None else None

    # 2. The optimisation steps (a signal saves the progress and stops)
    t0, running = time.perf_counter(), []
    for step in range(start, cfg.steps):
        if should_stop is not None and should_stop():
            if state_dir is not None:
                save_stage_state(Path(state_dir), vae, opt, step, rng, gen)
            log(f"vae stage stopped at step {step}/{cfg.steps}" + (f"; progress saved in {state_dir}" if state_dir else ""))
            return None
        mse, kl = _vae_step(vae, opt, _view_batch(source, views, rng, cfg.batch_size).to(device), gen, cfg)
        running.append(mse)
        if task is not None:
            progress.advance(task)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            rate = (step + 1 - start) * cfg.batch_size / (time.perf_counter() - t0)
            log(f"vae step {step + 1}/{cfg.steps}  mse {np.mean(running):.5f}  kl {kl:.1f}  {rate:.1f} img/s")
            running = []

    # 3. The latent scale: 1 / std of posterior samples over a few batches
    return _set_scaling_factor(vae, source, views, rng, gen, cfg, device, log)


def _vae_step(vae, opt, x: torch.Tensor, gen: torch.Generator, cfg: VAEStageConfig) -> tuple[float, float]:
    """One AdamW step on a batch; returns (reconstruction MSE, KL)."""
    post = vae.encode(x).latent_dist
    z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(x.device)
    rec = vae.decode(z).sample
    mse = F.mse_loss(rec, x)
    kl = post.kl().mean()
    loss = mse + cfg.kl_weight * kl
    if cfg.chroma_weight:
        loss = loss + cfg.chroma_weight * F.mse_loss(_chroma(rec), _chroma(x))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
    opt.step()
    return mse.item(), kl.item()


@torch.no_grad()
def _set_scaling_factor(vae, source, views, rng, gen, cfg: VAEStageConfig, device, log) -> float:
    vae.eval()
    zs, errs = [], []
    for _ in range(max(1, min(8, len(views) // max(1, cfg.batch_size)))):
        x = _view_batch(source, views, rng, cfg.batch_size).to(device)
        post = vae.encode(x).latent_dist
        zs.append((post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)).flatten())
        errs.append(F.mse_loss(vae.decode(post.mode()).sample, x).item())
    std = torch.cat(zs).std().item()
    vae.register_to_config(scaling_factor=float(1.0 / max(std, 1e-6)))
    vae.requires_grad_(False)
    log(f"vae stage done: reconstruction mse {np.mean(errs):.5f}, latent std {std:.4f} -> scaling_factor {vae.config.scaling_factor:.5f}")
    return float(np.mean(errs))
