"""Display: values as people read them (paths, percentages, tables), in text and in HTML."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from digits.util.paths import project_root


def shown(path: str | Path) -> str:
    """A path for people: relative to the project when inside it, so no page shows the machine's folders."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(project_root()))
    except (ValueError, OSError, RuntimeError):  # outside the project, or a path that cannot be resolved (a loop)
        return str(path)


def missing(value: Any) -> bool:
    """True for None and NaN: a value not known."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: float | None) -> str:
    """0.99512 -> '99.51%'; None or NaN -> ''."""
    return "" if missing(value) else f"{value:.2%}"


# Characters that markdown (and pandoc's pipe tables) would read as markup. Not "#": a value is never at the
# start of a line, where it would make a heading, and the HTML entities of escaped quotes (&#x27;) contain it.
MARKDOWN_SPECIAL = str.maketrans({character: "\\" + character for character in "\\`*_[]{}()+!|<>~$"})


def markdown_text(value: Any) -> str:
    """Any value as literal text in markdown: HTML escaped, markdown's markup characters escaped."""
    if missing(value):
        return ""
    text = " ".join(str(value).split())  # one line: a newline would end a table row
    return html.escape(text, quote=True).translate(MARKDOWN_SPECIAL)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], bold_rows: Iterable[int] = ()) -> str:
    """A pipe table of literal values (every cell escaped); the rows numbered in bold_rows in bold."""
    bold = set(bold_rows)
    lines = ["| " + " | ".join(markdown_text(name) for name in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for index, row in enumerate(rows):
        cells = [markdown_text(value) for value in row]
        if index in bold:
            cells = [f"**{cell}**" if cell else "" for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fixed(value: Any, places: int) -> str:
    """A number with `places` decimals; "" for a missing one."""
    return "" if missing(value) else f"{value:.{places}f}"


def decimals(values: Iterable[Any]) -> int:
    """How many decimals a column of numbers is shown with: none when every one is whole, else two."""
    return 0 if all(missing(value) or float(value).is_integer() for value in values) else 2


def readable_numbers(frame: Any, percent_columns: Sequence[str] = ("val_accuracy", "test_accuracy")) -> Any:
    """A DataFrame's values as text: the given columns as percentages, every other column of numbers with one
    number of decimals (0.40 and 0.41, never 0.4 and 0.41), missing values blank."""
    shown_frame = frame.astype(object).where(frame.notna(), "")
    for column in frame.columns:
        if column in percent_columns:
            shown_frame[column] = frame[column].map(percent)
        elif frame[column].dtype.kind in "if":
            shown_frame[column] = frame[column].map(partial(_fixed, places=decimals(frame[column])))
    return shown_frame


def text_table(frame: Any, percent_columns: Sequence[str] = ("val_accuracy", "test_accuracy")) -> str:
    """A DataFrame as aligned text for a terminal, the given columns as percentages, missing values blank."""
    text = readable_numbers(frame, percent_columns).to_string(index=False)
    return "\n".join(line.rstrip() for line in text.splitlines())
