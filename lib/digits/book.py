"""Book: the pages Quarto rendered, finished so that the book works opened from disk (file://) and says what it may load.

Browsers run no module scripts for pages opened from disk, and Quarto's own
`quarto.js` is one (it imports `tabsets.js`): from disk, the contents'
highlight never follows the page and the console fills with errors. The two
files are joined here into one classic, deferred script, which browsers run
from disk as they run modules over http. Search needs `fetch`, which browsers
refuse from disk: there the search box makes way for a note saying how to serve
the book. Every page gets a Content-Security-Policy that allows its own files,
its own inline scripts (by their SHA-256) and data: images, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from digits.files import write_text_atomic

CLASSIC_QUARTO = "quarto-classic.js"
MODULE_SCRIPT = re.compile(r'<script src="([^"]*?)quarto-html/quarto\.js" type="module"></script>')
TABSETS_MODULE = re.compile(r'\s*<script src="[^"]*?quarto-html/tabsets/tabsets\.js" type="module"></script>')
# Inline scripts the browser runs (JSON data blocks are not run, and need no hash).
INLINE_SCRIPT = re.compile(r'<script(?![^>]*\bsrc=)(?![^>]*type="application/json")[^>]*>(.*?)</script>', re.DOTALL)
# Quarto's buttons carry their handlers in attributes (onclick="..."): allowed by their hashes too.
EVENT_HANDLER = re.compile(r'\son[a-z]+="([^"]*)"')
COLLAPSED_TABLE_OF_CONTENTS = re.compile(r'(<nav id="TOC".*?</nav>)', flags=re.DOTALL)
# Quarto marks each embedded figure with the absolute path of its notebook (used only outside books).
NOTEBOOK_PATH_ATTRIBUTE = re.compile(r'\sdata-notebook="[^"]*"')
SERVE_COMMAND = "make serve-report"
FROM_DISK = f"""<script>
// Opened from disk, the book cannot fetch its search index: the search box makes way for a note.
if (window.location.protocol === "file:") {{
  document.addEventListener("DOMContentLoaded", function () {{
    var search = document.getElementById("quarto-search");
    if (!search) return;
    var note = document.createElement("p");
    note.className = "from-disk-note";
    note.textContent = "Search works when the book is served: {SERVE_COMMAND}, then open the address it prints.";
    search.replaceWith(note);
  }});
}}
</script>"""
POLICY = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'")


def classic_quarto_script(site_libs: Path) -> str:
    """quarto.js with tabsets.js inlined in place of its import: the same code as one classic script."""
    quarto = (site_libs / "quarto-html" / "quarto.js").read_text(encoding="utf-8")
    tabsets = (site_libs / "quarto-html" / "tabsets" / "tabsets.js").read_text(encoding="utf-8")
    if not quarto.startswith('import * as tabsets from "./tabsets/tabsets.js";') or "export " in quarto:
        raise ValueError("this Quarto's quarto.js is not the one the book knows how to serve from disk")
    tabsets = re.sub(r"^export function ", "function ", tabsets, flags=re.MULTILINE)
    body = quarto.split("\n", 1)[1]
    return f"(function () {{\nconst tabsets = (function () {{\n{tabsets}\nreturn {{ init }};\n}})();\n{body}\n}})();\n"


def _hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


def content_security_policy(page: str) -> str:
    """The policy of a page: its own files, its inline scripts and handlers by their SHA-256, data: images."""
    hashes = sorted({_hash(script) for script in INLINE_SCRIPT.findall(page)})
    handlers = sorted({_hash(html.unescape(code)) for code in EVENT_HANDLER.findall(page)})
    return POLICY.format(hashes=" ".join(hashes + (["'unsafe-hashes'", *handlers] if handlers else [])))


def finish_page(text: str) -> str:
    """One rendered page, made to work from disk: classic scripts, the search note, open contents, its policy."""
    text = NOTEBOOK_PATH_ATTRIBUTE.sub("", text)
    text = TABSETS_MODULE.sub("", text)
    text = MODULE_SCRIPT.sub(lambda match: f'<script src="{match.group(1)}quarto-html/{CLASSIC_QUARTO}" defer>'
                                           "</script>", text)
    # The contents' sub-sections are open, as the page shows them before its scripts run.
    text = COLLAPSED_TABLE_OF_CONTENTS.sub(lambda match: match.group(1).replace('<ul class="collapse">', "<ul>"), text)
    text = re.sub(r"<head>\s*", lambda match: match.group(0) + FROM_DISK + "\n", text, count=1)
    policy = f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(text)}">'
    return re.sub(r"<head>\s*", lambda match: match.group(0) + policy + "\n", text, count=1)


def finish_book(book: Path) -> None:
    """Finish every page of a rendered book (report/_book) and write the classic Quarto script beside its module."""
    site_libs = book / "site_libs"
    write_text_atomic(site_libs / "quarto-html" / CLASSIC_QUARTO, classic_quarto_script(site_libs))
    for page in book.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        write_text_atomic(page, finish_page(text))
