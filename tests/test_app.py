"""The web app as users use it: a real chromium driven by Playwright against the app on a free
localhost port with a tiny random model (upload, slider, camera picture, generate, Stop, the 3D tab
and its mesh viewer, a bad upload, and no request off localhost), two jobs at once through
``gradio_client``, the app mounted in FastAPI next to a health endpoint, and ``zero123 app``.

The browser test needs Debian's chromium at /usr/bin/chromium (``.ci/run`` installs it); it skips
only when that is missing. Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_PROXY", "localhost,127.0.0.1")
os.environ["no_proxy"] = os.environ["NO_PROXY"]

from zero123.app.browser import CHROMIUM, launch_chromium, off_localhost  # noqa: E402
from zero123.assets import EXAMPLE_IMAGE  # noqa: E402
from zero123.nvs import QUALITY_PRESETS  # noqa: E402
from zero123.camera import DEFAULT_INPUT_DISTANCE  # noqa: E402
from zero123.threed.field import FieldSettings  # noqa: E402
from zero123.threed.fit import FitSettings  # noqa: E402
from zero123.threed.mesh import MeshSettings  # noqa: E402
from zero123.threed.reconstruct import ReconstructSettings  # noqa: E402
from zero123.threed.sds import SDSSettings  # noqa: E402
from zero123.threed.texture import TextureSettings  # noqa: E402

#: A 3D chain small enough for seconds on a CPU (the mesh is of a random model's views anyway).
TINY_CHAIN = ReconstructSettings(
    field=FieldSettings(resolution=24, initial_resolution=16),
    fit=FitSettings(steps=20, batch_rays=512, num_samples=32, grow_at=()),
    mesh=MeshSettings(resolution=32, max_faces=2000, silhouette_size=32, candidates=16),
    texture=TextureSettings(size=64), image_size=32,
)
#: An SDS chain as small (the route runs, its result is not judged here).
TINY_SDS = SDSSettings(
    steps=8, warmup_steps=2, ref_size=32, ref_batch_rays=256, num_samples=24, render_sizes=(32,), render_size_at=(),
    field=FieldSettings(resolution=24, initial_resolution=16), occupancy_resolution=16,
    mesh=MeshSettings(resolution=32, max_faces=2000, silhouette_size=32, candidates=16), texture=TextureSettings(size=64),
)
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")


class UNetCalls:
    """Forward pre-hook on the U-Net: which thread called it when, and an optional delay per call
    (so a Stop can land while a job runs)."""

    def __init__(self):
        self.calls: list[tuple[int, float]] = []
        self.delay = 0.0

    def __call__(self, module, args):
        self.calls.append((threading.get_ident(), time.perf_counter()))
        if self.delay:
            time.sleep(self.delay)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """The app on a free localhost port around a tiny random model: ``(url, demo, unet_calls)``."""
    from zero123.app import build_app, serve
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    pipe = Zero123Pipeline(**build_components("tiny", seed=0))
    pipe.set_progress_bar_config(disable=True)
    calls = UNetCalls()
    pipe.unet.register_forward_pre_hook(calls)
    demo = build_app(pipe, route_presets={"views": {"tiny": TINY_CHAIN}, "sds": {"tiny": TINY_SDS}}, default_steps=2,
                     turntable_frames=4, queue_size=4)
    port = free_port()
    serve(demo, port=port, block=False, quiet=True)
    yield f"http://127.0.0.1:{port}/", demo, calls
    demo.close()
    demo.zero123_folders.cleanup()


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


@needs_chromium
def test_in_a_real_browser(server, tmp_path):
    """Upload, move a slider (the camera picture changes, no model run), generate 3 samples (3 in the
    gallery, progress shown), Stop a long job, the 3D tab from its example (the viewer loads the GLB
    and draws it, downloads and turntable listed), a bad upload (a clear message), and not one
    request off localhost."""
    from io import BytesIO

    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    url, demo, calls = server
    requests: list[str] = []
    glb_status: list[int] = []
    bad = tmp_path / "not-an-image.png"
    bad.write_text("this is text, not a PNG")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("response", lambda r: glb_status.append(r.status) if r.url.endswith("/mesh.glb") else None)
            page.goto(url)

            # 1. Upload: the prepared cut-out appears
            page.locator("#nvs-image input[type=file]").set_input_files(str(EXAMPLE_IMAGE))
            expect(page.locator("#nvs-prepared img")).to_be_visible(timeout=30_000)

            # 2. A slider moves the target camera in the picture, without running the model
            plot = page.locator("#zero123-camera-plot img")
            before, n_calls = plot.get_attribute("src"), len(calls.calls)
            page.locator("#nvs-azimuth input[type=range]").fill("-45")
            expect(plot).not_to_have_attribute("src", before, timeout=15_000)
            page.get_by_role("button", name="behind").click()
            expect(page.locator("#nvs-azimuth input[type=number]")).to_have_value("180", timeout=15_000)
            assert len(calls.calls) == n_calls, "moving the camera must not run the model"

            # 3. Generate 3 samples: 3 images in the gallery, labelled with their camera
            _set_number(page, "nvs-samples", 3)
            page.click("#nvs-run")
            thumbs = page.locator("#nvs-gallery button.thumbnail-item")
            expect(thumbs).to_have_count(3, timeout=60_000)
            expect(page.locator("#nvs-gallery")).to_contain_text("az 180 el 0 r 1")

            # 4. A long job shows its progress and Stop ends it within a step or two
            page.get_by_text("Advanced").first.click()
            page.locator("#nvs-quality").get_by_label("original").check()  # a quality preset sets the controls
            original = QUALITY_PRESETS["original"]
            expect(page.locator("#nvs-steps input[type=number]")).to_have_value(str(original.steps), timeout=15_000)
            expect(page.locator("#nvs-solver input")).to_have_value(original.solver)
            _set_number(page, "nvs-steps", 200)
            calls.delay = 0.05
            start = len(calls.calls)
            try:
                page.click("#nvs-run")
                expect(page.locator("#nvs-gallery")).to_contain_text("sampling 3 view(s)", timeout=30_000)
                page.click("#nvs-stop")
                time.sleep(1.0)
                stopped_at = len(calls.calls)
                time.sleep(1.0)
            finally:
                calls.delay = 0.0
            assert len(calls.calls) - stopped_at <= 1, "the job kept running after Stop"
            assert stopped_at - start < 150, f"Stop came after {stopped_at - start} U-Net calls of 200"

            # 5. The 3D tab: the viewer fetches the GLB and draws it; files and turntable are offered
            page.get_by_role("tab", name="3D").click()
            page.locator("#rec-examples img").first.click()  # the bundled example, one click
            expect(page.locator("#rec-image img")).to_be_visible(timeout=30_000)
            page.click("#rec-run")
            expect(page.locator("#rec-model canvas")).to_be_visible(timeout=120_000)
            for name in ("mesh.glb", "mesh.obj", "mesh.mtl", "mesh_texture.png"):
                expect(page.locator(f"#rec-files a[href$='/{name}']")).to_have_count(1, timeout=30_000)
            expect(page.locator("#rec-video video")).to_have_count(1, timeout=30_000)
            drawn_share = 0.0
            for _ in range(240):  # the viewer loads babylon.js lazily: slow on a busy CPU
                if glb_status:
                    shot = np.asarray(Image.open(BytesIO(page.locator("#rec-model canvas").screenshot())).convert("RGB")).astype(int)
                    drawn_share = float((np.abs(shot - shot[0, 0]).max(-1) > 30).mean())
                    if drawn_share > 0.01:
                        break
                page.wait_for_timeout(500)
            assert glb_status and all(s == 200 for s in glb_status), f"the viewer did not fetch the GLB: {glb_status}"
            assert drawn_share > 0.01, "the viewer drew nothing but background"

            # 6. A bad upload: the image checks' own message in the page
            page.get_by_role("tab", name="Novel views").click()
            page.locator("#nvs-image input[type=file]").set_input_files(str(bad))
            expect(page.get_by_text("is not an image file").first).to_be_visible(timeout=30_000)
        finally:
            browser.close()

    off = off_localhost(requests)
    assert not off, f"the page made requests off localhost: {off}"
    assert len(requests) > 10  # the recorder saw the page load


def test_two_jobs_at_once_through_gradio_client(server):
    """Two clients submit at the same time: both get their own result, one model job at a time."""
    from gradio_client import Client, handle_file

    url, demo, calls = server
    client = Client(url, verbose=False)
    start = len(calls.calls)
    jobs = [client.submit(handle_file(str(EXAMPLE_IMAGE)), 90, 0, 1, 0, samples, seed, 3, api_name="/novel_views")
            for samples, seed in ((2, 5), (3, 7))]
    results = [job.result(timeout=120) for job in jobs]
    (gallery_a, _), (gallery_b, model_input) = results
    assert len(gallery_a) == 2 and len(gallery_b) == 3
    assert [g["caption"].split("seed ")[1] for g in gallery_b] == ["7", "8", "9"]
    assert Path(model_input).is_file()
    threads = [t for t, _ in calls.calls[start:]]
    assert threads and len(threads) % 2 == 0  # the same steps in both jobs
    assert sum(a != b for a, b in zip(threads, threads[1:])) <= 1, "the two jobs ran on the model at once"


def test_every_route_through_the_api(server):
    """``reconstruct`` with each listed route: a GLB, the downloads and the turntable; a route's
    preset list follows the route."""
    from gradio_client import Client, handle_file

    from zero123.app import ROUTES

    url, _, _ = server
    client = Client(url, verbose=False)
    for route, estimate in zip(ROUTES, (False, True)):
        glb, files, video, views, summary = client.predict(handle_file(str(EXAMPLE_IMAGE)), route.name, "tiny", 20, 2, 0,
                                                           True, estimate, api_name="/reconstruct")
        assert route.label in summary and ("(given)" in summary) != estimate, summary
        assert Path(glb).name == "mesh.glb" and Path(glb).stat().st_size > 1000, route.name
        assert sorted(Path(f).name for f in files) == ["mesh.glb", "mesh.mtl", "mesh.obj", "mesh_texture.png"]
        assert Path(video).suffix == ".mp4" and Path(video).is_file()
        assert (views is not None) == (route.name == "views")  # only the fast route generates views
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):  # gradio checks the route list
        client.predict(handle_file(str(EXAMPLE_IMAGE)), "nope", "tiny", api_name="/reconstruct")


def test_bad_upload_through_the_api_is_a_clear_error(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _, _ = server
    tiny = tmp_path / "tiny.png"
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tiny)
    with pytest.raises(AppError, match="at least"):
        Client(url, verbose=False).predict(handle_file(str(tiny)), 90, 0, 1, api_name="/novel_views")


def test_a_full_queue_refuses_more_jobs(server):
    """queue_size=4: with one job on the model and four waiting, more are refused, the rest finish."""
    from gradio_client import Client, handle_file

    url, _, calls = server
    client = Client(url, verbose=False, download_files=False)  # counts only: no eight downloads at once
    calls.delay = 0.3
    try:
        jobs = [client.submit(handle_file(str(EXAMPLE_IMAGE)), 90, 0, 1, 0, 1, i, 3, api_name="/novel_views") for i in range(8)]
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(len(job.result(timeout=120)[0]))
            except Exception as e:  # noqa: BLE001 (gradio_client's error for a refused job)
                outcomes.append(str(e))
    finally:
        calls.delay = 0.0
    done = [o for o in outcomes if o == 1]
    refused = [o for o in outcomes if isinstance(o, str)]
    assert 5 <= len(done) < 8 and refused, outcomes
    assert all("queue" in r.lower() and "full" in r.lower() for r in refused), refused


def test_queue_is_bounded_and_the_api_names_are_stable(server):
    _, demo, _ = server
    names = {d.api_name for d in demo.fns.values() if d.api_name}
    assert {"novel_views", "reconstruct"} <= names
    assert demo._queue.max_size == 4
    assert all(d.concurrency_limit == 1 for d in demo.fns.values() if d.api_name in ("novel_views", "reconstruct"))


def test_mounted_in_fastapi_next_to_a_health_endpoint(tiny_pipeline):
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from zero123.app import build_app, launch_options

    api = FastAPI()

    @api.get("/health")
    def health():
        return {"status": "ok"}

    demo = build_app(tiny_pipeline, default_steps=2)
    api = gr.mount_gradio_app(api, demo, path="/zero123", **launch_options())
    try:
        with TestClient(api) as client:
            assert client.get("/health").json() == {"status": "ok"}
            config = client.get("/zero123/config").json()
            assert {"novel_views", "reconstruct"} <= {d.get("api_name") for d in config["dependencies"]}
    finally:
        demo.zero123_folders.cleanup()


@pytest.mark.parametrize("azimuth,elevation,radius,input_elevation,centre", [
    (90, 0, 1.0, 0, (0, 1, 0)),        # + azimuth: counter-clockwise seen from above, +X -> +Y
    (0, 30, 1.0, 0, (np.cos(np.pi / 6), 0, 0.5)),
    (180, 0, 1.2, 0, (-1.2, 0, 0)),
    (0, 0, 1.0, 30, (np.cos(np.pi / 6), 0, 0.5)),  # a Stable Zero123 input above the equator
])
def test_camera_picture_cameras(azimuth, elevation, radius, input_elevation, centre):
    from zero123.app.cameras import camera_world_to_cams

    _, target = camera_world_to_cams(azimuth, elevation, radius, input_elevation)
    c = -target[:, :3].T @ target[:, 3]
    np.testing.assert_allclose(c / DEFAULT_INPUT_DISTANCE, centre, atol=1e-9)


def test_cli_app_without_gradio_says_what_to_install(monkeypatch):
    import sys

    from typer.testing import CliRunner

    from zero123.cli.__main__ import app

    monkeypatch.setitem(sys.modules, "gradio", None)
    r = CliRunner().invoke(app, ["app"])
    assert r.exit_code == 2 and "pip install 'zero123[app]'" in r.stderr, r.output


@pytest.mark.parametrize("embedding,shown", [("relative_radius", False), ("cond_polar", True)])
def test_input_elevation_is_shown_for_stable_zero123_models_only(embedding, shown):
    from zero123.app import build_app
    from zero123.models.factory import build_components
    from zero123.pipeline import Zero123Pipeline

    demo = build_app(Zero123Pipeline(**build_components("tiny", seed=0, camera_embedding=embedding)), default_steps=2)
    try:
        props = {c["props"].get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}
        assert props["nvs-input-elevation"]["visible"] is shown
        assert props["nvs-azimuth"]["visible"] is True
    finally:
        demo.zero123_folders.cleanup()


@pytest.mark.parametrize("quality", ["fast", "original"])
def test_the_controls_start_from_a_quality_preset(quality):
    """The app's sampler starts from the preset the held-out table favours (fast) unless told
    otherwise; the controls show that preset's values; an unknown preset is a clear error."""
    from zero123.app import build_app
    from zero123.models.factory import build_components
    from zero123.nvs import QUALITY_PRESETS
    from zero123.pipeline import Zero123Pipeline

    pipe = Zero123Pipeline(**build_components("tiny", seed=0))
    demo = build_app(pipe) if quality == "fast" else build_app(pipe, quality=quality)
    try:
        props = {c["props"].get("elem_id"): c["props"] for c in demo.get_config_file()["components"]}
        preset = QUALITY_PRESETS[quality]
        assert props["nvs-quality"]["value"] == quality
        assert props["nvs-steps"]["value"] == preset.steps and props["nvs-solver"]["value"] == preset.solver
    finally:
        demo.zero123_folders.cleanup()
    with pytest.raises(ValueError, match="quality must be one of"):
        build_app(pipe, quality="best")
