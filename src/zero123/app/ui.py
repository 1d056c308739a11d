"""The gradio app: :func:`build_app` makes the page around a pipeline, :func:`launch_options` the
offline theme, :func:`serve` runs it (``zero123 app``).

Mount it in a FastAPI app next to your own endpoints (a health check here)::

    import gradio as gr
    from fastapi import FastAPI
    from zero123.app import build_app, launch_options
    from zero123.loading import load_pipeline

    api = FastAPI()

    @api.get("/health")
    def health():
        return {"status": "ok"}

    api = gr.mount_gradio_app(api, build_app(load_pipeline("bundled")), path="/zero123", **launch_options())
    # uvicorn.run(api, host="127.0.0.1", port=8000)

(``tests/test_app.py`` mounts it this way.) Programmatic use with ``gradio_client``::

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    gallery, model_input = client.predict(handle_file("photo.png"), 90, 0, 1, api_name="/novel_views")

gradio is imported inside the functions: the rest of the package (and its doctests) never needs it.
"""

# no `from __future__ import annotations`: gradio reads the handlers' `gr.Request` annotations as objects

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from ..assets import EXAMPLE_IMAGE
from . import cameras as C
from .jobs import ROUTES, JobCancelled, JobFolders, ModelRunner, Route, get_route

#: The advanced sampling controls, in the novel-views handler's argument order: (SamplingSettings
#: field, label, kind, keyword arguments). The handler builds ``SamplingSettings(**{field: value})``
#: from them, so a new sampler setting is one more entry here and one more handler argument.
SAMPLING_CONTROLS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("steps", "Steps", "slider", dict(minimum=2, maximum=200, step=1)),
    ("guidance", "Guidance scale", "slider", dict(minimum=1.0, maximum=10.0, step=0.1)),
    ("eta", "DDIM eta (ddim only)", "slider", dict(minimum=0.0, maximum=1.0, step=0.05)),
    ("solver", "Solver", "dropdown", {}),
)
MAX_SAMPLES = 8
CSS = "#zero123-camera-plot img { object-fit: contain; }"


def launch_options() -> dict[str, Any]:
    """``theme`` and ``css`` for ``Blocks.launch`` / ``gr.mount_gradio_app``: system fonts only, so
    the page loads nothing from the internet."""
    import gradio as gr

    system = [gr.themes.Font("system-ui"), gr.themes.Font("sans-serif")]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")]
    return {"theme": gr.themes.Default(font=system, font_mono=mono), "css": CSS}


def _user_error(e: Exception):
    """A library error as the page's error message (no traceback)."""
    import gradio as gr

    return gr.Error(str(e), print_exception=False)


def _image_component(**kwargs):
    """``gr.Image`` that hands the uploaded file's path to the handler unread, so every upload goes
    through :func:`zero123.image_io.load_image`'s checks (size, type) and its clear messages (plain
    ``gr.Image`` would open it with PIL first and fail with gradio's own error). The override is on
    the instance: a subclass would make gradio write a ``.pyi`` file next to this module."""
    import types

    import gradio as gr

    component = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], format="png", **kwargs)
    plain = component.preprocess

    def preprocess(self, payload):
        if payload is None or (payload.url and payload.url.startswith("data:")):
            return plain(payload)
        return str(payload.path)

    component.preprocess = types.MethodType(preprocess, component)
    return component


def viewer_camera(elevation_deg: float) -> tuple[float, float, None]:
    """``gr.Model3D``'s ``camera_position`` (alpha, beta, radius) that looks at the mesh from the
    input photo's camera: ``mesh.glb`` is +Y up with the world's +X (the input camera's side, azimuth
    0) kept as +X, which babylon.js's orbit camera sees at alpha 0; beta is measured from +Y.

    >>> viewer_camera(15.0)
    (0.0, 75.0, None)
    """
    return (0.0, 90.0 - float(elevation_deg), None)


