"""The web app (``zero123 app``): novel views and image to 3D in the browser, offline.

:func:`build_app` makes the gradio page around a pipeline (tests inject a tiny model; it mounts in a
FastAPI app, see :mod:`zero123.app.ui`), :func:`serve` runs it on localhost with no sharing link,
no analytics and no font or script from the internet. gradio (the ``app`` extra) is imported only
when the page is built.
"""

from __future__ import annotations

from .jobs import ROUTES, Route
from .ui import build_app, launch_options, serve

__all__ = ["ROUTES", "Route", "build_app", "launch_options", "serve"]
