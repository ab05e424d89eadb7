"""Widget: draw a digit in a notebook (JupyterLab, VS Code, Colab) and see what a run reads in it.

The browser side is the report's drawing pad (web/digits-pad.js) with a render
function, as an anywidget: it loads nothing from the network. When a stroke ends
the pad sends the drawing to Python as a PNG; Python prepares it as `make
predict` prepares an image file and predicts it with the run, then sends back the
28x28 image the model saw, the ten calibrated probabilities and the verdict
("unsure: 4 or 9", or "not a digit: ..."), which the pad shows.

    digits.report.widget.DigitWidget(digits.report.widget.predictor(run))   # the last expression of a cell shows it
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import anywidget
import numpy as np
import traitlets
from PIL import Image

from digits.runs import Run

PNG_DATA_URL = "data:image/png;base64,"

RENDER = """
const { mount } = globalThis.DigitPad; // this module's pad, whatever other widgets define later

export default {
  render({ model, el }) {
    const pad = mount(el, {
      onStrokeEnd: (drawn) => {
        model.set("drawing", drawn.canvas.toDataURL("image/png"));
        model.save_changes();
      },
      onClear: () => {
        model.set("drawing", "");
        model.save_changes();
      },
    });
    const show = () => {
      const pixels = model.get("pixels");
      const probabilities = model.get("probabilities");
      const [problem, unsure] = [model.get("problem"), model.get("unsure")];
      let verdict = null;
      if (problem) verdict = { kind: "problem", text: problem };
      else if (probabilities.length) verdict = { kind: unsure ? "unsure" : "sure", text: unsure };
      pad.show({ pixels: pixels.length ? pixels : null, probabilities: probabilities.length ? probabilities : null,
                 verdict });
    };
    // Another view of the same widget starts from its drawing.
    if (model.get("drawing")) {
      const image = new Image();
      image.onload = () => pad.canvas.getContext("2d").drawImage(image, 0, 0);
      image.src = model.get("drawing");
    }
    show();
    const changes = ["change:pixels", "change:probabilities", "change:problem", "change:unsure"];
    changes.forEach((change) => model.on(change, show));
    return () => changes.forEach((change) => model.off(change, show));
  },
};
"""


class Reading(NamedTuple):
    """What the run reads in an image."""

    digit: np.ndarray | None  # the 28x28 image the model saw (or would have), None when none could be made
    probabilities: np.ndarray | None  # the ten calibrated probabilities; None for "not a digit"
    verdict: str  # "" when sure, "unsure: 4 or 9", or "not a digit: <reason>"


Predictor = Callable[[Image.Image], Reading]


def decode_drawing(data_url: str) -> Image.Image:
    """The pad's PNG data URL as a fully loaded Pillow image; ValueError when it is not one."""
    if not data_url.startswith(PNG_DATA_URL):
        raise ValueError("the drawing is not a PNG data URL")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(data_url[len(PNG_DATA_URL):], validate=True)))
        image.load()
    except (binascii.Error, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"the drawing cannot be read: {error}") from None
    return image


class DigitWidget(anywidget.AnyWidget):
    """A drawing pad whose drawing Python predicts; shows the 28x28 image the model saw, its probabilities and
    its verdict."""

    # The pad's JavaScript ships with the project (web/digits-pad.js): nothing comes from a CDN.
    _esm = (Path(__file__).resolve().parent / "web" / "digits-pad.js").read_text(encoding="utf-8") + RENDER

    drawing = traitlets.Unicode("").tag(sync=True)  # the pad as a PNG data URL; "" when cleared
    pixels = traitlets.List(traitlets.Float()).tag(sync=True)  # 784 grey levels 0..255 (MNIST form), or []
    probabilities = traitlets.List(traitlets.Float()).tag(sync=True)  # ten, or []
    problem = traitlets.Unicode("").tag(sync=True)  # why the drawing was not predicted ("not a digit: ..."), or ""
    unsure = traitlets.Unicode("").tag(sync=True)  # "unsure: 4 or 9" below the run's threshold, or ""

    def __init__(self, predictor: Predictor, **kwargs) -> None:
        super().__init__(**kwargs)
        self._predictor = predictor
        self.observe(self._predict_drawing, names="drawing")

    def _predict_drawing(self, change: dict) -> None:
        pixels, probabilities, problem, unsure = [], [], "", ""
        if change["new"]:
            try:
                reading = self._predictor(decode_drawing(change["new"]))
            except ValueError as error:  # an unreadable drawing
                problem = str(error)
            else:
                if reading.digit is not None:
                    pixels = (np.asarray(reading.digit, dtype=np.float32).reshape(-1) * 255).tolist()
                if reading.probabilities is None:
                    problem = reading.verdict
                else:
                    probabilities = np.asarray(reading.probabilities, dtype=np.float64).reshape(-1).tolist()
                    unsure = reading.verdict
        with self.hold_sync():  # one message: the preview, the bars and the verdict change together
            self.pixels, self.probabilities, self.problem, self.unsure = pixels, probabilities, problem, unsure


def predictor(run: Run) -> Predictor:
    """The run's reading of an image, as `make predict` makes it: MNIST's form and its checks, then the model (or
    ensemble), calibrated, and "unsure" below the run's threshold."""
    from digits.calibration import scale, verdict
    from digits.evaluate import average_probabilities, predict_probabilities, run_calibration
    from digits.model import load_model
    from digits.prepare import NotADigit, to_mnist

    models = [load_model(member.folder / "model.keras") for member in run.single_runs]
    calibration = run_calibration(run)

    def predict(image: Image.Image) -> Reading:
        try:
            digit = to_mnist(image)
        except NotADigit as problem:
            return Reading(problem.digit, None, str(problem))
        probabilities = scale(average_probabilities([predict_probabilities(model, digit[None, ..., None])
                                                     for model in models]), calibration.temperature)[0]
        return Reading(digit, probabilities, verdict(probabilities, calibration.threshold))

    return predict
