"""Widget: draw a digit in a notebook (JupyterLab, VS Code, Colab) and see what a run reads in it.

The browser side is the report's drawing pad (web/digits-pad.js) with a render
function, as an anywidget: it loads nothing from the network. When a stroke ends
the pad sends the drawing to Python as a PNG; Python prepares it as `make
predict` prepares an image file and predicts it with the run, then sends back the
28x28 image the model saw and the ten probabilities, which the pad shows.

    digits.report.widget.DigitWidget(digits.report.widget.predictor(run))   # the last expression of a cell shows it
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from pathlib import Path

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
    const problem = document.createElement("div");
    Object.assign(problem.style, { color: "#c44e52", fontFamily: "sans-serif", minHeight: "1.2em" });
    el.append(problem);
    const show = () => {
      const pixels = model.get("pixels");
      const probabilities = model.get("probabilities");
      pad.showPreview(pixels.length ? pixels : null);
      pad.showProbabilities(probabilities.length ? probabilities : null);
      problem.textContent = model.get("problem");
    };
    // Another view of the same widget starts from its drawing.
    if (model.get("drawing")) {
      const image = new Image();
      image.onload = () => pad.canvas.getContext("2d").drawImage(image, 0, 0);
      image.src = model.get("drawing");
    }
    show();
    model.on("change:pixels", show);
    model.on("change:probabilities", show);
    model.on("change:problem", show);
    return () => {
      model.off("change:pixels", show);
      model.off("change:probabilities", show);
      model.off("change:problem", show);
    };
  },
};
"""

Predictor = Callable[[Image.Image], tuple[np.ndarray, np.ndarray]]


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
    """A drawing pad whose drawing Python predicts; shows the 28x28 image the model saw and its probabilities."""

    # The pad's JavaScript ships with the project (web/digits-pad.js): nothing comes from a CDN.
    _esm = (Path(__file__).resolve().parent / "web" / "digits-pad.js").read_text(encoding="utf-8") + RENDER

    drawing = traitlets.Unicode("").tag(sync=True)  # the pad as a PNG data URL; "" when cleared
    pixels = traitlets.List(traitlets.Float()).tag(sync=True)  # 784 grey levels 0..255 (MNIST form), or []
    probabilities = traitlets.List(traitlets.Float()).tag(sync=True)  # ten, or []
    problem = traitlets.Unicode("").tag(sync=True)  # why the drawing could not be predicted, or ""

    def __init__(self, predictor: Predictor, **kwargs) -> None:
        super().__init__(**kwargs)
        self._predictor = predictor
        self.observe(self._predict_drawing, names="drawing")

    def _predict_drawing(self, change: dict) -> None:
        pixels, probabilities, problem = [], [], ""
        if change["new"]:
            try:
                digit, digit_probabilities = self._predictor(decode_drawing(change["new"]))
                pixels = (np.asarray(digit, dtype=np.float32).reshape(-1) * 255).tolist()
                probabilities = np.asarray(digit_probabilities, dtype=np.float64).reshape(-1).tolist()
            except ValueError as error:  # unreadable, or blank (digits.predict.ImageProblem is a ValueError)
                problem = str(error)
        with self.hold_sync():  # one message: the preview and the bars change together
            self.pixels, self.probabilities, self.problem = pixels, probabilities, problem


def predictor(run: Run) -> Predictor:
    """The run's prediction of an image, as `make predict` makes it: MNIST's form, then the model (or ensemble)."""
    from digits.evaluate import average_probabilities, predict_probabilities
    from digits.model import load_model
    from digits.predict import to_mnist

    models = [load_model(member.folder / "model.keras") for member in run.single_runs]

    def predict(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        digit = to_mnist(image)
        return digit, average_probabilities([predict_probabilities(model, digit[None, ..., None])
                                             for model in models])[0]

    return predict
