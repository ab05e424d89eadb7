"""The report as a reader sees it at a laptop's width and a phone's, opened from disk in Chromium: every element
within its column (a wide table or figure scrolls in its own box), no sideways scroll, every header readable, figure
text at 10 px or more, no console message, nothing from the network; and what each page offers (Try it numbered
and linked from the summary, code folded, each chapter's executed notebook to download)."""

from __future__ import annotations

import base64
import io
import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from digits.plots import SMALLEST_POINTS
from helpers import QUICK, chromium, console_problems, fake_finished_run, need, requests_made, run_make

pytestmark = pytest.mark.slow

WIDTHS = {"laptop": (1400, 900), "phone": (390, 844)}
LEGIBLE_PIXELS = 10
CHAPTERS = ("10-explore", "20-train", "30-evaluate", "40-submit")

# Every visible element that runs past its column (the text column, or the window for what is outside it) and is
# not inside a box of its own that scrolls sideways within that column; and the page's own sideways scroll.
LAYOUT_PROBLEMS = """
const column = document.querySelector(arguments[0]).getBoundingClientRect();
const problems = [];
const width = document.documentElement.clientWidth;
if (document.documentElement.scrollWidth > width + 1) {
  problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px in ${width}`);
}
function scrolls(element) {
  const style = getComputedStyle(element);
  return ["auto", "scroll", "hidden"].includes(style.overflowX);
}
function describe(element) {
  const text = (element.textContent || element.getAttribute("alt") || "").trim().slice(0, 40);
  return `${element.tagName.toLowerCase()}.${String(element.className).split(" ")[0]} "${text}"`;
}
for (const element of document.body.querySelectorAll("*")) {
  const box = element.getBoundingClientRect();
  const style = getComputedStyle(element);
  if (box.width === 0 || box.height === 0 || style.visibility === "hidden" || style.position === "fixed") continue;
  const inColumn = element.closest(arguments[0]) !== null;
  const [left, right] = inColumn ? [column.left, column.right] : [0, width];
  if (box.left >= left - 1 && box.right <= right + 1) continue;
  let ancestor = element.parentElement, held = false;
  while (ancestor && ancestor !== document.body) {
    const outer = ancestor.getBoundingClientRect();
    if (scrolls(ancestor) && outer.left >= left - 1 && outer.right <= right + 1) { held = true; break; }
    ancestor = ancestor.parentElement;
  }
  if (!held) problems.push(`${describe(element)}: ${Math.round(box.left)}..${Math.round(box.right)} px, ` +
                           `its column ${Math.round(left)}..${Math.round(right)}`);
}
for (const header of document.querySelectorAll("th")) {
  if (header.scrollWidth > header.clientWidth + 1) problems.push(`header cut: ${describe(header)}`);
}
return problems.slice(0, 10);
"""
IMAGES = """return Array.from(document.querySelectorAll('img')).filter((i) => i.naturalWidth > 0 && i.clientWidth > 0)
    .map((i) => [i.getAttribute('src'), i.clientWidth / i.naturalWidth]);"""


def png_dpi(source: str, page: Path) -> float:
    """The resolution a PNG of the page records (Pillow's reading of it)."""
    if source.startswith("data:"):
        data = base64.b64decode(source.split(",", 1)[1])
    else:
        data = (page.parent / unquote(urlparse(source).path)).read_bytes()
    return Image.open(io.BytesIO(data)).info["dpi"][0]


def smallest_figure_text(driver, page: Path) -> dict[str, float]:
    """For each PNG figure of the page, the size its smallest text is shown at, in CSS pixels."""
    return {source[-50:]: SMALLEST_POINTS * png_dpi(source, page) / 72 * scale
            for source, scale in driver.execute_script(IMAGES) if ".png" in source or source.startswith("data:")}


def check_page(driver, page: Path, column: str) -> dict:
    """What a reader of the page would find wrong, at the window's present width."""
    driver.get(page.as_uri())
    driver.execute_script("return document.fonts.ready;")
    figures = smallest_figure_text(driver, page)
    return {"layout": driver.execute_script(LAYOUT_PROBLEMS, column),
            # Search needs the book served: from disk a search button would open nothing and log an error.
            "search buttons": driver.execute_script(
                "return document.querySelectorAll('[onclick*=\"quartoOpenSearch\"]').length;"),
            "small figure text": {name: round(px, 1) for name, px in figures.items() if px < LEGIBLE_PIXELS},
            "console": console_problems(driver), "network": requests_made(driver)}


NOTHING_WRONG = {"layout": [], "search buttons": 0, "small figure text": {}, "console": [], "network": []}


@contextmanager
def browser(width: str):
    """Headless Chromium showing pages at a laptop's or a phone's size (a phone's as a phone: its viewport emulated,
    since a desktop window cannot be made that narrow)."""
    columns, rows = WIDTHS[width]
    with chromium(max(columns, 800), rows) as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": columns, "height": rows, "deviceScaleFactor": 1, "mobile": width == "phone"})
        yield driver


