"""Exponential moving average of the U-Net weights (docs/conventions.md, Training recipe).

After optimizer update ``n`` (counting from 0) the decay is ``min(decay, (1 + n) / (10 + n))``,
so early averages follow the weights closely, and ``shadow = d * shadow + (1 - d) * param``.
The shadow is kept in float32 whatever the training precision.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """EMA of ``model``'s floating-point parameters (buffers are copied as they are)."""

    def __init__(self, model: nn.Module, decay: float = 0.9999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            k: p.detach().float().clone() for k, p in model.named_parameters()
        }

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for k, p in model.named_parameters():
            s = self.shadow[k]
            s.mul_(d).add_(p.detach().float(), alpha=1.0 - d)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights into ``model`` (in place)."""
        for k, p in model.named_parameters():
            p.copy_(self.shadow[k].to(p.dtype))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Shadow weights keyed like ``model.state_dict()`` (parameters only)."""
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor], num_updates: int) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise ValueError(f"EMA state is missing {len(missing)} weights, e.g. {sorted(missing)[:3]}")
        for k in self.shadow:
            self.shadow[k] = state[k].detach().float().clone()
        self.num_updates = int(num_updates)
