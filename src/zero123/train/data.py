"""Training pairs from a ``views_release`` folder: deterministic sampling, an in-memory view
cache, and skipping of unreadable images.

Pair ``k`` (a global sample counter) is a pure function of ``(seed, k)``: epoch ``k // N`` walks a
seeded permutation of the N objects and draws two distinct views of each (docs/conventions.md, Dataset layout). Sample
``k`` of optimizer step ``s`` is ``((s * grad_accum + micro) * world + rank) * batch + b``, so the data
position is the step counter itself and resuming continues the exact same stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..camera import relative_pose_embedding

logger = logging.getLogger("zero123.train")

#: Errors that mean "this image file is unreadable" (PIL raises OSError subclasses, the reader
#: ValueError for bad content).
IMAGE_ERRORS = (OSError, ValueError, SyntaxError)


def open_dataset(root, *, split: str, image_size: int, seed: int, camera_embedding: str):
    """The :class:`ViewsReleaseDataset` (clear errors for empty folders and unpaired .png/.npy files)."""
    from ..data.views_release import ViewsReleaseDataset

    return ViewsReleaseDataset(root, split=split, image_size=image_size, seed=seed, camera_embedding=camera_embedding)


class PairSampler:
    """Deterministic ``(object, cond_view, target_view)`` for any global sample index."""

    def __init__(self, num_views: list[int], seed: int):
        if not num_views:
            raise ValueError("the dataset has no objects")
        self.num_views = list(num_views)
        self.seed = int(seed)
        self._perm_cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            self._perm_cache[epoch] = np.random.default_rng([self.seed, epoch, 7]).permutation(len(self.num_views))
        return self._perm_cache[epoch]

    def __call__(self, k: int, attempt: int = 0) -> tuple[int, int, int]:
        n = len(self.num_views)
        epoch, pos = divmod(k, n)
        obj = int(self._perm(epoch)[pos])
        if attempt:  # re-draw after an unreadable view: another object, deterministically
            obj = int(np.random.default_rng([self.seed, k, attempt, 11]).integers(n))
        rng = np.random.default_rng([self.seed, epoch, pos, attempt])
        c, t = rng.choice(self.num_views[obj], size=2, replace=False)
        return obj, int(c), int(t)


@dataclass
class Batch:
    """One micro-batch. Pixels in [-1, 1]; latents per docs/conventions.md, Conditioning."""

    cond_pixels: torch.Tensor  # (B, 3, H, W)
    pose: torch.Tensor  # (B, 4)
    target_pixels: torch.Tensor | None = None  # (B, 3, H, W), uncached path
    cond_latent_mode: torch.Tensor | None = None  # (B, 4, h, w) unscaled posterior mode, cached path
    target_latent_mean: torch.Tensor | None = None  # (B, 4, h, w) unscaled, cached path
    target_latent_std: torch.Tensor | None = None  # (B, 4, h, w), cached path


class ViewSource:
    """Reads views through the dataset, optionally from an in-memory cache, skipping bad files.

    The cache holds 8-bit pixels and, once :meth:`cache_latents` ran, the frozen VAE's posterior
    mean and std of every view: the condition latent is the mode (= mean) and a target latent is
    ``(mean + std * noise) * scaling_factor``, i.e. exactly ``latent_dist.sample() * s`` with fresh
    noise each step, so caching does not change what is trained.
    """

    def __init__(self, dataset, camera_embedding: str, *, use_cache: bool):
        self.ds = dataset
        self.object_ids = list(dataset.object_ids)
        # the reader's num_views checks every object up front: each view NNN needs NNN.png and
        # NNN.npy (zero123.data.views_release.object_views raises a clear error otherwise)
        self.num_views = [int(dataset.num_views(o)) for o in self.object_ids]
        self.camera_embedding = camera_embedding
        self.use_cache = use_cache
        self.bad: set[tuple[int, int]] = set()
        self.w2c = {}
        self.pixels: dict[tuple[int, int], torch.Tensor] = {}
        self.lat_mean: dict[tuple[int, int], torch.Tensor] = {}
        self.lat_std: dict[tuple[int, int], torch.Tensor] = {}
        self.skipped = 0

    def world_to_cam(self, o: int, v: int) -> np.ndarray:
        if (o, v) not in self.w2c:
            self.w2c[(o, v)] = np.asarray(self.ds.load_world_to_cam(self.object_ids[o], v), dtype=np.float64)
        return self.w2c[(o, v)]

    def poses(self, pairs: list[tuple[tuple[int, int], tuple[int, int]]]) -> torch.Tensor:
        """``(B, 4)`` T of ``[((object, cond_view), (object, target_view)), ...]``, from the stored
        matrices through :func:`zero123.camera.relative_pose_embedding` (the trainer's only T)."""
        cond = np.stack([self.world_to_cam(*kc) for kc, _ in pairs])
        target = np.stack([self.world_to_cam(*kt) for _, kt in pairs])
        return relative_pose_embedding(cond, target, self.camera_embedding)

    def _load(self, o: int, v: int) -> torch.Tensor | None:
        if (o, v) in self.bad:
            return None
        if (o, v) in self.pixels:
            return self.pixels[(o, v)].float() / 127.5 - 1.0
        try:
            img = self.ds.load_image(self.object_ids[o], v)
        except IMAGE_ERRORS as e:
            self.bad.add((o, v))
            self.skipped += 1
            logger.warning("skipping unreadable view %s/%03d: %s", self.object_ids[o], v, e)
            return None
        img = torch.as_tensor(img, dtype=torch.float32)
        if self.use_cache:
            self.pixels[(o, v)] = ((img.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
            img = self.pixels[(o, v)].float() / 127.5 - 1.0
        return img

    def all_views(self) -> list[tuple[int, int]]:
        return [(o, v) for o, n in enumerate(self.num_views) for v in range(n)]

    @torch.no_grad()
    def cache_latents(self, vae, *, batch_size: int = 32, device="cpu", progress=None) -> None:
        """Load every view once and store the frozen VAE's posterior mean/std (unscaled)."""
        views = [ov for ov in self.all_views() if ov not in self.lat_mean]
        todo = progress.add_task("caching latents", total=len(views)) if progress is not None else None
        for i in range(0, len(views), batch_size):
            chunk = []
            for ov in views[i:i + batch_size]:
                img = self._load(*ov)
                if img is not None:
                    chunk.append((ov, img))
            if chunk:
                x = torch.stack([img for _, img in chunk]).to(device=device, dtype=vae.dtype)
                dist = vae.encode(x).latent_dist
                for j, (ov, _) in enumerate(chunk):
                    self.lat_mean[ov] = dist.mean[j].float().cpu()
                    self.lat_std[ov] = dist.std[j].float().cpu()
            if todo is not None:
                progress.advance(todo, len(views[i:i + batch_size]))

    def images(self, keys: list[tuple[int, int]]) -> torch.Tensor | None:
        """Pixels of several views (None if any is unreadable)."""
        out = [self._load(*k) for k in keys]
        return None if any(x is None for x in out) else torch.stack(out)

    def batch(self, sampler: PairSampler, indices: list[int]) -> Batch:
        """The micro-batch for global sample indices ``indices``; unreadable pairs are re-drawn."""
        conds, targets, keys = [], [], []
        for k in indices:
            for attempt in range(100):
                o, c, t = sampler(k, attempt)
                ci, ti = self._load(o, c), self._load(o, t)
                if ci is not None and ti is not None:
                    break
            else:
                raise RuntimeError("could not find a readable pair of views after 100 attempts; is the dataset corrupt?")
            conds.append(ci)
            targets.append(ti)
            keys.append(((o, c), (o, t)))
        b = Batch(cond_pixels=torch.stack(conds), pose=self.poses(keys))
        if self.lat_mean and all(kc in self.lat_mean and kt in self.lat_mean for kc, kt in keys):
            b.cond_latent_mode = torch.stack([self.lat_mean[kc] for kc, _ in keys])
            b.target_latent_mean = torch.stack([self.lat_mean[kt] for _, kt in keys])
            b.target_latent_std = torch.stack([self.lat_std[kt] for _, kt in keys])
        else:
            b.target_pixels = torch.stack(targets)
        return b
