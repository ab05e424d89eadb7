"""Fallback: the report as one self-contained HTML page, rendered with nbconvert where Quarto is not installed.

It shows what the Quarto book shows (the summary with its figures, then each
executed notebook), with every figure inline and nothing loaded from the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
from pathlib import Path

import mistune
import nbformat
from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter

from digits.book import INLINE_SCRIPT
from digits.files import atomic_path, write_text_atomic
from digits.notebook import PARAMETER_TAGS

EMBED = re.compile(r"\{\{<\s*embed\s+(\S+?\.ipynb)#(\S+)\s*>\}\}")
INCLUDE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
CROSS_REFERENCE = re.compile(r"@(fig-[\w-]+)")
# A markdown image of a local PNG with a figure label: ![caption](file.png){#fig-label}
IMAGE = re.compile(r"!\[([^\]]*)\]\(([\w.-]+\.png)\)\{#(fig-[\w-]+)\}")
# Quarto's divs (::: {.callout-warning} ... :::, ::: {.runs-table} ... :::) as HTML <div>s.
DIV = re.compile(r"^::: *\{\.([\w-]+)\} *\n(.*?)\n:::$", flags=re.MULTILINE | re.DOTALL)
# What the page may load: its inline styles and data: images, and the inline scripts of "Try it" (by their
# SHA-256); nothing else: no file, no network, no other script. TensorFlow.js probes WebAssembly's features
# (WebAssembly.validate) as it starts: 'wasm-unsafe-eval' allows that, and no JavaScript eval.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'wasm-unsafe-eval' {hashes}"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; }
nav { position: fixed; top: 0; left: 0; bottom: 0; width: 15rem; padding: 1rem; background: #f6f7f9;
      border-right: 1px solid #ddd; overflow-y: auto; font-size: 0.9rem; }
nav a { color: #1a5fb4; text-decoration: none; } nav li { margin: 0.3rem 0; }
main { margin-left: 17rem; max-width: 60rem; padding: 1rem 2rem 4rem; }
section { border-bottom: 2px solid #eee; padding-bottom: 2rem; }
.table-scroll, .jp-RenderedHTMLCommon, .runs-table { overflow-x: auto; }
.runs-table td, .runs-table th { white-space: nowrap; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; } figure { margin: 1rem 0; } figcaption { font-size: 0.9rem; color: #555; }
pre { background: #f6f8fa; padding: 0.6rem; font-size: 0.85rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.jp-OutputPrompt, .jp-InputPrompt { display: none; }
.anchor-link { display: none; }
.callout { border-left: 4px solid #1a5fb4; background: #f3f7fc; padding: 0.2rem 1rem; margin: 1rem 0; }
.callout-warning { border-left-color: #c77c02; background: #fdf6e7; }
blockquote { border-left: 4px solid #1a5fb4; background: #f3f7fc; margin: 1rem 0; padding: 0.2rem 1rem; }
.jp-RenderedText pre { background: #fff; border-left: 3px solid #ddd; }
"""


def content_security_policy(body: str) -> str:
    """The page's policy: its own inline scripts, by their SHA-256, are the only ones that may run."""
    hashes = sorted({"'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
                     for script in INLINE_SCRIPT.findall(body)})
    return POLICY.format(hashes=" ".join(hashes) or "'none'")


