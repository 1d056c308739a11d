"""A headless chromium for driving the app offline (its browser tests and the screenshot script):
Debian's ``/usr/bin/chromium`` through Playwright (never ``playwright install``, which downloads a
browser), with background networking off, and the check that a page stayed on this machine."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a sandbox-less container with no GPU; no update checks, sync or first-run requests.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def launch_chromium(playwright, executable: str | Path = CHROMIUM):
    """``playwright.chromium.launch`` of the system chromium, headless."""
    if not Path(executable).exists():
        raise FileNotFoundError(f"chromium is not at {executable} (Debian: apt-get install chromium)")
    return playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_ARGS), headless=True)


def off_localhost(urls: Iterable[str]) -> list[str]:
    """The URLs that leave this machine (``data:`` and ``blob:`` URLs stay in the page).

    >>> off_localhost(["http://127.0.0.1:7860/", "data:image/png;base64,xx", "https://fonts.googleapis.com/css"])
    ['https://fonts.googleapis.com/css']
    """
    return sorted({u for u in urls if urlparse(u).scheme not in ("data", "blob", "about")
                   and urlparse(u).hostname not in LOCAL_HOSTS})
