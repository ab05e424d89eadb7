"""Report: the summary page, then the HTML book with Quarto, or a self-contained fallback without it.

    python -m digits.report render --arch strided   # report/_book/index.html
    python -m digits.report tidy NOTEBOOK

Quarto renders `report/` as a book (report/_quarto.yml) from the executed
notebooks' stored outputs. Without Quarto, nbconvert renders the same summary and
notebooks into one HTML file that loads nothing from the network.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mistune
import nbformat
import pandas as pd
from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter

from digits.config import MODELS_DIR, REPORT_DIR, check_arch
from digits.files import atomic_path, write_text_atomic

CHAPTERS = ["10-explore", "20-train", "30-evaluate", "40-submit"]
PARAMETER_TAGS = {"parameters", "injected-parameters"}
HIDE_OPTION = "#| include: false"
# TensorFlow's start-up notes, written to stderr before its logging is configured.
TENSORFLOW_NOTE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} \d\d:\d\d:\d\d)")
EMBED = re.compile(r"\{\{<\s*embed\s+(\S+?\.ipynb)#(\S+)\s*>\}\}")
INCLUDE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
CROSS_REFERENCE = re.compile(r"@(fig-[\w-]+)")


def _is_tensorflow_notes(output: nbformat.NotebookNode) -> bool:
    """True for a stderr output made only of TensorFlow's start-up notes."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    return all(TENSORFLOW_NOTE.match(line) for line in output.get("text", "").splitlines() if line.strip())


def tidy_for_report(notebook_path: str | Path) -> None:
    """Prepare an executed notebook for the report, in place.

    The parameters and papermill's injected-parameters cells get `include: false`
    (the run's parameters are shown as a table instead), and TensorFlow's
    start-up notes on stderr are dropped.
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [output for output in cell.outputs if not _is_tensorflow_notes(output)]
        tagged = PARAMETER_TAGS & set(cell.metadata.get("tags", []))
        if tagged and not cell.source.startswith(HIDE_OPTION):
            cell.source = f"{HIDE_OPTION}\n{cell.source}"
    with atomic_path(notebook_path) as temporary:
        nbformat.write(notebook, temporary)


# --- The summary page -------------------------------------------------------------------


def _percent(value: float | None) -> str:
    """0.99512 -> '99.51%'; None -> 'not known'."""
    return "not known" if value is None or pd.isna(value) else f"{value:.2%}"


def _markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a pipe table (no extra dependency)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join("" if pd.isna(value) else str(value) for value in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def summary_markdown(metrics: dict, results: pd.DataFrame | None) -> str:
    """The summary's numbers: headline, results against baselines, run parameters, versions, submission."""
    minutes = metrics["train_seconds"] / 60
    headline = pd.DataFrame({
        "test accuracy": [_percent(metrics["test_accuracy"])],
        "validation accuracy": [_percent(metrics["val_accuracy"])],
        "training time": [f"{minutes:.1f} min"],
        "epochs": [metrics["epochs"]],
        "parameters": [f"{metrics['params']:,}"],
    })
    parts = [
        f"The `{metrics['arch']}` network reached **{_percent(metrics['test_accuracy'])} test accuracy** and "
        f"{_percent(metrics['val_accuracy'])} validation accuracy after {metrics['epochs']} "
        f"epoch{'s' if metrics['epochs'] != 1 else ''} "
        f"({minutes:.1f} minutes of training, {metrics['images_per_second']:,.0f} images per second).",
        "",
        _markdown_table(headline),
        "",
        "## Results against baselines",
        "",
    ]
    if results is not None:
        shown = results.copy()
        for column in ("validation accuracy", "test accuracy"):
            shown[column] = shown[column].map(_percent)
        parts += [_markdown_table(shown), ""]
    else:
        parts += ["(Run notebooks/30-evaluate.ipynb for the comparison.)", ""]
    parameters = {key: metrics.get(key) for key in
                  ("arch", "epochs", "batch_size", "seed", "augment", "learning_rate", "sample_size",
                   "validation_fraction", "n_train")}
    versions = {f"{name} version": metrics.get(f"{name}_version") for name in ("python", "tensorflow", "keras")}
    table = pd.DataFrame({"parameter": list(parameters) + list(versions),
                          "value": [("all" if v is None and k == "sample_size" else v)
                                    for k, v in {**parameters, **versions}.items()]})
    parts += ["## Run parameters and versions", "", _markdown_table(table), "",
              "## Submission", "",
              "[Download submission.csv](submission.csv) (`ImageId,Label`, one row per image of test.csv).", ""]
    return "\n".join(parts)


def write_summary(report_dir: Path, run_dir: Path) -> None:
    """Write report/_summary.md from the run's metrics and evaluation; copy the submission beside it."""
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise ValueError(f"{metrics_path}: no finished run to report (run `make all` first)")
    metrics = json.loads(metrics_path.read_text())
    evaluation_path = run_dir / "evaluation.csv"
    results = pd.read_csv(evaluation_path) if evaluation_path.is_file() else None
    write_text_atomic(report_dir / "_summary.md", summary_markdown(metrics, results))
    submission = run_dir / "submission.csv"
    if submission.is_file():
        with atomic_path(report_dir / "submission.csv") as temporary:
            shutil.copyfile(submission, temporary)


# --- Rendering ---------------------------------------------------------------------------


def render_quarto(report_dir: Path) -> Path:
    """Render the book with Quarto (`quarto render report/`); return the entry page."""
    subprocess.run(["quarto", "render", str(report_dir)], check=True)
    return report_dir / "_book" / "index.html"