def figure_html(label: str, caption: str, png: str | bytes) -> str:
    """An inline <figure> of a PNG (bytes, or base64 text) with its caption."""
    data = png if isinstance(png, str) else base64.b64encode(png).decode()
    caption = html.escape(caption)
    return (f'<figure id="{html.escape(label)}"><img alt="{caption}" src="data:image/png;base64,{data.strip()}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _labelled_figure(notebook: nbformat.NotebookNode, label: str) -> str:
    """The PNG output of the cell labelled `#| label: <label>`, as a figure with its caption."""
    for cell in notebook.cells:
        options = dict(re.findall(r"^#\|\s*([\w-]+):\s*(.*)$", cell.source, flags=re.MULTILINE))
        if options.get("label") == label:
            images = [out["data"]["image/png"] for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
            if images:
                return figure_html(label, options.get("fig-cap", "").strip('"'), images[0])
    raise ValueError(f"no figure labelled {label!r} with an image output in the notebook")


def _divs_to_html(markdown: str) -> str:
    """Quarto's divs (::: {.callout-note} ... :::) as <div>s of the same class whose content stays markdown."""
    def div(match: re.Match) -> str:
        classes = f"callout {match.group(1)}" if match.group(1).startswith("callout-") else match.group(1)
        return f'<div class="{classes}">\n\n{match.group(2)}\n\n</div>'
    return DIV.sub(div, markdown)


def _summary_html(report_dir: Path) -> str:
    """index.qmd with its include and embed shortcodes resolved, as HTML (its tables in scroll boxes)."""
    text = (report_dir / "index.qmd").read_text()
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    text = _divs_to_html(INCLUDE.sub(lambda match: (report_dir / match.group(1)).read_text(), text))
    text = text.replace("{.unnumbered}", "")
    notebooks: dict[str, nbformat.NotebookNode] = {}

    def embed(match: re.Match) -> str:
        notebooks.setdefault(match.group(1), nbformat.read(report_dir / match.group(1), as_version=4))
        return _labelled_figure(notebooks[match.group(1)], match.group(2))

    text = EMBED.sub(embed, text)
    text = IMAGE.sub(lambda match: figure_html(match.group(3), match.group(1),
                                               (report_dir / match.group(2)).read_bytes()), text)
    text = CROSS_REFERENCE.sub(lambda match: f"[the figure](#{match.group(1)})", text)
    body = mistune.create_markdown(escape=False, plugins=["table"])(text)
    return body.replace("<table>", '<div class="table-scroll"><table>').replace("</table>", "</table></div>")


def _notebook_html(path: Path) -> tuple[str, str]:
    """(title, body HTML) of an executed notebook without its parameters cells and `#|` option lines."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if not PARAMETER_TAGS & set(cell.metadata.get("tags", []))]
    for cell in notebook.cells:
        cell.source = re.sub(r"^#\|.*\n?", "", cell.source, flags=re.MULTILINE)
        if cell.cell_type == "markdown":
            cell.source = _divs_to_html(cell.source)
    title = next((line[2:].strip() for cell in notebook.cells if cell.cell_type == "markdown"
                  for line in cell.source.splitlines() if line.startswith("# ")), path.stem)
    body, _ = HTMLExporter(template_name="basic", exclude_input_prompt=True,
                           exclude_output_prompt=True).from_notebook_node(notebook)
    return title, body


def _try_it_html(report_dir: Path) -> str:
    """The "Try it" chapter's HTML (report/try-it.qmd holds it as a raw block), under a heading."""
    text = (report_dir / "try-it.qmd").read_text(encoding="utf-8")
    return "<h1>Try it</h1>\n" + text.split("```{=html}\n", 1)[1].rsplit("\n```", 1)[0]


def render(report_dir: Path, chapters: list[str]) -> Path:
    """Render the summary, the chapters' notebooks and "Try it" into one self-contained report/_book/index.html."""
    sections = [("summary", "Summary", _summary_html(report_dir))]
    for chapter in chapters:
        title, body = _notebook_html(report_dir / "notebooks" / f"{chapter}.ipynb")
        sections.append((chapter, title, body))
    sections.append(("try-it", "Try it", _try_it_html(report_dir)))
    contents = "".join(f'<li><a href="#{anchor}">{html.escape(title)}</a></li>' for anchor, title, _ in sections)
    body = "".join(f'<section id="{anchor}">{body}</section>' for anchor, _, body in sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(body)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Digit recognizer: report</title>"
        f"<style>{STYLE}{HtmlFormatter().get_style_defs('.highlight')}</style></head><body>"
        f"<nav><strong>Digit recognizer</strong><ol>{contents}</ol></nav><main>{body}</main></body></html>\n"
    )
    book = report_dir / "_book"
    book.mkdir(exist_ok=True)
    if (report_dir / "submission.csv").is_file():
        with atomic_path(book / "submission.csv") as temporary:
            shutil.copyfile(report_dir / "submission.csv", temporary)
    write_text_atomic(book / "index.html", page)
    return book / "index.html"