@pytest.fixture(scope="module")
def swept_book(finished_project, tmp_path_factory) -> Path:
    """The session's clone with two more kept runs (other epochs and seeds, long names: the runs table of a sweep),
    its report rendered by Quarto: read only."""
    need("quarto", how="conda-forge `quarto`, or quarto.org; see README")
    project = tmp_path_factory.mktemp("swept") / "swept clone"
    shutil.copytree(finished_project[0], project, symlinks=True)
    for epochs, seed, minute in ((3, 7, "01"), (2, 12345, "02")):
        fake_finished_run(project, f"2026-01-01T00:{minute}:00", 0.9 + seed / 1e6, 0.91, data_dir=project / "tiny data",
                          epochs=epochs, seed=seed, batch_size=64)
    result = run_make(project, "report", *QUICK, "QUARTO=quarto")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project / "report" / "_book"


@pytest.fixture(scope="module")
def single_page(swept_book, tmp_path_factory) -> Path:
    """The same project rendered as the self-contained page, as where there is no Quarto: read only."""
    project = tmp_path_factory.mktemp("single") / "single clone"
    shutil.copytree(swept_book.parents[1], project, symlinks=True)
    result = run_make(project, "report", *QUICK, "QUARTO=no")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project / "report" / "_book" / "index.html"


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_of_the_book_reads_well(swept_book, width):
    pages = [swept_book / "index.html", *(swept_book / "notebooks" / f"{name}.html" for name in CHAPTERS),
             swept_book / "try-it.html"]
    with browser(width) as driver:
        found = {page.name: check_page(driver, page, "main") for page in pages}
    assert {name: problems for name, problems in found.items() if problems != NOTHING_WRONG} == {}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_self_contained_page_reads_well_at_every_width(single_page, width):
    with browser(width) as driver:
        assert check_page(driver, single_page, "main") == NOTHING_WRONG


def test_the_runs_table_scrolls_in_its_own_box_with_every_column(swept_book):
    with browser("laptop") as driver:
        driver.get((swept_book / "index.html").as_uri())
        headers = driver.execute_script("""const box = document.querySelector('.runs-table .table-scroll');
            return [box.scrollWidth > 0, Array.from(box.querySelectorAll('th')).map((th) => th.textContent.trim())];""")
        assert headers[1][:3] == ["run", "epochs", "seed"] and {"finished", "images/s"} <= set(headers[1])
        assert all(headers[1]), headers[1]  # every column named


def test_try_it_is_a_numbered_chapter_linked_from_the_summary(swept_book):
    with browser("laptop") as driver:
        driver.get((swept_book / "index.html").as_uri())
        link = driver.find_element(By.CSS_SELECTOR, "main a[href$='try-it.html']")
        assert link.text == "Try it"
        contents = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#quarto-sidebar .sidebar-item-text")]
        assert contents[-1].split() == ["5", "Try", "it"], contents
        link.click()
        assert driver.find_element(By.CSS_SELECTOR, "h1.title").text.split() == ["5", "Try", "it"]


def test_a_chapter_folds_its_code_and_links_its_executed_notebook(swept_book):
    with browser("laptop") as driver:
        driver.get((swept_book / "notebooks" / "20-train.html").as_uri())
        folded = driver.find_elements(By.CSS_SELECTOR, "details.code-fold")
        assert folded and not any(fold.get_attribute("open") for fold in folded)
        code = folded[0].find_element(By.TAG_NAME, "pre")
        assert not code.is_displayed()
        folded[0].find_element(By.TAG_NAME, "summary").click()
        assert code.is_displayed()
        link = driver.find_element(By.CSS_SELECTOR, ".notebook-download a")
        assert link.get_attribute("download") is not None and link.get_attribute("href").endswith("20-train.ipynb")
        assert (console_problems(driver), requests_made(driver)) == ([], [])
    page = (swept_book / "notebooks" / "20-train.html").read_text()
    assert "epochs: int =" not in page  # the parameters cell stays hidden
    executed = json.loads((swept_book / "notebooks" / "20-train.ipynb").read_text())
    assert any(cell.get("outputs") for cell in executed["cells"])  # the run's executed notebook


def test_the_self_contained_page_numbers_try_it_folds_code_and_links_notebooks(single_page):
    with browser("laptop") as driver:
        driver.get(single_page.as_uri())
        contents = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "nav li")]
        assert contents[0] == "Summary" and contents[-1].split() == ["5", "Try", "it"]
        assert driver.find_element(By.CSS_SELECTOR, "#summary a[href='#try-it']").text == "Try it"
        folded = driver.find_elements(By.CSS_SELECTOR, "details.code-fold")
        assert folded and not any(fold.get_attribute("open") for fold in folded)
        links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, ".notebook-download a")]
        assert [link.rsplit("/", 1)[-1] for link in links] == [f"{name}.ipynb" for name in CHAPTERS]
    assert all((single_page.parent / "notebooks" / f"{name}.ipynb").is_file() for name in CHAPTERS)
