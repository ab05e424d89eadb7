"""The report: notebooks tidied for it, and the rendered page or book checked as a reader gets it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from selenium.webdriver.common.by import By

from digits.report.pages import HIDE_OPTION, tidy_for_report
from helpers import QUICK, chromium, console_problems, need, requests_made, run_make, wait_until

TENSORFLOW_NOTES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795721301.930697   11965 port.cc:153] oneDNN custom operations are on.\n"
)


def test_tidy_hides_the_parameters_cells_and_keeps_every_output(tmp_path):
    notebook = new_notebook(cells=[
        new_code_cell("epochs: int = 3  # how long", metadata={"tags": ["parameters"]}),
        new_code_cell("# Parameters\nepochs = 1", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("import digits", outputs=[
            new_output("stream", name="stderr", text=TENSORFLOW_NOTES),
            new_output("stream", name="stderr", text="UserWarning: something worth reading\n"),
            new_output("stream", name="stdout", text="I0000 is fine on stdout\n"),
        ]),
    ])
    tidy_for_report(notebook)
    tidy_for_report(notebook)  # idempotent
    cells = notebook.cells
    assert cells[0].source == f"{HIDE_OPTION}\nepochs: int = 3  # how long"
    assert cells[1].source.startswith(HIDE_OPTION) and cells[1].source.count(HIDE_OPTION) == 1
    assert [output.text for output in cells[2].outputs] == [
        TENSORFLOW_NOTES, "UserWarning: something worth reading\n", "I0000 is fine on stdout\n"]
    assert not cells[2].source.startswith(HIDE_OPTION)


# --- The rendered report: the fallback page always, the Quarto book where Quarto is installed ---------

RESOURCE_FROM_NETWORK = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//"
    r"|url\(\s*[\"']?(?:https?:)?//|@import\s+[\"']?(?:url\()?\s*[\"']?(?:https?:)?//",
    re.IGNORECASE,
)


def test_the_detector_finds_network_loads():
    """The network check below must be able to fail."""
    for page in ('<script src="https://cdn.example/x.js">', "<link href='//fonts.example/css' rel=stylesheet>",
                 "<style>@import url(https://x/y.css)</style>", '<img src="http://x/y.png">',
                 '@import url("https://fonts.googleapis.com/css2?family=Source+Sans+Pro");'):
        assert RESOURCE_FROM_NETWORK.search(page)
    assert not RESOURCE_FROM_NETWORK.search('<a href="https://www.kaggle.com/">Kaggle</a>')  # a link loads nothing


@pytest.fixture(scope="module")
def book_project(finished_project, tmp_path_factory) -> Path:
    """A copy of the session's clone (under git) with its quick run rendered as the self-contained page, as
    where there is no Quarto: read only."""
    project = tmp_path_factory.mktemp("fallback") / "fallback's clone"
    shutil.copytree(finished_project[0], project, symlinks=True)
    result = run_make(project, "report", *QUICK, "QUARTO=no")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project


def current_run(project: Path) -> dict:
    """The metrics of the one run in the copy."""
    (run,) = [path for path in (project / "models").glob("strided-*")]
    return json.loads((run / "metrics.json").read_text())


def screenshot(page: Path, out: Path) -> np.ndarray:
    """A headless Chromium screenshot of a page, as RGB pixels."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,2400", f"--screenshot={out}", page.as_uri()],
            capture_output=True, timeout=120, check=True,
        )
    return matplotlib.image.imread(out)[..., :3]


def assert_shows_figures_and_tables(pixels: np.ndarray) -> None:
    """A rendered page with text, tables and coloured plots, not a blank or broken one."""
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels.std() > 0.1
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200


@pytest.mark.slow
def test_fallback_page_is_one_self_contained_file(book_project):
    page = (book_project / "report" / "_book" / "index.html").read_text()
    metrics = current_run(book_project)
    assert f"{metrics['test_accuracy']:.2%} test accuracy" in page and "98.98%" in page
    for title in ("Summary", "Explore the data", "Train the network", "Evaluate the model", "Predict the test set"):
        assert title in page
    for label in ("fig-learning-curves", "fig-confusion-matrix", "fig-sample-digits", "fig-runs"):
        assert re.search(rf'<figure id="{label}"><div class="figure-scroll"><img [^>]*src="data:image/png;base64,'
                         r"[A-Za-z0-9+/]{1000}", page)
    assert RESOURCE_FROM_NETWORK.search(page) is None
    assert "models_dir: str =" not in page and "injected-parameters" not in page  # parameters cells hidden
    assert str(book_project) not in page and "/tmp/" not in page  # no absolute path of the machine
    assert f"<strong>{metrics['run']}</strong>" in page  # the Runs table highlights the current run
    assert "This is a quick run, not a result" in page and 'class="callout' in page