def _figure_html(notebook: nbformat.NotebookNode, label: str) -> str:
    """The PNG output of the cell labelled `#| label: <label>`, as an inline <figure> with its caption."""
    for cell in notebook.cells:
        options = dict(re.findall(r"^#\|\s*([\w-]+):\s*(.*)$", cell.source, flags=re.MULTILINE))
        if options.get("label") == label:
            images = [out["data"]["image/png"] for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
            if not images:
                break
            caption = html.escape(options.get("fig-cap", "").strip('"'))
            data = images[0] if isinstance(images[0], str) else base64.b64encode(images[0]).decode()
            return (f'<figure id="{label}"><img alt="{caption}" src="data:image/png;base64,{data.strip()}">'
                    f"<figcaption>{caption}</figcaption></figure>")
    raise ValueError(f"no figure labelled {label!r} with an image output in the notebook")


def _summary_html(report_dir: Path) -> str:
    """index.qmd with its include and embed shortcodes resolved, as HTML."""
    text = (report_dir / "index.qmd").read_text()
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    text = INCLUDE.sub(lambda match: (report_dir / match.group(1)).read_text(), text)
    text = text.replace("{.unnumbered}", "")
    notebooks: dict[str, nbformat.NotebookNode] = {}

    def embed(match: re.Match) -> str:
        path = report_dir / match.group(1)
        notebooks.setdefault(match.group(1), nbformat.read(path, as_version=4))
        return _figure_html(notebooks[match.group(1)], match.group(2))

    text = EMBED.sub(embed, text)
    text = CROSS_REFERENCE.sub(lambda match: f"[the figure](#{match.group(1)})", text)
    return mistune.create_markdown(escape=False, plugins=["table"])(text)


def _notebook_html(path: Path) -> tuple[str, str]:
    """(title, body HTML) of an executed notebook without its parameters cells and `#|` option lines."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if not PARAMETER_TAGS & set(cell.metadata.get("tags", []))]
    for cell in notebook.cells:
        cell.source = re.sub(r"^#\|.*\n?", "", cell.source, flags=re.MULTILINE)
    title = next((line[2:].strip() for cell in notebook.cells if cell.cell_type == "markdown"
                  for line in cell.source.splitlines() if line.startswith("# ")), path.stem)
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(notebook)
    return title, body


FALLBACK_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; }
nav { position: fixed; top: 0; left: 0; bottom: 0; width: 15rem; padding: 1rem; background: #f6f7f9;
      border-right: 1px solid #ddd; overflow-y: auto; font-size: 0.9rem; }
nav a { color: #1a5fb4; text-decoration: none; } nav li { margin: 0.3rem 0; }
main { margin-left: 17rem; max-width: 60rem; padding: 1rem 2rem 4rem; }
section { border-bottom: 2px solid #eee; padding-bottom: 2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; } figure { margin: 1rem 0; } figcaption { font-size: 0.9rem; color: #555; }
pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
.jp-OutputPrompt, .jp-InputPrompt { display: none; }
.jp-RenderedText pre { background: #fff; border-left: 3px solid #ddd; }
"""


def render_fallback(report_dir: Path) -> Path:
    """Render summary and notebooks into one self-contained report/_book/index.html with nbconvert."""
    sections = [("summary", "Summary", _summary_html(report_dir))]
    for chapter in CHAPTERS:
        title, body = _notebook_html(report_dir / "notebooks" / f"{chapter}.ipynb")
        sections.append((chapter, title, body))
    contents = "".join(f'<li><a href="#{anchor}">{html.escape(title)}</a></li>' for anchor, title, _ in sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Digit recognizer: report</title>"
        f"<style>{FALLBACK_CSS}{HtmlFormatter().get_style_defs('.highlight')}</style></head><body>"
        f"<nav><strong>Digit recognizer</strong><ol>{contents}</ol></nav><main>"
        + "".join(f'<section id="{anchor}">{body}</section>' for anchor, _, body in sections)
        + "</main></body></html>\n"
    )
    book = report_dir / "_book"
    book.mkdir(exist_ok=True)
    if (report_dir / "submission.csv").is_file():
        with atomic_path(book / "submission.csv") as temporary:
            shutil.copyfile(report_dir / "submission.csv", temporary)
    write_text_atomic(book / "index.html", page)
    return book / "index.html"


def render_report(arch: str, models_dir: Path = MODELS_DIR, report_dir: Path = REPORT_DIR,
                  use_quarto: bool = True) -> Path:
    """Write the summary, then render with Quarto if it is installed (and wanted), else with the fallback."""
    write_summary(report_dir, Path(models_dir) / check_arch(arch))
    if use_quarto and shutil.which("quarto"):
        return render_quarto(report_dir)
    print("Quarto is not installed: rendering the self-contained fallback report with nbconvert", flush=True)
    return render_fallback(report_dir)


def main(argv: list[str] | None = None) -> int:
    """Command line for the Makefile."""
    parser = argparse.ArgumentParser(description="Render the report, or prepare an executed notebook for it.")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="write the summary and render report/_book/index.html")
    render.add_argument("--arch", default="strided")
    render.add_argument("--models-dir", default=str(MODELS_DIR))
    render.add_argument("--report-dir", default=str(REPORT_DIR))
    render.add_argument("--fallback", action="store_true",
                        help="use the nbconvert fallback even if Quarto is installed")
    tidy = commands.add_parser("tidy", help="prepare an executed notebook for the report")
    tidy.add_argument("notebook")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "tidy":
            tidy_for_report(arguments.notebook)
            return 0
        entry = render_report(arguments.arch, Path(arguments.models_dir), Path(arguments.report_dir),
                              use_quarto=not arguments.fallback)
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"report: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
