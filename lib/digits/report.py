"""Report: the summary page, then the HTML book with Quarto, or a self-contained fallback without it.

`make report` calls `render_report` for a run: it copies the run's executed
notebooks into report/notebooks/, writes report/_summary.md (the run's numbers
and the table of all runs) and the runs figure, then renders report/ as a
Quarto book (report/_quarto.yml) from the notebooks' stored outputs. Without
Quarto, nbconvert renders the same summary and notebooks into one HTML file
that loads nothing from the network.

    python -m digits.report render --run-dir models/strided-e15-s42 [--fallback]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import os
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

from digits import plots, runs
from digits.config import RUN_PARAMETERS, shown
from digits.files import atomic_path, remove_stale_partials, sha256_of, write_frame_atomic, write_text_atomic

CHAPTERS = ["10-explore", "20-train", "30-evaluate", "40-submit"]
PARAMETER_TAGS = {"parameters", "injected-parameters"}
HIDE_OPTION = "#| include: false"
# TensorFlow's start-up notes, written to stderr before its logging is configured.
TENSORFLOW_NOTE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} \d\d:\d\d:\d\d)")
EMBED = re.compile(r"\{\{<\s*embed\s+(\S+?\.ipynb)#(\S+)\s*>\}\}")
INCLUDE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
CROSS_REFERENCE = re.compile(r"@(fig-[\w-]+)")
# A markdown image of a local PNG with a figure label: ![caption](file.png){#fig-label}
IMAGE = re.compile(r"!\[([^\]]*)\]\(([\w.-]+\.png)\)\{#(fig-[\w-]+)\}")


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
    test_accuracy = metrics.get("test_accuracy")
    parameters = f"{metrics['params']:,}"
    if metrics.get("kind") == "ensemble":
        parameters = f"{len(metrics['members'])} × {parameters}"  # every member has its own weights
        who = (f"The ensemble `{metrics['run']}`, the average of {len(metrics['members'])} `{metrics['arch']}` runs "
               f"(seeds {metrics['seed']}),")
    else:
        who = f"The `{metrics['arch']}` network of run `{metrics['run']}`"
    headline = pd.DataFrame({
        "test accuracy": [_percent(test_accuracy)],
        "validation accuracy": [_percent(metrics["val_accuracy"])],
        "training time": [f"{minutes:.1f} min"],
        "epochs": [metrics["epochs"]],
        "parameters": [parameters],
    })
    note = runs.weak_run_note(metrics)
    parts = [
        *([f"::: {{.callout-warning}}\n{note}\n:::", ""] if note else []),
        (f"{who} reached **{_percent(test_accuracy)} test accuracy** and "
         f"{_percent(metrics['val_accuracy'])} validation accuracy after {metrics['epochs']} "
         f"epoch{'s' if metrics['epochs'] != 1 else ''} "
         f"({minutes:.1f} minutes of training, {metrics['images_per_second']:,.0f} images per second)."),
        "",
        _markdown_table(headline),
        "",
        "## Results against baselines",
        "",
    ]
    if results is not None:
        shown_results = results.copy()
        for column in ("validation accuracy", "test accuracy"):
            shown_results[column] = shown_results[column].map(_percent)
        parts += [_markdown_table(shown_results), ""]
    else:
        parts += ["(Run notebooks/30-evaluate.ipynb for the comparison.)", ""]
    names = [p.name for p in RUN_PARAMETERS if p.name in metrics] + ["learning_rate", "n_train", "n_validation"]
    versions = {f"{name} version": metrics.get(f"{name}_version") for name in ("python", "tensorflow", "keras")}
    versions["trained on"] = metrics.get("device", "not recorded")
    rows = {**{name: metrics.get(name) for name in names}, **versions}
    rows["sample_size"] = rows.get("sample_size") or "all"
    table = pd.DataFrame({"parameter": list(rows), "value": list(rows.values())})
    parts += ["## Run parameters and versions", "", _markdown_table(table), "",
              "## Submission", "",
              "[Download submission.csv](submission.csv) (`ImageId,Label`, one row per image of test.csv).", ""]
    return "\n".join(parts)


RUNS_FIGURE = "runs-accuracy.png"


def runs_markdown(table: pd.DataFrame, current: list[str]) -> str:
    """The Runs section: every kept run, the current ones (a run, or an ensemble and its members) in bold."""
    shown_table = table.copy()
    for column in ("val_accuracy", "test_accuracy"):
        shown_table[column] = shown_table[column].map(_percent)
    shown_table = shown_table.astype(object).where(shown_table.notna(), "")
    is_current = shown_table["run"].isin(current)
    shown_table.loc[is_current] = shown_table.loc[is_current].map(lambda value: f"**{value}**" if value != "" else "")
    return "\n".join([
        "## Runs", "",
        (f"Every run kept in the models folder, newest first; this report shows **{current[0]}**. "
         "`make runs` prints the same table; `make all EPOCHS=30` (or any other parameters) adds a run "
         "and `make report` shows the newest."), "",
        _markdown_table(shown_table), "",
        (f"![Validation accuracy per epoch of every kept run; the run of this report is drawn thicker.]"
         f"({RUNS_FIGURE}){{#fig-runs}}"), "",
    ])


def write_summary(report_dir: Path, run_dir: Path, table: pd.DataFrame) -> None:
    """Write report/_summary.md, the runs table and figure from the run's files; copy the submission beside them."""
    import matplotlib.pyplot as plt

    metrics = runs.read_metrics(run_dir)
    evaluation_path = run_dir / "evaluation.csv"
    results = pd.read_csv(evaluation_path) if evaluation_path.is_file() else None
    write_frame_atomic(table, run_dir.parent / runs.RUNS_TABLE)
    current = [run_dir.name] + ([member.name for member in runs.members_of(run_dir)] if runs.is_ensemble(run_dir)
                                else [])
    figure = plots.validation_curves(runs.histories(run_dir.parent), current=current)
    with atomic_path(report_dir / RUNS_FIGURE) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    write_text_atomic(report_dir / "_summary.md",
                      summary_markdown(metrics, results) + "\n" + runs_markdown(table, current))
    submission = run_dir / "submission.csv"
    if submission.is_file():
        with atomic_path(report_dir / "submission.csv") as temporary:
            shutil.copyfile(submission, temporary)


