"""Stage 1 of the from-scratch recipe: a small KL autoencoder trained on the dataset's views.

Loss = MSE(reconstruction, image) + ``chroma_weight`` * MSE of the chroma parts (each pixel minus its
RGB mean) + ``kl_weight`` * KL(posterior || N(0, I)) (per-sample sum, batch mean): the usual
latent-diffusion recipe without the perceptual/adversarial terms, plus a colour term that keeps a
small VAE from staying grey on mostly-white renders. Afterwards the
latent ``scaling_factor`` is set to 1 / std of posterior samples, as Stable Diffusion's 0.18215 was,
so the diffused latents have unit variance.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

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


def train_vae(vae, source: ViewSource, cfg: VAEStageConfig, *, seed: int = 0, device="cpu", progress=None, log=print,
              should_stop: Callable[[], bool] | None = None) -> float | None:
    """Train ``vae`` in place for ``cfg.steps`` steps and set its ``scaling_factor``. Returns the
    final mean reconstruction MSE on a held-back batch (images in [-1, 1]), or ``None`` when
    ``should_stop()`` turned true first (a signal): the stage is then abandoned, to be rerun."""
    views = source.all_views()
    rng = np.random.default_rng([seed, 1234])
    gen = torch.Generator(device="cpu").manual_seed(seed)
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    task = progress.add_task("VAE stage", total=cfg.steps) if progress is not None else None
    t0, running = time.perf_counter(), []
    for step in range(cfg.steps):
        if should_stop is not None and should_stop():
            log(f"vae stage stopped at step {step}/{cfg.steps}")
            return None
        x = _view_batch(source, views, rng, cfg.batch_size).to(device)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)
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
        running.append(mse.item())
        if task is not None:
            progress.advance(task)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            rate = (step + 1) * cfg.batch_size / (time.perf_counter() - t0)
            log(f"vae step {step + 1}/{cfg.steps}  mse {np.mean(running):.5f}  kl {kl.item():.1f}  {rate:.1f} img/s")
            running = []
    # latent scale: 1 / std of posterior samples over a few batches
    vae.eval()
    with torch.no_grad():
        zs, errs = [], []
        for _ in range(max(1, min(8, len(views) // max(1, cfg.batch_size)))):
            x = _view_batch(source, views, rng, cfg.batch_size).to(device)
            post = vae.encode(x).latent_dist
            zs.append(post.sample(generator=None).flatten())
            errs.append(F.mse_loss(vae.decode(post.mode()).sample, x).item())
        std = torch.cat(zs).std().item()
    vae.register_to_config(scaling_factor=float(1.0 / max(std, 1e-6)))
    vae.requires_grad_(False)
    log(f"vae stage done: reconstruction mse {np.mean(errs):.5f}, latent std {std:.4f} -> scaling_factor {vae.config.scaling_factor:.5f}")
    return float(np.mean(errs))
