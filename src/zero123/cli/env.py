"""``zero123 env``: a paste-ready bug report of the environment (after ``accelerate env``)."""

from __future__ import annotations

import json

import typer

from ._common import JsonOption


def collect_env() -> dict[str, str]:
    """Versions and hardware facts worth pasting into a bug report, as an ordered ``dict``."""
    import importlib.metadata
    import os
    import platform
    import sys

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    info: dict[str, str] = {
        "zero123": version("zero123"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores",
    }
    for dist in ("torch", "diffusers", "transformers", "accelerate", "safetensors", "numpy", "pillow",
                 "opencv-python-headless", "trimesh", "moderngl", "rembg"):
        info[dist] = version(dist)
    try:
        import torch

        info["torch threads"] = str(torch.get_num_threads())
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            mem = [f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB" for i in range(len(names))]
            info["gpu"] = "; ".join(f"{n} ({m})" for n, m in zip(names, mem))
            info["cuda"] = str(torch.version.cuda)
        else:
            info["gpu"] = "none (CUDA not available)"
        mps = getattr(torch.backends, "mps", None)
        info["mps"] = str(bool(mps and mps.is_available()))
    except Exception as e:  # a broken torch install is exactly what a bug report must show
        info["gpu"] = f"unknown (torch import failed: {type(e).__name__}: {e})"
    info["moderngl egl"] = _moderngl_egl()
    return info


def _moderngl_egl() -> str:
    try:
        import moderngl
    except Exception as e:
        return f"unavailable (moderngl: {type(e).__name__})"
    try:
        ctx = moderngl.create_standalone_context(backend="egl")
    except Exception as e:
        return f"unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    try:
        return f"available ({ctx.info.get('GL_RENDERER', '?')})"
    finally:
        ctx.release()


def env(as_json: JsonOption = False) -> dict[str, str]:
    """Print the environment (versions, CPU/GPU, OpenGL) for a bug report; returns it as a dict."""
    info = collect_env()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo("Copy-and-paste the text below in your GitHub issue.\n")
        typer.echo("\n".join(f"- `{key}`: {value}" for key, value in info.items()))
    return info