def assert_git_status_clean(project: Path) -> None:
    """Only the inputs the test added and what .gitignore covers: no stray files from rendering."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project,
                            capture_output=True, text=True, check=True).stdout
    assert [line for line in status.splitlines() if "tiny data" not in line] == []


@pytest.mark.slow
def test_make_report_leaves_git_status_clean(book_project):
    assert_git_status_clean(book_project)


@pytest.mark.slow
def test_fallback_summary_shows_its_figures_and_tables_in_chromium(book_project, tmp_path):
    assert_shows_figures_and_tables(screenshot(book_project / "report" / "_book" / "index.html", tmp_path / "a.png"))


@pytest.fixture(scope="module")
def quarto_project(finished_project) -> Path:
    """The session's clone, its quick run rendered by Quarto as users render it (report/_book/): read only."""
    need("quarto", how="conda-forge `quarto`, or quarto.org; see README")
    return finished_project[0]


@pytest.fixture(scope="module")
def quarto_book(quarto_project) -> Path:
    return quarto_project / "report" / "_book"


@pytest.mark.slow
def test_quarto_book_loads_nothing_from_the_network(quarto_book):
    files = [*quarto_book.rglob("*.html"), *quarto_book.rglob("*.css")]
    assert len(files) >= 6
    loads = {path.name: RESOURCE_FROM_NETWORK.findall(path.read_text(errors="replace")) for path in files}
    assert {name: found for name, found in loads.items() if found} == {}


@pytest.mark.slow
def test_quarto_book_has_every_chapter_search_and_the_runs(quarto_book, quarto_project):
    metrics = current_run(quarto_project)
    index = (quarto_book / "index.html").read_text()
    assert f"{metrics['test_accuracy']:.2%} test accuracy" in index
    for chapter in ("10-explore", "20-train", "30-evaluate", "40-submit"):
        assert (quarto_book / "notebooks" / f"{chapter}.html").is_file()
    assert (quarto_book / "search.json").is_file() and "quarto-search" in index
    assert f"<strong>{metrics['run']}</strong>" in index and "runs-accuracy.png" in index
    assert "This is a quick run, not a result" in index and "callout-warning" in index


@pytest.mark.slow
def test_quarto_summary_numbers_its_figures_as_it_refers_to_them(quarto_book):
    index = (quarto_book / "index.html").read_text()
    captions = re.findall(r"<figcaption[^>]*>\s*(Figure&nbsp;[\d.]+|Figure [\d.]+)", index)
    references = re.findall(r'class="quarto-xref"[^>]*>(Figure&nbsp;[\d.]+|Figure [\d.]+)</a>', index)
    assert captions  # the embedded figures are numbered
    assert set(references) <= set(captions), (references, captions)


@pytest.mark.slow
def test_quarto_pages_show_no_absolute_path_and_wrap_code(quarto_book, quarto_project):
    for page in quarto_book.rglob("*.html"):
        text = page.read_text()
        assert str(quarto_project) not in text and "/tmp/" not in text, page.name
    (bootstrap,) = (quarto_book / "site_libs" / "bootstrap").glob("bootstrap-*.min.css")
    assert "pre>code.sourceCode{white-space:pre-wrap" in bootstrap.read_text()  # long code lines wrap


@pytest.mark.slow
def test_quarto_summary_table_of_contents_lists_its_sections(quarto_book):
    index = (quarto_book / "index.html").read_text()
    toc = index[index.index('id="TOC"'):]
    toc = toc[: toc.index("</nav>")]
    for section in ("Results against baselines", "Runs", "Learning curves", "Confusion matrix"):
        assert section in toc
    assert 'class="collapse"' not in toc  # unfolded without scripts, as a page opened from disk shows it


@pytest.mark.slow
def test_quarto_summary_shows_its_figures_and_tables_in_chromium(quarto_book, tmp_path):
    assert_shows_figures_and_tables(screenshot(quarto_book / "index.html", tmp_path / "q.png"))


@pytest.mark.slow
def test_quarto_leaves_git_status_clean(quarto_book, quarto_project):
    assert_git_status_clean(quarto_project)


# --- The report in a browser, opened from disk with no network ------------------------------------------------

LEGIBLE_PIXELS = 10  # the smallest tick label a reader should have to read


def tick_label_pixels(driver) -> dict[str, float]:
    """For each figure on the page, the height its tick labels are shown at, in CSS pixels."""
    from digits.plots import DPI, TICK_POINTS

    sizes = driver.execute_script("""
        return Array.from(document.querySelectorAll('figure img, .cell-output-display img, .jp-RenderedImage img'))
            .filter((img) => img.naturalWidth > 0 && img.clientWidth > 0)
            .map((img) => [img.getAttribute('alt') || img.src.slice(-40), img.clientWidth / img.naturalWidth]);""")
    return {name: TICK_POINTS * DPI / 72 * scale for name, scale in sizes}


