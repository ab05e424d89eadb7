"""Try it: the report's page where a reader draws a digit and the run's own model reads it, in the browser.

The page holds everything it needs inline, as classic scripts (browsers refuse
module scripts and `fetch` for pages opened from disk): TensorFlow.js 4.22.0
(web/tfjs/, vendored), the drawing pad with the preparation of `make predict`
(web/digits-pad.js), the run's weights, temperature and unsure threshold as JSON
(`export`), and the script that rebuilds the network with tf.layers and wires
the page (web/digits-tryit.js). The weights are exact float32, so the page's
probabilities are Keras's, calibrated as `make predict` calibrates them; it says
"not a digit" and "unsure" where `make predict` does, and shows what the network
looks at (gradient times input, digits.explain) on request.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from digits import prepare, runs
from digits.calibration import Calibration
from digits.runs import Run
from digits.util.display import shown
from digits.util.files import write_text_atomic

WEB = Path(__file__).resolve().parent / "web"
CHAPTER = "try-it.qmd"  # the book's chapter (written by make report)
MODEL_FILE = "try-it-model.json"  # the page's network and weights, beside it
SCRIPTS = ["tfjs/tf-core.min.js", "tfjs/tf-backend-cpu.min.js", "tfjs/tf-layers.min.js", "digits-pad.js"]
# Random rotation, zoom and shift, and dropout, only act while training.
INFERENCE_IDENTITY_LAYERS = ("RandomRotation", "RandomZoom", "RandomTranslation", "Dropout")
ACTIVATIONS = ("linear", "relu", "softmax")  # the ones tf.layers knows by the same name


def _pair(value: Any) -> list[int]:
    """A Keras size or stride as the [rows, columns] pair tf.layers takes."""
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def layer_spec(layer: Any) -> dict:
    """What the browser needs to rebuild one Keras layer; ValueError for a layer it would rebuild differently."""
    kind, config = type(layer).__name__, layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"{layer.name}: channels_first is not supported in the browser")
    if kind == "Conv2D" and _pair(config["dilation_rate"]) == [1, 1] and config.get("groups", 1) == 1 \
            and config["activation"] in ACTIVATIONS:
        return {"type": "conv2d", "filters": config["filters"], "kernel": _pair(config["kernel_size"]),
                "stride": _pair(config["strides"]), "padding": config["padding"], "use_bias": config["use_bias"],
                "activation": config["activation"]}
    if kind == "BatchNormalization" and config["axis"] in (-1, 3, [-1], [3]) and config["center"] and config["scale"]:
        return {"type": "batch_norm", "epsilon": config["epsilon"]}
    if kind == "Activation" and config["activation"] == "relu":
        return {"type": "relu"}
    if kind == "MaxPooling2D":
        return {"type": "max_pool", "pool_size": _pair(config["pool_size"]),
                "stride": _pair(config["strides"] or config["pool_size"]), "padding": config["padding"]}
    if kind == "Flatten":
        return {"type": "flatten"}
    if kind == "GlobalAveragePooling2D" and not config.get("keepdims"):
        return {"type": "global_average_pool"}
    if kind == "Dense" and config["use_bias"] and config["activation"] in ACTIVATIONS:
        return {"type": "dense", "units": config["units"], "activation": config["activation"]}
    raise ValueError(f"{layer.name} ({kind}): no equivalent in the browser")


def _inference_layers(model: Any) -> list:
    return [layer for layer in model.layers if type(layer).__name__ not in INFERENCE_IDENTITY_LAYERS]


def export(models: list, calibration: Calibration) -> dict:
    """The JSON object of an ensemble's members (one model is an ensemble of one): network, weights, preparation,
    and the run's temperature and unsure threshold."""
    specs = [[layer_spec(layer) for layer in _inference_layers(model)] for model in models]
    if not models or any(spec != specs[0] for spec in specs[1:]):
        raise ValueError("the page needs one network or an ensemble of the same network")
    weights = [[{"shape": list(array.shape),
                 "data": base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")}
                for layer in _inference_layers(model) for array in layer.get_weights()] for model in models]
    return {"architecture": specs[0], "members": weights, "preparation": prepare.PREPARATION,
            "calibration": {"temperature": calibration.temperature, "threshold": calibration.threshold}}


def _script(text: str, attributes: str = "") -> str:
    """A <script> element holding `text`, which must not end the element early."""
    if "</script" in text.lower() or "<!--" in text:
        raise ValueError("this text cannot be inlined in a <script> element")
    return f"<script{attributes}>\n{text}\n</script>"


def write_model(run: Run, target: Path) -> None:
    """Write the page's JSON for a run (its network, the weights of its members, the preparation, the calibration)
    to `target`."""
    from digits.evaluate import run_calibration  # TensorFlow: in the kernel that evaluated the run, when there is one
    from digits.model import load_model

    models = [load_model(member.folder / "model.keras") for member in run.single_runs]
    data = json.dumps({"run": run.name, **export(models, run_calibration(run))}, separators=(",", ":")).replace(
        "<", "\\u003c")
    write_text_atomic(target, data)


def write_model_of(folder: str, data_dir: str, target: str) -> None:
    """write_model for the run kept in `folder` (how a kernel is asked to do it: plain strings)."""
    write_model(runs.load(Path(folder), Path(data_dir)), Path(target))


def section_html(run: Run, metrics: dict, data: str) -> str:
    """The "Try it" section for a run: what it is, the pad, and every script it needs (and `data`), inline."""
    from digits.runs import records

    accuracy = metrics.get("test_accuracy") or metrics["val_accuracy"]
    scored = "test" if metrics.get("test_accuracy") is not None else "validation"
    what = (f"the average of its {run.ensemble} members" if run.members else "its model")
    warning = records.weak_run_note(metrics)
    introduction = (
        f'<p>Draw one digit, 0 to 9, with the mouse, a finger or a pen: run <code>{html.escape(run.name)}</code> '
        f"({scored} accuracy {accuracy:.2%}) reads it with {what}, here in your browser, each time a stroke "
        "ends. The small image is what the model sees: your drawing prepared as <code>make predict</code> "
        "prepares a photo (turned light on black, cropped to the ink, fitted into 20x20 pixels, centred by "
        "its mass in 28x28). <em>What it looks at</em> tints that image: red pixels pushed the model towards "
        "its digit, blue ones away from it.</p>"
        "<p>The probabilities are calibrated (a temperature fitted on the validation images), so 90% means "
        "right about nine times in ten. Below the confidence at which the model was 99.9% right on validation "
        "it says <em>unsure</em> and names its two best guesses; a blank pad, a scribble, ink on every edge "
        "or marks far apart are <em>not a digit</em>, said before the model is asked.</p>")
    quick = (f'<p style="border-left: 4px solid #c77c02; background: #fdf6e7; padding: 0.4rem 0.8rem">'
             f"{html.escape(warning)}</p>")
    parts = [
        introduction,
        *([quick] if warning else []),
        '<div id="digit-tryit"></div>',
        *(_script((WEB / name).read_text(encoding="utf-8")) for name in SCRIPTS),
        _script(data, ' type="application/json" id="digit-model"'),
        _script((WEB / "digits-tryit.js").read_text(encoding="utf-8")),
    ]
    return "\n".join(parts)


def write_chapter(report_dir: Path, run: Run, metrics: dict) -> Path:
    """Write report/try-it.qmd, the Quarto chapter holding the section as raw HTML, from the page's JSON in
    report/try-it-model.json (write_model), which it checks names the run."""
    data = (report_dir / MODEL_FILE).read_text(encoding="utf-8")
    if json.loads(data).get("run") != run.name:
        raise ValueError(f"{shown(report_dir / MODEL_FILE)}: not the weights of run {run.name}")
    path = report_dir / CHAPTER
    write_text_atomic(path, "# Try it\n\n```{=html}\n" + section_html(run, metrics, data)
                      + "\n```\n")
    return path