# --- Rendering ---------------------------------------------------------------------------


# Quarto marks each embedded figure with the absolute path of its notebook (used only outside books).
NOTEBOOK_PATH_ATTRIBUTE = re.compile(r'\sdata-notebook="[^"]*"')
COLLAPSED_TABLE_OF_CONTENTS = re.compile(r'(<nav id="TOC".*?</nav>)', flags=re.DOTALL)


def _finish_quarto_page(text: str) -> str:
    """Drop the notebooks' absolute paths; open the table of contents's sub-sections.

    Browsers run no module scripts for pages opened from disk (file://), so
    Quarto's script that unfolds the table of contents never runs there.
    """
    text = NOTEBOOK_PATH_ATTRIBUTE.sub("", text)
    return COLLAPSED_TABLE_OF_CONTENTS.sub(lambda match: match.group(1).replace('<ul class="collapse">', "<ul>"), text)


def render_quarto(report_dir: Path, quarto: str = "quarto") -> Path:
    """Render the book with Quarto (`quarto render report/`); return the entry page."""
    subprocess.run([quarto, "render", str(report_dir)], check=True)
    for page in (report_dir / "_book").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if _finish_quarto_page(text) != text:
            write_text_atomic(page, _finish_quarto_page(text))
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


CALLOUT = re.compile(r"^::: *\{\.callout-(\w+)\} *\n(.*?)\n:::$", flags=re.MULTILINE | re.DOTALL)


def _callouts_to_html(markdown: str) -> str:
    """Quarto's callout blocks (::: {.callout-note} ... :::) as styled <div>s whose content stays markdown."""
    return CALLOUT.sub(lambda match: f'<div class="callout callout-{match.group(1)}">\n\n{match.group(2)}\n\n</div>',
                       markdown)


def _summary_html(report_dir: Path) -> str:
    """index.qmd with its include and embed shortcodes resolved, as HTML."""
    text = (report_dir / "index.qmd").read_text()
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    text = _callouts_to_html(INCLUDE.sub(lambda match: (report_dir / match.group(1)).read_text(), text))
    text = text.replace("{.unnumbered}", "")
    notebooks: dict[str, nbformat.NotebookNode] = {}

    def embed(match: re.Match) -> str:
        path = report_dir / match.group(1)
        notebooks.setdefault(match.group(1), nbformat.read(path, as_version=4))
        return _figure_html(notebooks[match.group(1)], match.group(2))

    def image(match: re.Match) -> str:
        caption, label = html.escape(match.group(1)), match.group(3)
        data = base64.b64encode((report_dir / match.group(2)).read_bytes()).decode()
        return (f'<figure id="{label}"><img alt="{caption}" src="data:image/png;base64,{data}">'
                f"<figcaption>{caption}</figcaption></figure>")

    text = EMBED.sub(embed, text)
    text = IMAGE.sub(image, text)
    text = CROSS_REFERENCE.sub(lambda match: f"[the figure](#{match.group(1)})", text)
    return mistune.create_markdown(escape=False, plugins=["table"])(text)


