"""The DDIM timestep grid of the original Zero-1-to-3 sampler (docs/conventions.md, Sampling).

The original release samples with DDIM on the grid ``c = 1000 // S``,
``grid = [0, c, 2c, ...] + 1`` and **drops the last (noisiest) entry** before sampling, so asking
for ``S = 50`` runs 49 steps ``961, 941, ..., 1``; ``S = 10`` runs 9 steps ``801 ... 1``;
``S = 75`` (c = 13, 77 grid entries) runs 76 steps ``976 ... 1``. Each step goes from ``t`` to
``t - c``; the last step (from ``t = 1``) goes to ``alpha_bar[0] = 0.99915`` (not 1).

diffusers' ``DDIMScheduler`` with ``timestep_spacing="leading", steps_offset=1`` runs
``981 ... 1`` for S = 50 (one step more, starting one grid point noisier), and differs more when
S does not divide 1000. Both are offered: ``"original"`` (default, reproduces official outputs) and
``"diffusers"`` (whatever the scheduler's own ``set_timesteps`` gives).

With a ``DDIMScheduler`` the original grid needs no custom step: ``DDIMScheduler.step`` computes the
previous timestep as ``t - num_train_timesteps // num_inference_steps`` = ``t - c`` and uses
``alphas_cumprod[0]`` below 0 when ``set_alpha_to_one=False``, exactly the original's
``alphas_prev`` (indexed on the full grid).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

TimestepSpacing = Literal["original", "diffusers"]
TIMESTEP_SPACINGS: tuple[str, ...] = ("original", "diffusers")


def _check_steps(num_inference_steps, num_train_timesteps: int) -> int:
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)):
        raise TypeError(f"num_inference_steps must be an int, got {type(num_inference_steps).__name__}: {num_inference_steps!r}")
    s = int(num_inference_steps)
    if not 2 <= s <= num_train_timesteps // 2:
        # S = 1 would drop the only grid entry; above T/2 the stride 1000 // S collapses to 1.
        raise ValueError(
            f"num_inference_steps must be in [2, {num_train_timesteps // 2}] for the original DDIM grid, got {s}"
        )
    return s


def original_ddim_grid(num_inference_steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """The full original DDIM grid, ascending: ``range(0, T, T // S) + 1`` (int64).

    >>> original_ddim_grid(10).tolist()
    [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    """
    s = _check_steps(num_inference_steps, num_train_timesteps)
    return np.arange(0, num_train_timesteps, num_train_timesteps // s, dtype=np.int64) + 1


def original_ddim_timesteps(num_inference_steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """Timesteps the original sampler actually runs, from noisy to clean (int64).

    The grid's last (noisiest) entry is dropped, so the count is ``len(grid) - 1``.

    >>> original_ddim_timesteps(10).tolist()
    [801, 701, 601, 501, 401, 301, 201, 101, 1]
    """
    return original_ddim_grid(num_inference_steps, num_train_timesteps)[:-1][::-1].copy()


def ddim_previous_offset(num_inference_steps: int, num_train_timesteps: int = 1000) -> int:
    """Distance from one timestep to the next (less noisy) one: ``T // S``."""
    return num_train_timesteps // _check_steps(num_inference_steps, num_train_timesteps)


def alphas_cumprod_float64(scheduler_config) -> torch.Tensor:
    """``alpha_bar`` of a ``scaled_linear`` / ``linear`` schedule computed in float64, as the original
    stores them (diffusers computes them in float32; differences up to 5e-7)."""
    t = int(scheduler_config["num_train_timesteps"])
    b0, b1 = float(scheduler_config["beta_start"]), float(scheduler_config["beta_end"])
    kind = scheduler_config.get("beta_schedule", "scaled_linear")
    if kind == "scaled_linear":
        betas = torch.linspace(b0**0.5, b1**0.5, t, dtype=torch.float64) ** 2
    elif kind == "linear":
        betas = torch.linspace(b0, b1, t, dtype=torch.float64)
    else:
        raise ValueError(f"alphas_cumprod_float64 supports beta_schedule 'scaled_linear' or 'linear', got {kind!r}")
    return torch.cumprod(1.0 - betas, dim=0)


def set_timesteps(
    scheduler,
    num_inference_steps: int,
    spacing: TimestepSpacing = "original",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Prepare ``scheduler`` for ``num_inference_steps`` and return the timesteps to run (noisy first).

    ``"original"`` installs the original Zero-1-to-3 grid (requires a ``DDIMScheduler``-like
    scheduler whose ``step`` goes back by ``T // S``); ``"diffusers"`` keeps the scheduler's own
    ``set_timesteps``.
    """
    if spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"timestep_spacing must be one of {TIMESTEP_SPACINGS}, got {spacing!r}")
    if spacing == "diffusers":
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
        scheduler.set_timesteps(int(num_inference_steps), device=device)
        return scheduler.timesteps
    from diffusers import DDIMScheduler

    if not isinstance(scheduler, DDIMScheduler):
        raise ValueError(
            f"timestep_spacing='original' needs a DDIMScheduler, the pipeline has {type(scheduler).__name__}; "
            "pass timestep_spacing='diffusers' to use that scheduler's own spacing"
        )
    num_train = int(scheduler.config.num_train_timesteps)
    grid = original_ddim_timesteps(num_inference_steps, num_train)
    # set num_inference_steps (step() derives the previous timestep from it), then swap the grid
    scheduler.set_timesteps(int(num_inference_steps), device=device)
    scheduler.timesteps = torch.from_numpy(grid).to(device if device is not None else "cpu")
    return scheduler.timesteps


# ---------------------------------------------------------------------------------- solvers
Solver = Literal["ddim", "dpm++", "euler-a", "unipc"]
#: Solvers the pipeline samples with (docs/conventions.md, "Sampling"). ``"ddim"`` is the pipeline's
#: own scheduler (the original grid by default); the others are diffusers schedulers built from its config.
SOLVERS: tuple[str, ...] = ("ddim", "dpm++", "euler-a", "unipc")
#: Solvers that draw fresh noise at every step (each sample's from its own generator).
STOCHASTIC_SOLVERS: tuple[str, ...] = ("euler-a",)


def check_solver(solver) -> str:
    """``solver`` if it is one of :data:`SOLVERS`, else a ``ValueError`` naming the choices.

    >>> check_solver("dpm++")
    'dpm++'
    """
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}")
    return solver


def make_scheduler(solver: Solver, config):
    """A fresh diffusers scheduler for ``solver`` built with ``from_config`` from ``config`` (the
    pipeline's DDIM scheduler config: the beta schedule and ``prediction_type`` carry over, so
    v-prediction models work).

    * ``"ddim"``: ``DDIMScheduler`` as configured (use :func:`set_timesteps` for the original grid).
    * ``"dpm++"``: ``DPMSolverMultistepScheduler``, ``algorithm_type="dpmsolver++"``, 2nd order,
      deterministic (eta is not used).
    * ``"euler-a"``: ``EulerAncestralDiscreteScheduler`` (ancestral: new noise every step).
    * ``"unipc"``: ``UniPCMultistepScheduler`` (bh2, 2nd order), deterministic.

    The three non-DDIM solvers use ``timestep_spacing="trailing"``: their first step starts at the
    noisiest timestep (999) whatever the step count S, where ``"leading"`` (the DDIM config's) would
    start at ``T - T // S + 1`` (901 for S = 10), skipping the noisiest tenth of the schedule.
    """
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, UniPCMultistepScheduler

    check_solver(solver)
    if solver == "ddim":
        return DDIMScheduler.from_config(config)
    if solver == "dpm++":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing"
        )
    if solver == "euler-a":
        return EulerAncestralDiscreteScheduler.from_config(config, timestep_spacing="trailing")
    return UniPCMultistepScheduler.from_config(config, solver_type="bh2", solver_order=2, timestep_spacing="trailing")
