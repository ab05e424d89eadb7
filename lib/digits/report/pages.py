"""Pages: the report's HTML as a reader opens it, from disk, with a Content-Security-Policy on every page.

Two kinds of page, one policy builder (`content_security_policy`): a page runs
only its own inline scripts, each allowed by its SHA-256, shows data: images,
and loads nothing from the network.

- **The Quarto book** (`finish_book`). Browsers run no module scripts for pages
  opened from disk, and Quarto's own `quarto.js` is one (it imports
  `tabsets.js`): from disk, the contents' highlight never follows the page and
  the console fills with errors. The two files are joined here into one
  classic, deferred script, which browsers run from disk as they run modules
  over http. Search needs `fetch`, which browsers refuse from disk: there the
  search box (and the header's search button, on a phone) makes way for a note
  saying how to serve the book. A book's pages may also load the book's own files.
  Each notebook chapter links to the run's executed notebook, copied beside it.
- **The self-contained page** (`render_page`), rendered with nbconvert where
  Quarto is not installed: the summary with its figures, each executed
  notebook (its code folded) and Try it, every figure inline; it may load no file at all.

Both read well at any width: every table scrolls in its own box, and each figure
carries the smallest width at which its smallest text (digits.plots.SMALLEST_POINTS)
shows at LEGIBLE_PIXELS, scrolling in its own box on a screen narrower than that.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import mistune
import nbformat
from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter

from digits.report.layout import data_uri_bytes, legible_figures, scrolling_tables
from digits.util.files import atomic_path, write_text_atomic

# The cells no page shows: the run's parameters are a table of the summary instead.
PARAMETER_TAGS = {"parameters", "injected-parameters"}
HIDE_OPTION = "#| include: false"


def tidy_for_report(notebook: Any) -> None:
    """Prepare an executed notebook (a NotebookNode) for the report, in place.

    The parameters and papermill's injected-parameters cells get `include: false`
    (the run's parameters are shown as a table instead).
    """
    for cell in notebook.cells:
        tagged = PARAMETER_TAGS & set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and tagged and not cell.source.startswith(HIDE_OPTION):
            cell.source = f"{HIDE_OPTION}\n{cell.source}"


# --- Both kinds of page: each notebook chapter's executed notebook, to download ---------------------------

NOTEBOOKS_FOLDER = "notebooks"  # where the executed notebooks lie in the book, beside their chapters


def copy_notebooks(book: Path, notebooks: dict[str, Path]) -> None:
    """Copy the run's executed notebooks into the book's notebooks/ folder, where each chapter links to its own."""
    (book / NOTEBOOKS_FOLDER).mkdir(parents=True, exist_ok=True)
    for name, path in notebooks.items():
        with atomic_path(book / NOTEBOOKS_FOLDER / f"{name}.ipynb") as temporary:
            shutil.copyfile(path, temporary)


def download_link(href: str, name: str) -> str:
    """A paragraph linking to an executed notebook, to download."""
    return (f'<p class="notebook-download"><a href="{html.escape(href)}" download>Download the executed notebook '
            f"({html.escape(name)})</a>: every cell with the outputs of this run.</p>")


# --- One policy for every page ------------------------------------------------------------------------

# Inline scripts the browser runs (JSON data blocks are not run, and need no hash).
INLINE_SCRIPT = re.compile(r'<script(?![^>]*\bsrc=)(?![^>]*type="application/json")[^>]*>(.*?)</script>', re.DOTALL)
# Quarto's buttons carry their handlers in attributes (onclick="..."): allowed by their hashes too.
EVENT_HANDLER = re.compile(r'\son[a-z]+="([^"]*)"')
# TensorFlow.js probes WebAssembly's features (WebAssembly.validate) as it starts: 'wasm-unsafe-eval' allows
# that, and no JavaScript eval.
POLICY = "default-src 'none'; script-src {scripts}; style-src {styles}; img-src {images}{more}"
OWN_FILES = "; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'"


def _hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


def content_security_policy(page: str, own_files: bool) -> str:
    """The policy of a page: its inline scripts and handlers by their SHA-256, data: images, and with `own_files`
    the files beside it (a book's); nothing else."""
    hashes = sorted({_hash(script) for script in INLINE_SCRIPT.findall(page)})
    handlers = sorted({_hash(html.unescape(code)) for code in EVENT_HANDLER.findall(page)})
    scripts = ["'self'"] * own_files + ["'wasm-unsafe-eval'", *hashes]
    scripts += ["'unsafe-hashes'", *handlers] if handlers else []
    return POLICY.format(scripts=" ".join(scripts), styles="'self' 'unsafe-inline'" if own_files else "'unsafe-inline'",
                         images="'self' data:" if own_files else "data:", more=OWN_FILES if own_files else "")


# --- The Quarto book, finished to work from disk -----------------------------------------------------

CLASSIC_QUARTO = "quarto-classic.js"
MODULE_SCRIPT = re.compile(r'<script src="([^"]*?)quarto-html/quarto\.js" type="module"></script>')
TABSETS_MODULE = re.compile(r'\s*<script src="[^"]*?quarto-html/tabsets/tabsets\.js" type="module"></script>')
COLLAPSED_TABLE_OF_CONTENTS = re.compile(r'(<nav id="TOC".*?</nav>)', flags=re.DOTALL)
# Quarto marks each embedded figure with the absolute path of its notebook (used only outside books).
NOTEBOOK_PATH_ATTRIBUTE = re.compile(r'\sdata-notebook="[^"]*"')
SERVE_COMMAND = "make serve-report"
FROM_DISK = f"""<script>
// Opened from disk, the book cannot fetch its search index: the search box makes way for a note.
if (window.location.protocol === "file:") {{
  document.addEventListener("DOMContentLoaded", function () {{
    // A phone's header has a search button of its own: it would open nothing.
    document.querySelectorAll('[onclick*="quartoOpenSearch"]').forEach(function (button) {{ button.remove(); }});
    var search = document.getElementById("quarto-search");
    if (!search) return;
    var note = document.createElement("p");
    note.className = "from-disk-note";
    note.textContent = "Search works when the book is served: {SERVE_COMMAND}, then open the address it prints.";
    search.replaceWith(note);
  }});
}}
</script>"""


def classic_quarto_script(site_libs: Path) -> str:
    """quarto.js with tabsets.js inlined in place of its import: the same code as one classic script."""
    quarto = (site_libs / "quarto-html" / "quarto.js").read_text(encoding="utf-8")
    tabsets = (site_libs / "quarto-html" / "tabsets" / "tabsets.js").read_text(encoding="utf-8")
    if not quarto.startswith('import * as tabsets from "./tabsets/tabsets.js";') or "export " in quarto:
        raise ValueError("this Quarto's quarto.js is not the one the book knows how to serve from disk")
    tabsets = re.sub(r"^export function ", "function ", tabsets, flags=re.MULTILINE)
    body = quarto.split("\n", 1)[1]
    return f"(function () {{\nconst tabsets = (function () {{\n{tabsets}\nreturn {{ init }};\n}})();\n{body}\n}})();\n"


TITLE_BLOCK_END = re.compile(r'(<header id="title-block-header".*?</header>)', flags=re.DOTALL)


def _file_reader(page: Path) -> Callable[[str], bytes | None]:
    """What a page's relative src reads from the book, None for anything else."""
    def read(source: str) -> bytes | None:
        path = page.parent / unquote(source.split("#")[0].split("?")[0])
        return path.read_bytes() if ":" not in source and path.is_file() else None
    return read


def finish_page(text: str, page: Path | None = None) -> str:
    """One rendered page, made to work from disk: classic scripts, the search note, open contents, tables that
    scroll, legible figures (read beside `page`), the chapter's notebook to download, its policy."""
    text = NOTEBOOK_PATH_ATTRIBUTE.sub("", text)
    text = scrolling_tables(text)
    if page is not None:
        text = legible_figures(text, _file_reader(page))
        if page.parent.name == NOTEBOOKS_FOLDER and page.with_suffix(".ipynb").is_file():
            link = download_link(page.with_suffix(".ipynb").name, page.with_suffix(".ipynb").name)
            text = TITLE_BLOCK_END.sub(lambda match: match.group(1) + "\n" + link, text, count=1)
    text = TABSETS_MODULE.sub("", text)
    text = MODULE_SCRIPT.sub(lambda match: f'<script src="{match.group(1)}quarto-html/{CLASSIC_QUARTO}" defer>'
                                           "</script>", text)
    # The contents' sub-sections are open, as the page shows them before its scripts run.
    text = COLLAPSED_TABLE_OF_CONTENTS.sub(lambda match: match.group(1).replace('<ul class="collapse">', "<ul>"), text)
    text = re.sub(r"<head>\s*", lambda match: match.group(0) + FROM_DISK + "\n", text, count=1)
    policy = f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(text, own_files=True)}">'
    return re.sub(r"<head>\s*", lambda match: match.group(0) + policy + "\n", text, count=1)


def finish_book(book: Path) -> None:
    """Finish every page of a rendered book (report/_book) and write the classic Quarto script beside its module."""
    site_libs = book / "site_libs"
    write_text_atomic(site_libs / "quarto-html" / CLASSIC_QUARTO, classic_quarto_script(site_libs))
    for page in book.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        write_text_atomic(page, finish_page(text, page))


# --- The self-contained page -------------------------------------------------------------------------

EMBED = re.compile(r"\{\{<\s*embed\s+(\S+?\.ipynb)#(\S+)\s*>\}\}")
INCLUDE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")
CROSS_REFERENCE = re.compile(r"@(fig-[\w-]+)")
# A markdown image of a local PNG with a figure label: ![caption](file.png){#fig-label}
IMAGE = re.compile(r"!\[([^\]]*)\]\(([\w.-]+\.png)\)\{#(fig-[\w-]+)\}")
# Quarto's divs (::: {.callout-warning} ... :::, ::: {.runs-table} ... :::) as HTML <div>s.
DIV = re.compile(r"^::: *\{\.([\w-]+)\} *\n(.*?)\n:::$", flags=re.MULTILINE | re.DOTALL)
PAGE_STYLE = Path(__file__).resolve().parent / "web" / "page.css"


def figure_html(label: str, caption: str, png: str | bytes) -> str:
    """An inline <figure> of a PNG (bytes, or base64 text) with its caption."""
    data = png if isinstance(png, str) else base64.b64encode(png).decode()
    caption = html.escape(caption)
    return (f'<figure id="{html.escape(label)}"><div class="figure-scroll"><img alt="{caption}" '
            f'src="data:image/png;base64,{data.strip()}"></div><figcaption>{caption}</figcaption></figure>')


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
    """index.qmd with its include and embed shortcodes resolved, as HTML."""
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
    text = text.replace("](try-it.qmd)", "](#try-it)")  # the book's chapter is this page's last section
    return mistune.create_markdown(escape=False, plugins=["table"])(text)


CODE_INPUT = re.compile(r'(<div class="highlight[^"]*"><pre>.*?</pre>\s*</div>)', flags=re.DOTALL)


def _notebook_html(path: Path) -> tuple[str, str]:
    """(title, body HTML) of an executed notebook without its parameters cells and `#|` option lines, its code
    folded."""
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
    body = CODE_INPUT.sub(lambda match: f'<details class="code-fold"><summary>Code</summary>{match.group(1)}'
                                        "</details>", body)
    return title, body


def _try_it_html(report_dir: Path) -> str:
    """The "Try it" chapter's HTML (report/try-it.qmd holds it as a raw block), under a heading."""
    text = (report_dir / "try-it.qmd").read_text(encoding="utf-8")
    return "<h1>Try it</h1>\n" + text.split("```{=html}\n", 1)[1].rsplit("\n```", 1)[0]


def _contents_entry(anchor: str, title: str, number: int) -> str:
    """A line of the page's contents: the chapters numbered as in the book, the summary not."""
    shown_number = f'<span class="number">{number}</span> ' if number else ""
    return f'<li><a href="#{anchor}">{shown_number}{html.escape(title)}</a></li>'


def render_page(report_dir: Path, chapters: list[str]) -> Path:
    """Render the summary, the chapters' notebooks and "Try it" into one self-contained report/_book/index.html."""
    book = report_dir / "_book"
    sections = [("summary", "Summary", _summary_html(report_dir))]
    for chapter in chapters:
        title, body = _notebook_html(report_dir / "notebooks" / f"{chapter}.ipynb")
        if (book / NOTEBOOKS_FOLDER / f"{chapter}.ipynb").is_file():
            body = download_link(f"{NOTEBOOKS_FOLDER}/{chapter}.ipynb", f"{chapter}.ipynb") + body
        sections.append((chapter, title, body))
    sections.append(("try-it", "Try it", _try_it_html(report_dir)))
    contents = "".join(_contents_entry(anchor, title, number) for number, (anchor, title, _) in enumerate(sections))
    body = "".join(f'<section id="{anchor}">{body}</section>' for anchor, _, body in sections)
    body = legible_figures(scrolling_tables(body), data_uri_bytes)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(body, own_files=False)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Digit recognizer: report</title>"
        f"<style>{PAGE_STYLE.read_text(encoding='utf-8')}{HtmlFormatter().get_style_defs('.highlight')}</style>"
        f"</head><body><nav><strong>Digit recognizer</strong><ul>{contents}</ul></nav><main>{body}</main>"
        "</body></html>\n"
    )
    book.mkdir(exist_ok=True)
    if (report_dir / "submission.csv").is_file():
        with atomic_path(book / "submission.csv") as temporary:
            shutil.copyfile(report_dir / "submission.csv", temporary)
    write_text_atomic(book / "index.html", page)
    return book / "index.html"