def overflowing_outputs(driver) -> list[str]:
    """Output blocks whose lines run past their box (cut off, or hidden behind a scroll bar)."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('.cell-output pre, .jp-RenderedText pre'))
            .filter((pre) => pre.scrollWidth > pre.clientWidth + 1).map((pre) => pre.textContent.slice(0, 60));""")


@pytest.mark.slow
def test_the_quarto_book_works_from_disk(quarto_book, tmp_path):
    with chromium(1280, 1000) as driver:
        driver.get((quarto_book / "index.html").as_uri())
        # quarto.js runs (as a classic script): the contents' highlight follows the page.
        driver.execute_script("document.getElementById('runs').scrollIntoView();")
        driver.execute_script("window.dispatchEvent(new Event('scroll'));")
        wait_until(lambda: driver.execute_script(
            "return document.querySelector('#TOC a.active')?.textContent.trim() === 'Runs';"),
            timeout=10, what="the contents' highlight following the page to Runs")
        # Search cannot work from disk: a note says how to serve the book, and no alert is waiting.
        assert driver.find_elements(By.ID, "quarto-search") == []
        assert "make serve-report" in driver.find_element(By.CLASS_NAME, "from-disk-note").text
        # The runs table scrolls in its own box and stays left of the page's contents.
        table = driver.execute_script("""const box = document.querySelector('.runs-table').getBoundingClientRect();
            return [box.right, document.getElementById('quarto-margin-sidebar').getBoundingClientRect().left];""")
        assert table[0] <= table[1]
        assert min(tick_label_pixels(driver).values()) >= LEGIBLE_PIXELS, tick_label_pixels(driver)
        driver.save_screenshot(str(tmp_path / "summary.png"))
        for chapter in ("10-explore", "20-train", "30-evaluate", "40-submit"):
            driver.get((quarto_book / "notebooks" / f"{chapter}.html").as_uri())
            assert overflowing_outputs(driver) == [], chapter
            assert min(tick_label_pixels(driver).values()) >= LEGIBLE_PIXELS, (chapter, tick_label_pixels(driver))
        assert (console_problems(driver), requests_made(driver)) == ([], [])


@pytest.mark.slow
def test_the_self_contained_page_reads_well(book_project):
    with chromium(1280, 1000) as driver:
        driver.get((book_project / "report" / "_book" / "index.html").as_uri())
        assert driver.execute_script("""return Array.from(document.querySelectorAll('.anchor-link'))
            .filter((link) => getComputedStyle(link).display !== 'none').length;""") == 0  # no permanent ¶
        assert "In [" not in driver.find_element(By.TAG_NAME, "main").text  # no cell numbers at all
        assert overflowing_outputs(driver) == []
        assert min(tick_label_pixels(driver).values()) >= LEGIBLE_PIXELS, tick_label_pixels(driver)
        assert (console_problems(driver), requests_made(driver)) == ([], [])


INJECTED = "<img src=x onerror=\"document.title='PWNED'\">"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["no", "quarto"])
def test_html_in_a_run_shows_as_text_and_runs_nothing(engine, book_project, tmp_path):
    if engine == "quarto":
        need("quarto", how="conda-forge `quarto`, or quarto.org; see README")
    project = tmp_path / "clone"
    shutil.copytree(book_project, project, symlinks=True)
    (run,) = [path for path in (project / "models").glob("strided-*")]
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "device": INJECTED, "keras_version": "<script>x</script>"}))
    crafted = project / "models" / f"{run.name.rsplit('-', 1)[0]}-{INJECTED}"  # a folder named to inject
    shutil.copytree(run, crafted)
    record = json.loads((crafted / "run.json").read_text())
    (crafted / "run.json").write_text(json.dumps({**record, "run": crafted.name}))
    result = run_make(project, "report", *QUICK, f"QUARTO={engine}")
    assert result.returncode == 0, result.stdout[-3000:]
    with chromium() as driver:
        driver.get((project / "report" / "_book" / "index.html").as_uri())
        # Loaded: every image has been tried (an injected one would have run its handler by now).
        wait_until(lambda: driver.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every((i) => i.complete);"),
            timeout=10, what="the page and its images loading")
        assert driver.title != "PWNED" and driver.find_elements(By.CSS_SELECTOR, "main img[src='x']") == []
        text = driver.find_element(By.TAG_NAME, "body").text
        assert INJECTED in text and "<script>x</script>" in text  # shown as the characters they are
        assert crafted.name not in text  # not this project's run: not listed at all