def build_app(
    pipe,
    *,
    route_presets: Mapping[str, Mapping[str, Any]] | None = None,
    routes: tuple[Route, ...] = ROUTES,
    quality: str = "fast",
    default_steps: int | None = None,
    turntable_frames: int = 36,
    queue_size: int = 16,
    delete_cache: tuple[int, int] = (600, 3600),
    title: str = "zero123",
    model_name: str | None = None,
):
    """The web app around ``pipe`` (a :class:`zero123.Zero123Pipeline`).

    Args:
        pipe: the pipeline every job runs on (one job at a time).
        route_presets: route name -> {preset name -> that route's settings} for the 3D tab
            (default: each route's own ``presets()``, fast and quality); a route's first preset is
            its default.
        routes: the 3D routes listed (default :data:`zero123.app.jobs.ROUTES`).
        quality: the sampler preset the controls start from (:data:`zero123.nvs.QUALITY_PRESETS`;
            ``"fast"``, the one the held-out table favours, or ``"original"``, the original demo's).
        default_steps: the steps sliders' start value (default: the preset's).
        turntable_frames: frames of the 3D tab's turntable video.
        queue_size: most jobs waiting in the queue (more are refused with a message).
        delete_cache: gradio's ``(frequency, age)`` in seconds for its temporary files; the app's
            3D job folders are removed after the same age.
        title: the browser tab's title.
        model_name: how the page names the model (default: the pipeline's ``name_or_path``).

    Returns:
        ``gr.Blocks`` with its queue set; run it with :func:`serve` (or ``launch(**launch_options())``).
        Event API names: ``novel_views`` and ``reconstruct``.
    """
    import gradio as gr

    from ..nvs import QUALITY_PRESETS, Preprocessing, SamplingSettings, generate_views, prepare_input
    from ..schedule import SOLVERS
    from ..threed.fit import fit_device
    from ..threed.reconstruct import DEFAULT_INPUT_ELEVATION

    if not routes:
        raise ValueError("routes must list at least one 3D route")
    route_presets = dict(route_presets or {})
    presets_of = {r.name: dict(route_presets.get(r.name) or r.presets()) for r in routes}
    if not all(presets_of.values()):
        raise ValueError(f"every route needs at least one preset, got {presets_of}")
    first_preset = {name: next(iter(p)) for name, p in presets_of.items()}
    runner = ModelRunner()
    folders = JobFolders(max_age_s=delete_cache[1])
    cond_polar = getattr(pipe, "camera_embedding", "original") == "cond_polar"
    if quality not in QUALITY_PRESETS:
        raise ValueError(f"quality must be one of {list(QUALITY_PRESETS)}, got {quality!r}")
    start = QUALITY_PRESETS[quality] if default_steps is None else dataclasses.replace(QUALITY_PRESETS[quality], steps=default_steps)
    defaults = dataclasses.asdict(start)
    device = fit_device(pipe.device)

    def preprocessing_of(preprocess: bool, object_size: float) -> Preprocessing:
        try:
            return Preprocessing(segment="auto" if preprocess else "none", object_size=float(object_size))
        except ValueError as e:
            raise _user_error(e) from None

    def prepared_of(image: str | None, preprocess: bool, object_size: float):
        if image is None:
            raise gr.Error("Upload an image first (a photo of one object; PNG with transparency works best).")
        try:
            return prepare_input(image, preprocessing_of(preprocess, object_size))
        except (ValueError, TypeError, FileNotFoundError) as e:
            raise _user_error(e) from None

    # ------------------------------------------------------------------ handlers
    def preview(image, preprocess, object_size):
        """The prepared model input (cut-out, recentred) of an upload; errors as page messages."""
        if image is None:
            return None
        return prepared_of(image, preprocess, object_size).image

    def plot(azimuth, elevation, radius, input_elevation):
        el0 = float(input_elevation) if cond_polar else 0.0
        caption = None if cond_polar else f"az {azimuth:g}  el {elevation:g}  r {radius:g}  (input drawn at elevation 0)"
        return C.camera_plot(float(azimuth), float(elevation), float(radius), el0, caption=caption)

    def preset(name):
        return C.preset_camera(name)

    def novel_views(image, azimuth, elevation, radius, input_elevation=0.0, samples=1, seed=0, steps=start.steps,
                    guidance=defaults["guidance"], eta=defaults["eta"], solver=defaults["solver"], preprocess=True,
                    object_size=200 / 256,
                    request: gr.Request = None, progress=gr.Progress()):
        """Generate ``samples`` views of ``image`` from one camera change (view i seeded seed + i).
        Returns the gallery ``[(image, label)]`` and the model input."""
        try:
            camera = C.parse_camera((azimuth, elevation, radius))
            samples = int(samples)
            if not 1 <= samples <= MAX_SAMPLES:
                raise ValueError(f"samples must be in [1, {MAX_SAMPLES}], got {samples}")
            values = (int(steps), float(guidance), float(eta), str(solver))
            settings = SamplingSettings(**dict(zip([c[0] for c in SAMPLING_CONTROLS], values)))
        except ValueError as e:
            raise _user_error(e) from None
        prepared = prepared_of(image, preprocess, object_size)
        progress(0, desc="waiting for the model")
        with runner.job(getattr(request, "session_hash", None)) as check:
            def on_step(done, total):
                check()
                progress((done, total), desc=f"sampling {samples} view(s)")

            try:
                result = generate_views(pipe, prepared, [camera] * samples, settings=settings, seed=int(seed),
                                        cond_elevation=float(input_elevation) if cond_polar else None, on_step=on_step)
            except JobCancelled:
                raise gr.Error("Stopped.", print_exception=False) from None
            except ValueError as e:
                raise _user_error(e) from None
        gallery = [(v.image, f"{v.label}, seed {v.seed}") for v in result.views]
        return gallery, result.model_input

    def reconstruct(image, route=routes[0].name, preset=first_preset[routes[0].name], elevation=DEFAULT_INPUT_ELEVATION,
                    steps=start.steps, seed=0, preprocess=True, estimate_elevation=False, request: gr.Request = None,
                    progress=gr.Progress()):
        """A textured mesh of ``image``: returns the GLB (viewer), the files (GLB, OBJ + MTL + texture),
        the turntable video, the generated views (None for routes without) and a summary line.
        ``estimate_elevation``: the photo's elevation estimated with the model
        (:func:`zero123.threed.elevation.estimate_elevation`) instead of ``elevation``."""
        from ..threed.export import write_reconstruction

        try:
            chosen = get_route(route, routes)
            presets = presets_of[chosen.name]
            if preset not in presets:
                raise ValueError(f"preset must be one of {list(presets)} for route {chosen.name!r}, got {preset!r}")
            sampling = SamplingSettings(steps=int(steps), solver=defaults["solver"], guidance=defaults["guidance"], eta=defaults["eta"])
        except ValueError as e:
            raise _user_error(e) from None
        prepared = prepared_of(image, preprocess, 200 / 256)
        progress(0, desc="waiting for the model")
        with runner.job(getattr(request, "session_hash", None)) as check:
            def on_stage(stage, done, total):
                check()
                progress((done, total), desc=stage)

            try:
                how = "given"
                if estimate_elevation:
                    from ..threed.elevation import ElevationSettings
                    from ..threed.elevation import estimate_elevation as estimate

                    found = estimate(pipe, prepared, ElevationSettings(sampling=dataclasses.replace(sampling, steps=min(sampling.steps, 20))),
                                     seed=int(seed), progress=lambda done, total: on_stage("elevation", done, total))
                    elevation, how = found.elevation_deg, "estimated" if found.method != "fallback" else "no signal: the fallback"
                rec = chosen.run(pipe, prepared, elevation_deg=float(elevation), preset=presets[preset], sampling=sampling,
                                 seed=int(seed), device=device, progress=on_stage)
                progress(0.99, desc="writing the files and the turntable")
                out = folders.new()
                files = write_reconstruction(rec, out, turntable="mp4", frames=turntable_frames,
                                             report_extra={"route_name": chosen.name, "preset": preset,
                                                           "elevation_source": how})
            except JobCancelled:
                raise gr.Error("Stopped.", print_exception=False) from None
            except ValueError as e:
                raise _user_error(e) from None
        downloads = [str(p) for p in (files.glb, files.obj, files.mtl, files.texture)]
        views = out / "views.png"  # the generated views, for the routes that make them
        summary = (f"**{chosen.label}**, preset {preset}: elevation {float(elevation):.1f} deg ({how}), "
                   f"{rec.mesh.num_faces} faces, {rec.timings.get('total', 0.0):.0f} s")
        return str(files.glb), downloads, str(files.turntable), str(views) if views.is_file() else None, summary

    def stop(request: gr.Request = None):
        runner.stop(getattr(request, "session_hash", None))

    # ------------------------------------------------------------------ the page
    free = dict(queue=False, show_progress="hidden")  # cheap events never wait behind a model job
    with gr.Blocks(title=title, delete_cache=delete_cache, analytics_enabled=False) as demo:
        name = model_name or getattr(pipe, "name_or_path", "") or type(pipe).__name__
        gr.Markdown(f"## zero123: novel views and image to 3D\nModel: `{name}`"
                    f" ({pipe.image_size} px, {pipe.device.type}). One job runs at a time; the others wait in the queue.")
        with gr.Tab("Novel views", id="nvs"):
            with gr.Row():
                with gr.Column(scale=1):
                    image = _image_component(label="Input image (RGBA uses its alpha)", elem_id="nvs-image", height=256)
                    with gr.Row():
                        preprocess = gr.Checkbox(True, label="Remove background and recentre", elem_id="nvs-preprocess")
                        object_size = gr.Slider(0.1, 1.0, value=200 / 256, step=0.01, label="Foreground ratio",
                                                elem_id="nvs-object-size")
                    prepared = gr.Image(label="Model input (prepared)", interactive=False, height=192, elem_id="nvs-prepared",
                                        format="png")
                    gr.Examples([[str(EXAMPLE_IMAGE)]], inputs=[image], label="Examples", elem_id="nvs-examples")
                with gr.Column(scale=1):
                    azimuth = gr.Slider(*C.AZIMUTH_RANGE, value=90.0, step=1, label="Azimuth change (deg, + = camera to its right)",
                                        elem_id="nvs-azimuth")
                    elevation = gr.Slider(*C.ELEVATION_RANGE, value=0.0, step=1, label="Elevation change (deg, + = camera up)",
                                          elem_id="nvs-elevation")
                    radius = gr.Slider(*C.RADIUS_RANGE, value=1.0, step=0.01, label="Distance ratio", elem_id="nvs-radius")
                    input_elevation = gr.Slider(-90, 90, value=DEFAULT_INPUT_ELEVATION, step=1, visible=cond_polar,
                                                label="Input view's elevation (deg above the equator)", elem_id="nvs-input-elevation")
                    with gr.Row():
                        buttons = {name: gr.Button(name, size="sm", elem_id=f"nvs-preset-{name}") for name in [*C.PRESETS, "random"]}
                    camera_image = gr.Image(plot(90.0, 0.0, 1.0, DEFAULT_INPUT_ELEVATION), label="Cameras (blue input, orange target)",
                                            interactive=False, elem_id="zero123-camera-plot", format="png", height=320)
                with gr.Column(scale=1):
                    samples = gr.Slider(1, MAX_SAMPLES, value=2, step=1, label="Samples", elem_id="nvs-samples")
                    with gr.Accordion("Advanced", open=False):
                        quality = gr.Radio(list(QUALITY_PRESETS), value=quality, label="Quality preset (sets the controls below)",
                                           elem_id="nvs-quality")
                        sampling = {name: gr.Slider(label=label, value=defaults[name], elem_id=f"nvs-{name}", **kw)
                                    if kind == "slider" else gr.Dropdown(list(SOLVERS), value=defaults[name], label=label,
                                                                         elem_id=f"nvs-{name}")
                                    for name, label, kind, kw in SAMPLING_CONTROLS}
                        seed = gr.Number(0, precision=0, label="Seed (view i uses seed + i)", elem_id="nvs-seed")
                    with gr.Row():
                        run = gr.Button("Generate", variant="primary", elem_id="nvs-run")
                        stop_nvs = gr.Button("Stop", variant="stop", elem_id="nvs-stop")
                    gallery = gr.Gallery(label="Generated views", columns=2, height=360, format="png",
                                         buttons=["download", "fullscreen"], elem_id="nvs-gallery")

        with gr.Tab("3D", id="rec"):
            with gr.Row():
                with gr.Column(scale=1):
                    image3d = _image_component(label="Input image", elem_id="rec-image", height=256)
                    gr.Examples([[str(EXAMPLE_IMAGE)]], inputs=[image3d], label="Examples", elem_id="rec-examples")
                    route = gr.Dropdown([(r.label, r.name) for r in routes], value=routes[0].name, label="Route",
                                        elem_id="rec-route")
                    preset3d = gr.Radio(list(presets_of[routes[0].name]), value=first_preset[routes[0].name], label="Preset",
                                        elem_id="rec-preset")
                    elevation3d = gr.Slider(-30, 55, value=DEFAULT_INPUT_ELEVATION, step=1,
                                            label="Photo's elevation (deg above the object's equator)", elem_id="rec-elevation")
                    with gr.Accordion("Advanced", open=False):
                        steps3d = gr.Slider(2, 200, value=start.steps, step=1, label="Steps of the generated views",
                                            elem_id="rec-steps")
                        seed3d = gr.Number(0, precision=0, label="Seed", elem_id="rec-seed")
                        preprocess3d = gr.Checkbox(True, label="Remove background and recentre", elem_id="rec-preprocess")
                        estimate3d = gr.Checkbox(False, label="Estimate the photo's elevation with the model (slower)",
                                                 elem_id="rec-estimate-elevation")
                    with gr.Row():
                        run3d = gr.Button("Reconstruct", variant="primary", elem_id="rec-run")
                        stop3d = gr.Button("Stop", variant="stop", elem_id="rec-stop")
                with gr.Column(scale=2):
                    summary3d = gr.Markdown(elem_id="rec-summary")
                    model3d = gr.Model3D(label="Textured mesh (GLB)", elem_id="rec-model", height=420, clear_color=(1, 1, 1, 1),
                                         camera_position=viewer_camera(DEFAULT_INPUT_ELEVATION))
                    with gr.Row():
                        files3d = gr.File(label="Downloads (GLB, OBJ + MTL + texture)", file_count="multiple", elem_id="rec-files")
                        video3d = gr.Video(label="Turntable", elem_id="rec-video", autoplay=True, loop=True)
                    views3d = gr.Image(label="Generated views", interactive=False, elem_id="rec-views", format="png")

        # ------------------------------------------------------------------ events
        cams = [azimuth, elevation, radius, input_elevation]
        for slider in cams:
            slider.change(plot, cams, camera_image, trigger_mode="always_last", api_name=False, **free)
        for name, button in buttons.items():
            button.click(lambda n=name: preset(n), None, [azimuth, elevation, radius], api_name=False, **free)
        for trigger in (image.change, preprocess.change, object_size.release):
            trigger(preview, [image, preprocess, object_size], prepared, api_name=False, concurrency_limit=None,
                    show_progress="minimal")
        quality.change(lambda q: [getattr(QUALITY_PRESETS[q], name) for name in sampling] if q else [gr.skip()] * len(sampling),
                       quality, list(sampling.values()), api_name=False, **free)
        elevation3d.change(lambda e: gr.Model3D(camera_position=viewer_camera(e)), elevation3d, model3d, api_name=False,
                           **free)  # the viewer starts from the photo's side
        route.change(lambda r: gr.Radio(choices=list(presets_of[r]), value=first_preset[r]), route, preset3d,
                     api_name=False, **free)
        nvs_event = run.click(novel_views, [image, *cams, samples, seed, *sampling.values(), preprocess, object_size],
                              [gallery, prepared], api_name="novel_views", concurrency_limit=1, concurrency_id="model")
        stop_nvs.click(stop, None, None, cancels=[nvs_event], api_name=False, queue=False)
        rec_event = run3d.click(reconstruct, [image3d, route, preset3d, elevation3d, steps3d, seed3d, preprocess3d, estimate3d],
                                [model3d, files3d, video3d, views3d, summary3d], api_name="reconstruct", concurrency_limit=1,
                                concurrency_id="model")
        stop3d.click(stop, None, None, cancels=[rec_event], api_name=False, queue=False)
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    demo.zero123_folders = folders  # the 3D job folders (removed at exit)
    return demo


def serve(demo, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True, **kwargs):
    """Run ``demo`` on ``host:port`` offline: no sharing link, no analytics, system fonts.
    ``block=False`` returns at once (tests); returns what ``Blocks.launch`` returns."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return demo.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                       show_error=False, **{**launch_options(), **kwargs})
