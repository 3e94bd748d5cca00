"""The demo in a real browser: headless Chromium uploads a generated clip, asks, and reads the streamed answer."""

import shutil
import socket
from pathlib import Path

import pytest

from videopanda.testing import moving_square_frames, write_video

pytestmark = pytest.mark.slow

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def _chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if Path(path).is_file():
            return path
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    from videopanda.demo import build_demo

    demo = build_demo(None, device="cpu", examples_dir=str(tmp_path_factory.mktemp("examples")))
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_upload_ask_and_read_the_answer(demo_url, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package drives Chromium")
    clip = write_video(tmp_path / "upload.mp4", moving_square_frames(16, 72, 96), codec="libx264")  # browser-playable

    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(demo_url, wait_until="networkidle", timeout=60_000)
            assert "randomly initialised tiny Video-Panda" in page.inner_text("#model-note")
            page.set_input_files("#video-input input[type=file]", str(clip))
            page.wait_for_selector("#video-input video", timeout=60_000)  # the upload reached the server
            question = page.locator("#question textarea")
            question.fill("Which way does the square move?")
            page.click("#ask-button")
            page.wait_for_function(
                "document.querySelector('#status') && document.querySelector('#status').innerText.includes('Done')",
                timeout=120_000,
            )
            answer = page.locator("#answer textarea").input_value()
            status = page.inner_text("#status")
            frames = page.locator("#frames img").count()
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        finally:
            browser.close()

    assert answer.strip(), "the answer box stayed empty"
    assert "8 frames sampled" in status
    assert frames == 8
    assert (tmp_path / "demo.png").stat().st_size > 10_000
