"""The documentation: a short README that links every page of docs/, and no link that leads nowhere.

Fast and offline: the Markdown files are read as text, nothing is rendered or fetched.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
MAX_README_LINES = 150
QUICK_START = ("make all EPOCHS=2 SAMPLE_SIZE=10000", "make all")

# [text](target) or [text](target "title"); images too. Links inside code are left out before this is applied.
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...


def documentation_pages() -> list[Path]:
    """README.md and every page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def code_lines(text: str) -> list[str]:
    """The lines inside fenced code blocks."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif in_fence:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but hyphens dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, numbered as GitHub numbers repeated headings (-1, -2...)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, as written."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            lines.append(line)
    return lines


def links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside code."""
    text = path.read_text(encoding="utf-8")
    outside_code = re.sub(r"`[^`\n]*`", "", "\n".join(prose_lines(text)))
    return LINK.findall(outside_code)


def broken_links(path: Path) -> list[str]:
    """Each relative link of a Markdown file that leads to no file, or to no heading of it: 'target (why)'."""
    problems = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            problems.append(f"{target} (no such file)")
        elif anchor:
            if destination.suffix != ".md":
                problems.append(f"{target} (an anchor into a file that is not Markdown)")
            elif anchor not in anchors(destination):
                problems.append(f"{target} (no heading #{anchor} in {destination.name})")
    return problems


# --- The checks ---------------------------------------------------------------------------------------


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; at most {MAX_README_LINES}"


@pytest.mark.parametrize("page", documentation_pages(), ids=lambda page: page.relative_to(PROJECT_ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme():
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has no pages"
    linked = {(README.parent / target.partition("#")[0]).resolve()
              for target in links(README) if not EXTERNAL.match(target)}
    assert [page.name for page in pages if page.resolve() not in linked] == []


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_each_docs_page_has_a_title_and_links_back(page):
    lines = page.read_text(encoding="utf-8").splitlines()
    assert lines and lines[0].startswith("# "), f"{page.name} does not start with a # title"
    assert any(target.partition("#")[0] == "../README.md" for target in links(page)), \
        f"{page.name} does not link back to the README"


@pytest.mark.parametrize("command", QUICK_START)
def test_the_quick_start_commands_appear_as_written(command):
    commands = [line.split("#")[0].strip() for line in code_lines(README.read_text(encoding="utf-8"))]
    assert command in commands


# --- The checker itself can fail ----------------------------------------------------------------------


def test_the_link_checker_flags_broken_links(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section, with `code`!\n\n## Again\n\n## Again\n",
                                       encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md) [fine anchor](other.md#a-section-with-code) [repeated](other.md#again-1)\n"
        "[own heading](#page) [web](https://example.com/missing.md)\n"
        "[missing file](nowhere.md) [missing anchor](other.md#no-such-heading)\n"
        "`[in code](also-nowhere.md)`\n\n"
        "```\n[in a fence](nowhere-either.md)\n# not a heading\n```\n",
        encoding="utf-8")
    assert broken_links(page) == ["nowhere.md (no such file)",
                                  "other.md#no-such-heading (no heading #no-such-heading in other.md)"]
    assert "not-a-heading" not in anchors(page)


def test_slugs_follow_github():
    assert slug("How `make all` works") == "how-make-all-works"
    assert slug("What is redone, and when") == "what-is-redone-and-when"
    assert slug("Sweeps: many runs in one command") == "sweeps-many-runs-in-one-command"
    assert slug("The report and Try it") == "the-report-and-try-it"
