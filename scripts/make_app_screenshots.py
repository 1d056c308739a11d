"""Screenshots of the web app's tabs with the bundled model, and how long its jobs take in the app
(run from the repo root; needs gradio, playwright and Debian's chromium at /usr/bin/chromium):

* ``docs/app_novel_views.png``: the Novel views tab after a job (the example image, the "right"
  preset, 4 samples, the app's default sampler: 50 DDIM steps, guidance 3, eta 1).
* ``docs/app_3d.png``: the 3D tab after a job (the example image, route "views", preset "fast",
  elevation 20: the example's camera).

It prints the seconds from the click to the result in the page for each job, with the load average
(the figures quoted in the README, "Web app"). Nothing leaves the machine: the script fails if the
page made a request off localhost.

    python scripts/make_app_screenshots.py [--model bundled] [--samples 4] [--preset fast]
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("NO_PROXY", "localhost,127.0.0.1")

from zero123.app import build_app, serve  # noqa: E402
from zero123.app.browser import launch_chromium, off_localhost  # noqa: E402
from zero123.assets import EXAMPLE_IMAGE  # noqa: E402
from zero123.loading import load_pipeline  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: The example image's camera elevation (scripts/make_docs_figures.py renders it from 20 degrees).
EXAMPLE_ELEVATION = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    # 1. The app around the model, on a free localhost port
    pipe = load_pipeline(args.model, device="cpu")
    demo = build_app(pipe, model_name=args.model)
    port = _free_port()
    serve(demo, port=port, block=False, quiet=True)
    requests: list[str] = []
    timings: dict[str, float] = {}
    loads: dict[str, tuple[float, float, float]] = {}
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"http://127.0.0.1:{port}/")

            # 2. Novel views: upload, a preset camera, N samples, generate
            page.locator("#nvs-image input[type=file]").set_input_files(str(EXAMPLE_IMAGE))
            expect(page.locator("#nvs-prepared img")).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="right").click()
            _set_number(page, "nvs-samples", args.samples)
            page.wait_for_timeout(1000)
            loads["novel views"] = os.getloadavg()
            t = time.perf_counter()
            page.click("#nvs-run")
            expect(page.locator("#nvs-gallery button.thumbnail-item")).to_have_count(args.samples, timeout=600_000)
            timings["novel views"] = time.perf_counter() - t
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "app_novel_views.png"))

            # 3. 3D: upload, preset, the example's elevation, reconstruct; wait for the viewer's mesh
            page.get_by_role("tab", name="3D").click()
            page.locator("#rec-image input[type=file]").set_input_files(str(EXAMPLE_IMAGE))
            page.get_by_label(args.preset).check()
            _set_number(page, "rec-elevation", EXAMPLE_ELEVATION)
            page.wait_for_timeout(1000)
            loads["3D"] = os.getloadavg()
            t = time.perf_counter()
            page.click("#rec-run")
            expect(page.locator("#rec-files a[href$='/mesh.glb']")).to_have_count(1, timeout=1_200_000)
            timings["3D"] = time.perf_counter() - t
            expect(page.locator("#rec-model canvas")).to_be_visible(timeout=120_000)
            page.wait_for_timeout(8000)  # babylon.js loads lazily, then draws
            page.screenshot(path=str(args.out / "app_3d.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
        demo.zero123_folders.cleanup()

    # 4. Report
    off = off_localhost(requests)
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s from the click to the result (load average before: "
              f"{' '.join(f'{x:.2f}' for x in loads[name])})")
    print(f"wrote {args.out / 'app_novel_views.png'} and {args.out / 'app_3d.png'}")
    if off:
        raise SystemExit(f"the page made requests off localhost: {off}")


if __name__ == "__main__":
    main()
