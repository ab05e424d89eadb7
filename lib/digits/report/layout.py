"""Layout: what makes a page read well at any width, for both kinds of page (digits.report.pages).

Every table gets its own scroll box, so a wide one scrolls there and never the
page. Each PNG figure gets the smallest width at which its smallest text
(digits.plots.SMALLEST_POINTS, at the resolution the PNG records) shows at
LEGIBLE_PIXELS: a narrower screen scrolls the figure in its own box rather than
shrink its text. <script> elements are left as they are.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable

SCRIPT_ELEMENT = re.compile(r"(<script\b.*?</script>)", flags=re.DOTALL)
PNG_IMAGE = re.compile(r'<img\b([^>]*?)\bsrc="([^"]+)"')
LEGIBLE_PIXELS = 10  # the smallest text a reader should have to read, in CSS pixels
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _outside_scripts(text: str, change: Callable[[str], str]) -> str:
    """`text` with `change` applied to everything but its <script> elements."""
    parts = SCRIPT_ELEMENT.split(text)
    return "".join(part if index % 2 else change(part) for index, part in enumerate(parts))


def scrolling_tables(text: str) -> str:
    """Every table of a page in its own scroll box: a wide one scrolls there, never the page."""
    return _outside_scripts(text, lambda part: re.sub(r"<table\b", '<div class="table-scroll"><table', part)
                            .replace("</table>", "</table></div>"))


def png_width_and_dpi(data: bytes) -> tuple[int, float | None]:
    """A PNG's width in pixels and the dots per inch it records (None where it records none); ValueError if not
    a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG image")
    width, position = int.from_bytes(data[16:20], "big"), len(PNG_SIGNATURE)
    while position + 8 <= len(data) and data[position + 4:position + 8] != b"IDAT":
        length = int.from_bytes(data[position:position + 4], "big")
        if data[position + 4:position + 8] == b"pHYs" and data[position + 16] == 1:  # dots per metre
            return width, int.from_bytes(data[position + 8:position + 12], "big") * 0.0254
        position += 12 + length
    return width, None


def legible_width(data: bytes) -> int | None:
    """The smallest width (CSS pixels) at which a figure's smallest text shows at LEGIBLE_PIXELS; None where the
    PNG records no resolution."""
    from digits.plots import SMALLEST_POINTS

    width, dpi = png_width_and_dpi(data)
    return None if not dpi else min(width, math.ceil(width * LEGIBLE_PIXELS / (SMALLEST_POINTS * dpi / 72)))


def legible_figures(text: str, read: Callable[[str], bytes | None]) -> str:
    """Each PNG image of a page (`read` gives its bytes from its src, or None) with its legible minimum width."""
    def sized(match: re.Match) -> str:
        data = read(html.unescape(match.group(2)))
        width = legible_width(data) if data and data.startswith(PNG_SIGNATURE) else None
        return match.group(0) if width is None else f'<img style="min-width: {width}px"{match.group(1)}' \
                                                     f'src="{match.group(2)}"'
    return _outside_scripts(text, lambda part: PNG_IMAGE.sub(sized, part))


def data_uri_bytes(source: str) -> bytes | None:
    """The bytes of a data: URI of a base64 PNG, else None."""
    prefix = "data:image/png;base64,"
    return base64.b64decode(source[len(prefix):]) if source.startswith(prefix) else None
