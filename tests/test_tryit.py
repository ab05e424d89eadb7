"""Try it: the report's page where a reader draws a digit, opened from disk with no network, and the notebook's widget.

A run good enough to read drawings (two epochs on 12,000 MNIST images) is made
with `make all`; its report's "Try it" chapter is then opened from file:// in
headless Chromium (and Firefox, driven over its own WebDriver BiDi), drawn on
with real pointer events, and held to Keras and to `make predict`.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import re
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import (
    PROJECT_ROOT,
    chromium,
    console_problems,
    copy_project,
    need,
    pad,
    requests_made,
    run_make,
    run_pipeline,
    scribble,
    shadowed,
    wait_until,
    write_tiny_data,
)

pytestmark = pytest.mark.slow

SIDE = 280  # the pad's canvas, in pixels
STEP = 6  # pixels between pointer moves: the browser gets a move event at each
PARITY_IMAGES = 200
PARITY_TOLERANCE = 1e-4
# Strokes of digits in a 0..1 square, drawn with Pillow (for the preparation) or with a pointer (for the page).
STROKES = {
    "1": [[(0.52, 0.15), (0.48, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
    "0": [[(0.5 + 0.22 * math.sin(t), 0.5 - 0.33 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 48)]],
    "4": [[(0.60, 0.82), (0.60, 0.18), (0.28, 0.60), (0.75, 0.60)]],
    "2": [[(0.32, 0.32), (0.42, 0.2), (0.6, 0.2), (0.68, 0.33), (0.32, 0.8), (0.72, 0.8)]],
}


@pytest.fixture(scope="module")
def tryit_project(tmp_path_factory, mnist) -> Path:
    """A clone with a run that reads drawings well enough, its report rendered with the self-contained page."""
    project = copy_project(tmp_path_factory.mktemp("tryit") / "try it clone")
    write_tiny_data(project / "medium data", mnist, n_train=12000, n_test=200)
    result = run_make(project, "all", "EPOCHS=2", "DATA_DIR=medium data")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def run(tryit_project):
    from digits.runs import catalog

    return catalog.find("", tryit_project / "medium data", tryit_project / "models")


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def open_page(driver, url: str) -> None:
    """Open the page and wait until its recognizer is ready; forget what earlier pages logged."""
    console_problems(driver)
    requests_made(driver)
    driver.set_script_timeout(120)
    driver.get(url)
    failure = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const wait = () => window.digitRecognizer
            ? window.digitRecognizer.ready.then(() => done(null), (error) => done(String(error)))
            : setTimeout(wait, 20);
        wait();""")
    assert failure is None, failure


@pytest.fixture
def page(browser, tryit_project):
    """The fallback report's "Try it" section in Chromium; afterwards, no console problem and no request."""
    open_page(browser, (tryit_project / "report" / "_book" / "index.html").as_uri() + "#try-it")
    yield browser
    assert (console_problems(browser), requests_made(browser)) == ([], [])


