"""The web demo (chapter 15's `web_answers`, `web_app`, `build_demo`, `leximind-demo`): light imports, clear notes for
bad input, the Space's app, and the page itself driven by a real browser."""

import os
import runpy
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


@pytest.fixture(scope="module")
def course_app():
    from leximind.app import LexiMind

    return LexiMind.load()  # the course model shipped with the package


def test_importing_leximind_loads_no_gradio():
    # Catches: Gradio (seconds to import, an optional extra) imported at the top of leximind.app.
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import leximind.app"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "gradio" not in result.stderr


def test_demo_without_gradio_says_how_to_install_it():
    # Catches: a traceback (ModuleNotFoundError) instead of one line naming the extra, and a model loaded first.
    code = (
        "import sys; sys.modules['gradio'] = None\nfrom leximind.app import demo_command\ndemo_command(['--port', '1'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | OFFLINE)
    assert result.returncode == 2, result.stderr
    needs = "gradio is not installed: pip install 'lightbrain-leximind[demo]'"
    assert result.stderr.strip().splitlines() == [f"leximind-demo: error: {needs}"]


def test_web_answers_give_notes_not_tracebacks(course_app, tmp_path):
    # Catches: an exception reaching the page for empty text, a file that is not UTF-8 or a huge text, and a result
    # whose bars are not the app's own probabilities.
    from leximind.app import web_answers

    assert web_answers(course_app, "  ")[0].startswith("**Note:**") and web_answers(course_app, "  ")[2] == {}
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café au lait, déjà vu".encode("latin-1"))
    assert "not UTF-8" in web_answers(course_app, "", str(latin1))[0]
    notes, summary, emotion, topic = web_answers(course_app, "the markets rallied today " * 40_000)  # a million chars
    assert "cut" in notes and summary and set(topic) == {"World", "Sports", "Business", "Sci/Tech"}
    text = "i feel so relaxed after work today"
    expected = course_app.analyze(text)
    assert web_answers(course_app, text)[2] == expected["emotion"]["probabilities"]


def test_the_space_builds_the_same_app():
    # Catches: space/app.py drifting from `leximind-demo` (another model, other components) or failing offline.
    pytest.importorskip("gradio")
    from leximind.app import build_demo

    space = runpy.run_path(str(ROOT / "space" / "app.py"), run_name="space_app")["demo"]
    shape = lambda page: [(type(b).__name__, getattr(b, "label", None)) for b in page.blocks.values()]
    assert shape(space) == shape(build_demo())
    front = (ROOT / "space" / "README.md").read_text().split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demo_in_a_real_browser(tmp_path, course_app):
    # Catches: a page that does not load, a button wired to the wrong function or outputs, answers that differ from
    # the app's, a traceback instead of a note on empty text, and LightBrain's tab not streaming text.
    pytest.importorskip("gradio")
    playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (.[dev])")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (.ci/run tries it)")
    from leximind.multitask import load_tasks

    tweet = load_tasks("quick")["emotion"]["test"][3]["text"]  # a real held-out tweet (labelled joy)
    expected = course_app.analyze(tweet)
    port = _free_port()
    server = subprocess.Popen(
        ["leximind-demo", "--port", str(port)],
        env=os.environ | OFFLINE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):  # the server loads both course models first
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 1250})
            page.goto(url)
            page.get_by_label("Text").fill(tweet)
            page.get_by_role("button", name="Analyze").click()
            page.get_by_text("too short to summarize").wait_for(timeout=60_000)
            shown = page.inner_text("body")
            assert expected["emotion"]["label"] in shown and expected["topic"]["label"] in shown, shown
            assert "course model" in shown  # the note that says which model answered
            page.wait_for_timeout(1500)  # Gradio fades the outputs in: let the picture show them settled
            shot = tmp_path / "leximind-demo.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("LIGHTBRAIN_SCREENSHOT"):  # the chapter's picture, refreshed on purpose
                shutil.copy(shot, os.environ["LIGHTBRAIN_SCREENSHOT"])
            page.get_by_label("Text").fill("")
            page.get_by_role("button", name="Analyze").click()
            page.get_by_text("needs non-empty text").wait_for(timeout=30_000)
            page.get_by_role("tab", name="LightBrain: generation").click()
            assert page.get_by_text("research and teaching only").is_visible()
            page.get_by_role("button", name="Generate").click()
            written = page.get_by_label("LightBrain writes")
            playwright.expect(written).not_to_have_value("", timeout=60_000)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_chapter_and_the_readme_show_the_demo():
    # Catches: the screenshot missing from the repository, or a link to it that the README or the chapter breaks.
    assert (ROOT / "nbs" / "images" / "leximind-demo.png").stat().st_size > 10_000
    chapter = (ROOT / "nbs" / "15_leximind_app.ipynb").read_text()
    assert "](images/leximind-demo.png)" in chapter
    assert "](nbs/images/leximind-demo.png)" in (ROOT / "README.md").read_text()