def _notebook_html(path: Path) -> tuple[str, str]:
    """(title, body HTML) of an executed notebook without its parameters cells and `#|` option lines."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if not PARAMETER_TAGS & set(cell.metadata.get("tags", []))]
    for cell in notebook.cells:
        cell.source = re.sub(r"^#\|.*\n?", "", cell.source, flags=re.MULTILINE)
        if cell.cell_type == "markdown":
            cell.source = _callouts_to_html(cell.source)
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
.callout { border-left: 4px solid #1a5fb4; background: #f3f7fc; padding: 0.2rem 1rem; margin: 1rem 0; }
.callout-warning { border-left-color: #c77c02; background: #fdf6e7; }
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


def html_as_raw_markdown(notebook: nbformat.NotebookNode) -> None:
    """Turn HTML outputs (pandas tables, the Keras summary) into raw-HTML markdown outputs, in place.

    Quarto adds require.js and jQuery from a CDN to any page with a text/html
    output, for JavaScript widgets these notebooks do not have; a markdown output
    holding the same HTML renders the same and loads nothing.
    """
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            html_output = output.get("data", {}).pop("text/html", None)
            if html_output is not None:
                text = "".join(html_output) if isinstance(html_output, list) else html_output
                output["data"]["text/markdown"] = f"```{{=html}}\n{text}\n```"


def _report_inputs(report_dir: Path, notebooks: dict[str, Path], run_dir: Path, table: pd.DataFrame,
                   engine: str, extra: str) -> str:
    """Digest of everything the rendered report shows: a report with the same inputs is not rendered again."""
    files = [*notebooks.values(), report_dir / "index.qmd", report_dir / "_quarto.yml",
             run_dir / "metrics.json", run_dir / "evaluation.csv", run_dir / "submission.csv"]
    parts = [sha256_of(*files), table.to_csv(index=False), engine, extra]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def render_report(report_dir: Path, run_dir: Path, explore_notebook: Path, use_quarto: bool = True,
                  extra_inputs: str = "") -> Path:
    """Copy the run's notebooks in, write the summary, and render with Quarto if installed, else the fallback."""
    # An ensemble's training chapter is its first member's; evaluation and submission are the ensemble's own.
    trained = runs.members_of(run_dir)[0]
    notebooks = {"10-explore": explore_notebook, "20-train": trained / runs.NOTEBOOKS_DIR / "20-train.ipynb",
                 **{name: run_dir / runs.NOTEBOOKS_DIR / f"{name}.ipynb" for name in CHAPTERS[2:]}}
    for path in notebooks.values():
        if not path.is_file():
            raise ValueError(f"{shown(path)}: missing; run `make notebooks` first")
    quarto = shutil.which(os.environ.get("QUARTO", "quarto") or "none") if use_quarto else None
    entry, stamp = report_dir / "_book" / "index.html", report_dir / "_book" / ".inputs"
    table = runs.runs_table(run_dir.parent)
    inputs = _report_inputs(report_dir, notebooks, run_dir, table, quarto or "fallback", extra_inputs)
    if entry.is_file() and stamp.is_file() and stamp.read_text() == inputs:
        return entry
    for folder in (report_dir, report_dir / "notebooks", report_dir / "_book"):
        remove_stale_partials(folder)
    (report_dir / "notebooks").mkdir(exist_ok=True)
    for name, path in notebooks.items():
        notebook = nbformat.read(path, as_version=4)
        if quarto:
            html_as_raw_markdown(notebook)
        with atomic_path(report_dir / "notebooks" / f"{name}.ipynb") as temporary:
            nbformat.write(notebook, temporary)
    write_summary(report_dir, run_dir, table)
    if quarto:
        entry = render_quarto(report_dir, quarto)
        # Quarto leaves an empty folder for the summary's embedded figures in the source tree.
        if (report_dir / "index_files").is_dir() and not any((report_dir / "index_files").rglob("*")):
            (report_dir / "index_files").rmdir()
    else:
        print("Quarto is not on the PATH (or QUARTO is empty): rendering the self-contained report with nbconvert",
              flush=True)
        entry = render_fallback(report_dir)
    write_text_atomic(stamp, inputs)
    return entry


def main(argv: list[str] | None = None) -> int:
    """Command line: render the report of one run."""
    parser = argparse.ArgumentParser(description="Render the report of a run into report/_book/index.html.")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="write the summary and render report/_book/index.html")
    render.add_argument("--run-dir", required=True, help="the run's folder, for example models/strided-e15-s42")
    render.add_argument("--report-dir", default="report")
    render.add_argument("--fallback", action="store_true",
                        help="use the nbconvert fallback even if Quarto is installed")
    arguments = parser.parse_args(argv)
    run_dir = Path(arguments.run_dir)
    try:
        explore = run_dir.parent / runs.EXPLORE_DIR / "10-explore.ipynb"
        entry = render_report(Path(arguments.report_dir), run_dir, explore, use_quarto=not arguments.fallback)
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"report: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