def drawn(digit: str, size=(SIDE, SIDE), box=(0.0, 0.0, 1.0, 1.0), ink=(17, 17, 17, 255),
          paper=(255, 255, 255, 255), width: int = SIDE // 14, supersample: int = 1) -> Image.Image:
    """An RGBA image of a digit's strokes inside `box` (a share of the image), round-jointed like the pad's."""
    image = Image.new("RGBA", (size[0] * supersample, size[1] * supersample), paper)
    pen = ImageDraw.Draw(image)
    left, top, right, bottom = box
    for stroke in STROKES[digit]:
        points = [((left + x * (right - left)) * size[0] * supersample,
                   (top + y * (bottom - top)) * size[1] * supersample) for x, y in stroke]
        pen.line(points, fill=ink, width=width * supersample, joint="curve")
        radius = width * supersample / 2
        for x, y in (points[0], points[-1]):  # round caps
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
    return image.resize(size, Image.Resampling.BOX) if supersample > 1 else image


def drawings() -> dict[str, Image.Image]:
    """The pad's kind of drawing, then the ways a user's image varies."""
    noisy = np.asarray(drawn("4", supersample=2), dtype=np.float64)
    noisy[..., :3] += np.random.default_rng(0).normal(0, 12, noisy[..., :3].shape)
    return {**{f"{digit} on the pad": drawn(digit) for digit in STROKES},
            "7 antialiased": drawn("7", supersample=4),
            "0 small in a corner": drawn("0", box=(0.0, 0.55, 0.35, 1.0)),
            "4 on a wide image": drawn("4", size=(360, 200)),
            "2 light on dark": drawn("2", ink=(230, 230, 230, 255), paper=(20, 30, 40, 255)),
            "7 in colour": drawn("7", ink=(200, 30, 60, 255), supersample=2),
            "0 on transparent paper": drawn("0", paper=(0, 0, 0, 0)),
            "4 on noisy paper": Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGBA")}


PREPARE = """
    const bytes = Uint8ClampedArray.from(atob(arguments[0]), (c) => c.charCodeAt(0));
    const {pixels, problem} = window.digitRecognizer.prepare(new ImageData(bytes, arguments[1], arguments[2]));
    return [pixels && Array.from(pixels), problem];"""


def browser_prepared(driver, image: Image.Image) -> tuple[np.ndarray | None, str | None]:
    """The page's preparation of an image: 28x28 grey levels 0..255 (None where none was made), and why it holds
    no digit ("not a digit: ...") or None."""
    pixels, problem = driver.execute_script(PREPARE, base64.b64encode(image.convert("RGBA").tobytes()).decode(),
                                            image.width, image.height)
    return None if pixels is None else np.array(pixels, dtype=np.float32).reshape(28, 28), problem


def test_the_page_predicts_as_keras_does(page, run, mnist):
    """Calibrated with the run's temperature, and "unsure" where Python says so."""
    from digits.calibration import scale, verdict
    from digits.data import to_images
    from digits.evaluate import predict_run, run_calibration

    images = mnist["test_images"][:PARITY_IMAGES]
    readings = page.execute_script("return arguments[0].map((pixels) => window.digitRecognizer.read(pixels));",
                                   images.reshape(len(images), -1).tolist())
    in_browser = np.array([reading["probabilities"] for reading in readings])
    calibration = run_calibration(run)
    in_keras = scale(predict_run(run, to_images(images.reshape(len(images), -1))), calibration.temperature)
    assert np.abs(in_browser - in_keras).max() <= PARITY_TOLERANCE
    assert (in_browser.argmax(axis=1) == in_keras.argmax(axis=1)).all()
    said = [verdict(row, calibration.threshold) for row in in_keras]
    assert [reading["verdict"]["text"] for reading in readings] == said
    assert 0 < sum(map(bool, said)) < len(said)  # some unsure, most not: both verdicts are compared


def test_the_page_prepares_a_drawing_as_make_predict_does(page, mnist):
    from digits.prepare import NotADigit, to_mnist
    photo, _ = shadowed(mnist["test_images"][0])
    for name, image in {**drawings(), "7 photographed with a shadow": photo}.items():
        in_python = to_mnist(image) * np.float32(255)
        pixels, problem = browser_prepared(page, image)
        assert problem is None and np.abs(pixels - in_python).mean() <= 1, name  # grey levels, on average
    for name, image in not_digits().items():
        with pytest.raises(NotADigit) as refused:
            to_mnist(image)
        assert browser_prepared(page, image)[1] == str(refused.value), name  # the same reason in both


def not_digits() -> dict[str, Image.Image]:
    """Images that hold no digit, one for each reason, as the pad would have them."""
    return {"blank pad": Image.new("RGBA", (SIDE, SIDE), "white"),
            "filled pad": pad(scribble(0.0), width=SIDE // 7),
            "scribble": pad(scribble(0.12), width=SIDE // 7),
            "two far-apart marks": pad([(0.1, 0.1), (0.1, 0.3)], [(0.9, 0.7), (0.9, 0.9)])}


def dense(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A polyline's points every STEP pixels."""
    path = [points[0]]
    for (x0, y0), (x1, y1) in pairwise(points):
        steps = max(1, int(math.hypot(x1 - x0, y1 - y0) / STEP))
        path += [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1)]
    return path


def draw_with_pointer(driver, canvas, digit: str | list, kind: str) -> None:
    """Press, move along each stroke (of a digit of STROKES, or given) and release, with a pointer of the given kind
    (mouse, pen or touch)."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    actions = ActionBuilder(driver, mouse=PointerInput(kind, kind), duration=8)
    side = canvas.size["width"]
    for stroke in STROKES[digit] if isinstance(digit, str) else digit:
        path = dense([(x * side, y * side) for x, y in stroke])
        actions.pointer_action.move_to(canvas, round(path[0][0] - side / 2), round(path[0][1] - side / 2))
        actions.pointer_action.pointer_down()
        for x, y in path[1:]:  # offsets from the element's centre
            actions.pointer_action.move_to(canvas, round(x - side / 2), round(y - side / 2))
        actions.pointer_action.pointer_up()
    actions.perform()


@pytest.mark.parametrize("digit, kind", [("1", "mouse"), ("7", "pen"), ("0", "touch")])
def test_a_digit_drawn_with_a_pointer_is_read(digit, kind, page):
    from selenium.webdriver.common.by import By

    canvas, answer = page.find_element(By.ID, "digit-canvas"), page.find_element(By.ID, "digit-prediction")
    draw_with_pointer(page, canvas, digit, kind)
    probabilities = json.loads(answer.get_attribute("data-probabilities"))
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-4
    assert answer.get_attribute("data-digit") == digit == str(int(np.argmax(probabilities)))
    assert answer.text == digit or page.find_element(By.ID, "digit-verdict").text.startswith("unsure: " + digit)
    page.find_element(By.ID, "digit-clear").click()
    assert answer.text == "" and answer.get_attribute("data-probabilities") is None


FAR_APART = [[(0.08, 0.08), (0.08, 0.3)], [(0.92, 0.7), (0.92, 0.92)]]
FILLED = [[(0.0 if index % 2 == 0 else 1.0, row) for index, row in enumerate(np.linspace(0.02, 0.98, 14))]]


@pytest.mark.parametrize("strokes, reason", [(FILLED, "edges"), (FAR_APART, "marks")],
                         ids=["a filled pad", "two far-apart marks"])
def test_what_is_no_digit_drawn_with_a_pointer_reads_not_a_digit(strokes, reason, page):
    from selenium.webdriver.common.by import By

    from digits.prepare import REASONS

    canvas, answer = page.find_element(By.ID, "digit-canvas"), page.find_element(By.ID, "digit-prediction")
    draw_with_pointer(page, canvas, strokes, "mouse")
    assert page.find_element(By.ID, "digit-verdict").text == REASONS[reason]
    assert answer.text == "" and answer.get_attribute("data-verdict") == "problem"
    assert answer.get_attribute("data-probabilities") is None
    page.find_element(By.ID, "digit-clear").click()  # a blank pad
    assert page.find_element(By.ID, "digit-verdict").text == REASONS["blank"]


SALIENCY = "return window.digitRecognizer.saliency(arguments[0]);"


def test_the_pages_saliency_is_pythons(page, run, mnist):
    from digits.explain import members, saliency

    images = mnist["test_images"][:5]
    in_browser = [page.execute_script(SALIENCY, image.reshape(-1).tolist()) for image in images]
    digits = np.array([found["digit"] for found in in_browser])
    in_python = saliency(members(run), images.astype(np.float32) / 255, digits)
    for found, expected in zip(in_browser, in_python):
        assert np.abs(np.array(found["map"]).reshape(28, 28) - expected).max() <= 1e-3
        assert np.abs(expected).max() > 1e-2  # a map, not zeros


def test_the_overlay_tints_what_the_model_looks_at(page):
    from selenium.webdriver.common.by import By

    def preview() -> np.ndarray:  # as a PNG: reading a canvas's pixels again and again makes Chromium warn
        url = page.execute_script("return document.getElementById('digit-preview').toDataURL('image/png');")
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",")[1]))).convert("RGB"), dtype=int)

    def red(image: np.ndarray) -> int:
        return int((image[..., 0] - image[..., 2] > 60).sum())

    draw_with_pointer(page, page.find_element(By.ID, "digit-canvas"), "7", "mouse")
    (grey,) = wait_until(lambda: (image := preview()).max() > 200 and [image], what="the drawing in the preview")
    assert (grey[..., 0] == grey[..., 2]).all()  # grey levels only
    page.find_element(By.ID, "digit-overlay").click()
    # The map is worked out after the click (TensorFlow.js in the page): wait for it to be drawn.
    (tinted,) = wait_until(lambda: red(image := preview()) > 0 and [image], what="the overlay's tints")
    assert (tinted[..., 2] - tinted[..., 0] > 60).sum() > 0  # blue: pixels that pushed away
    page.find_element(By.ID, "digit-overlay").click()
    wait_until(lambda: (preview() == grey).all(), what="the grey preview again")


def test_a_shadowed_photo_is_read_right(run, mnist):
    """A 7 under a shadow: read as 7 with the paper evened out; the paper taken as one shade makes the shadow ink."""
    from digits import prepare
    from digits.evaluate import predict_run
    photo, _ = shadowed(mnist["test_images"][0])
    assert int(predict_run(run, prepare.to_mnist(photo)[None, ..., None]).argmax()) == 7
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare, "paper_shade", lambda grey, light, border: np.full_like(grey, border))
        assert int(predict_run(run, prepare.to_mnist(photo)[None, ..., None]).argmax()) != 7


def test_the_page_loads_nothing_and_runs_no_module(tryit_project):
    page = (tryit_project / "report" / "_book" / "index.html").read_text()
    assert re.findall(r"<script\b[^>]*\b(?:src|type=.module.)", page) == []  # classic inline scripts only
    (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    # Nothing may be fetched, imported or evaluated: default-src 'none', and scripts only by their hashes.
    assert policy.startswith("default-src 'none';") and "connect-src" not in policy and "'unsafe-eval'" not in policy.split()
    (scripts,) = [directive for directive in policy.split("; ") if directive.startswith("script-src ")]
    assert re.fullmatch(r"script-src 'wasm-unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+'){5}", scripts)


def test_the_widget_reads_a_drawing_as_make_predict_reads_the_same_png(run, tmp_path):
    from digits.report.widget import DigitWidget, predictor

    image = drawn("7")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    (tmp_path / "seven.png").write_bytes(buffer.getvalue())
    widget = DigitWidget(predictor(run))
    widget.drawing = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()  # as the pad sends it
    result = run_pipeline(PROJECT_ROOT, "predict", f"IMAGES={tmp_path / 'seven.png'}", f"RUN={run.name}",
                          f"MODELS_DIR={run.models_dir}", f"DATA_DIR={run.data_dir}")
    assert result.returncode == 0, result.stderr
    (folder,) = (run.folder / "predictions").iterdir()
    import pandas as pd

    predicted = pd.read_csv(folder / "predictions.csv").iloc[0]
    assert int(np.argmax(widget.probabilities)) == predicted["label"] == 7
    assert max(widget.probabilities) == pytest.approx(predicted["confidence"], abs=1e-4)
    assert len(widget.pixels) == 784 and widget.problem == ""
    assert widget.unsure == (f"unsure: {predicted['unsure']}" if isinstance(predicted["unsure"], str) else "")
    for name, image in not_digits().items():
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        widget.drawing = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        assert widget.problem.startswith("not a digit: ") and widget.probabilities == [], name
    widget.drawing = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    assert widget.problem.startswith("the drawing cannot be read") and widget.probabilities == []


def test_the_quarto_chapter_reads_a_drawing(tryit_project, browser):
    from selenium.webdriver.common.by import By

    need("quarto", how="conda-forge `quarto`, or quarto.org; see README")
    try:
        result = run_make(tryit_project, "report", "EPOCHS=2", "DATA_DIR=medium data", "QUARTO=quarto")
        assert result.returncode == 0, result.stdout[-3000:]
        open_page(browser, (tryit_project / "report" / "_book" / "try-it.html").as_uri())
        draw_with_pointer(browser, browser.find_element(By.ID, "digit-canvas"), "7", "mouse")
        assert browser.find_element(By.ID, "digit-prediction").text == "7"
        assert (console_problems(browser), requests_made(browser)) == ([], [])
    finally:  # the module's other tests open the self-contained page: render it again
        restored = run_make(tryit_project, "report", "EPOCHS=2", "DATA_DIR=medium data", "QUARTO=no")
        assert restored.returncode == 0, restored.stdout[-3000:]


# --- Firefox, over its own WebDriver BiDi (there is no geckodriver to install offline) ------------------------


# No network: every request goes to a proxy that refuses; nothing updates or reports home.
FIREFOX_PREFERENCES = {
    "network.proxy.type": 1, "network.proxy.http": "127.0.0.1", "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": 9, "network.proxy.allow_hijacking_localhost": True,
    "app.update.disabledForTesting": True, "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
    "browser.startup.homepage_override.mstone": "ignore", "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False, "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False, "browser.newtabpage.enabled": False, "browser.startup.page": 0,
}


class BiDi:
    """A minimal WebDriver BiDi session: commands, and the events it subscribed to."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, suppress_origin=True, timeout=120)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def command(self, method: str, **params) -> dict:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("type") == "event":
                self.events.append(message)
            elif message.get("id") == number:
                if message.get("type") == "error":
                    raise RuntimeError(f"{method}: {message['error']}: {message.get('message')}")
                return message["result"]

    def evaluate(self, context: str, expression: str):
        """The value of an expression that returns JSON.stringify(...), awaited when it is a promise."""
        result = self.command("script.evaluate", expression=expression, target={"context": context},
                              awaitPromise=True, resultOwnership="none")
        if result["type"] == "exception":
            raise RuntimeError(result["exceptionDetails"]["text"])
        return json.loads(result["result"]["value"])


def connect(url: str) -> BiDi | None:
    """A BiDi session at `url`, or None while nothing answers there yet."""
    try:
        return BiDi(url)
    except OSError:
        return None

@contextmanager
def firefox():
    """Headless Firefox with a fresh offline profile: (BiDi session, top-level context)."""
    need("firefox", how="apt-get install firefox-esr")
    with tempfile.TemporaryDirectory(prefix="firefox-") as profile, socket.socket() as probe:
        Path(profile, "user.js").write_text("".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n"
                                                    for name, value in FIREFOX_PREFERENCES.items()))
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        process = subprocess.Popen(["firefox", "--headless", "--no-remote", "--profile", profile,
                                    f"--remote-debugging-port={port}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            bidi = wait_until(lambda: connect(f"ws://127.0.0.1:{port}/session"), timeout=60,
                              what="Firefox's WebDriver BiDi answering")
            bidi.command("session.new", capabilities={})
            bidi.command("session.subscribe", events=["log.entryAdded", "network.beforeRequestSent"])
            yield bidi, bidi.command("browsingContext.getTree")["contexts"][0]["context"]
        finally:
            process.terminate()
            process.wait(30)


def test_firefox_reads_drawings_and_predicts_as_keras_does(tryit_project, run, mnist):
    from digits.calibration import scale
    from digits.data import to_images
    from digits.evaluate import predict_run, run_calibration

    with firefox() as (bidi, context):
        url = (tryit_project / "report" / "_book" / "index.html").as_uri()
        bidi.command("browsingContext.navigate", context=context, url=url, wait="complete")
        bidi.evaluate(context, """new Promise((ok, fail) => {
            const wait = () => window.digitRecognizer ? digitRecognizer.ready.then(() => ok('null'), fail)
                                                      : setTimeout(wait, 20);
            wait(); })""")
        images = mnist["test_images"][:50]
        pixels = json.dumps(images.reshape(len(images), -1).tolist())
        in_browser = np.array(bidi.evaluate(context, f"JSON.stringify({pixels}.map((p) => digitRecognizer.predict(p)))"))
        in_keras = scale(predict_run(run, to_images(images.reshape(50, -1))), run_calibration(run).temperature)
        assert np.abs(in_browser - in_keras).max() <= PARITY_TOLERANCE  # the page shows calibrated probabilities
        canvas = bidi.evaluate(context, """(() => { const canvas = document.getElementById('digit-canvas');
            canvas.scrollIntoView(); const box = canvas.getBoundingClientRect();
            return JSON.stringify([box.left, box.top, box.width]); })()""")
        actions = []
        for stroke in STROKES["7"]:
            path = dense([(canvas[0] + x * canvas[2], canvas[1] + y * canvas[2]) for x, y in stroke])
            for index, (x, y) in enumerate(path):
                actions.append({"type": "pointerMove", "x": round(x), "y": round(y), "duration": 8})
                if index == 0:
                    actions.append({"type": "pointerDown", "button": 0})
            actions.append({"type": "pointerUp", "button": 0})
        bidi.command("input.performActions", context=context,
                     actions=[{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                               "actions": actions}])
        answer = bidi.evaluate(context, "JSON.stringify(document.getElementById('digit-prediction').textContent)")
        assert answer == "7"
        problems = [event["params"].get("text") for event in bidi.events if event["method"] == "log.entryAdded"
                    and event["params"]["level"] in ("warn", "error")]
        requests = [event["params"]["request"]["url"] for event in bidi.events
                    if event["method"] == "network.beforeRequestSent"
                    and not event["params"]["request"]["url"].startswith(("file:", "data:", "blob:"))]
        assert (problems, requests) == ([], [])
