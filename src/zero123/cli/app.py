"""``zero123 app``: the web app (novel views and image to 3D in the browser) on localhost, a thin
layer over :func:`zero123.app.build_app` and :func:`zero123.app.serve`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from typing import Optional

from ._common import DEFAULT_MODEL, DEFAULT_QUALITY, DeviceOption, DtypeOption, ModelOption, QualityOption, ThreadsOption, TrustPickleOption

#: What to install when gradio is missing.
MISSING_GRADIO = "the web app needs gradio: pip install 'zero123[app]' (or pip install gradio)"


def app(
    model: ModelOption = DEFAULT_MODEL,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "auto",
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 127.0.0.1 = this machine only (0.0.0.0 serves the network: only behind a trusted network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 7860,
    queue_size: Annotated[int, typer.Option("--queue-size", min=1, help="Most jobs waiting for the model (one runs at a time); more are refused with a message.")] = 16,
    quality: QualityOption = DEFAULT_QUALITY,
    steps: Annotated[Optional[int], typer.Option("--steps", min=2, help="Start value of the steps sliders (default: the --quality preset's).")] = None,
    trust_pickle: TrustPickleOption = False,
    threads: ThreadsOption = None,
) -> None:
    """Serve the web app: novel views and image to 3D in the browser, offline (no sharing link, no analytics)."""
    # 1. gradio before anything slow: a clear message when the extra is missing
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError(MISSING_GRADIO) from None
    from ..app import build_app, serve
    from ..loading import load_pipeline
    from ._common import option_names, parse_device, parse_dtype

    # 2. The model, the page, the server (blocks until Ctrl-C)
    dev = parse_device(device)
    dt = parse_dtype(dtype, dev)
    with option_names("model"):
        pipe = load_pipeline(model, device=dev, dtype=dt, trust_pickle=trust_pickle)
    with option_names("quality", "steps", "queue_size"):
        demo = build_app(pipe, quality=quality, default_steps=steps, queue_size=queue_size, model_name=str(model))
    typer.echo(f"zero123 app: model {model} on {dev}; open http://{host}:{port}/ (Ctrl-C stops)")
    serve(demo, host=host, port=port)
