"""Layout, without a browser: tables put in scroll boxes, figures given the width at which their text reads, and
numbers shown with one number of decimals per column (make runs, the report's runs table)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from digits import plots
from digits.report.layout import (
    LEGIBLE_PIXELS,
    data_uri_bytes,
    legible_figures,
    legible_width,
    png_width_and_dpi,
    scrolling_tables,
)
from digits.util.display import text_table

matplotlib.use("Agg")


def png_of(dpi: int) -> bytes:
    """A figure of the project saved as a PNG at `dpi`."""
    figure = plots.class_distribution(np.arange(100) % 10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


@pytest.mark.parametrize("dpi", [72, 110, 144])
def test_a_figure_gets_the_width_at_which_its_smallest_text_shows_at_10_pixels(dpi):
    data = png_of(dpi)
    image = Image.open(io.BytesIO(data))
    recorded = image.info["dpi"][0]  # as the PNG stores it: whole dots per metre
    assert png_width_and_dpi(data) == (image.size[0], pytest.approx(recorded)) and recorded == pytest.approx(dpi, 0.01)
    expected = math.ceil(image.size[0] * LEGIBLE_PIXELS / (plots.SMALLEST_POINTS * recorded / 72))
    assert legible_width(data) == min(image.size[0], expected)


def test_only_png_images_outside_scripts_are_sized():
    data = png_of(144)
    source = "data:image/png;base64," + base64.b64encode(data).decode()
    page = (f'<p><img alt="a" src="{source}"></p><img src="data:image/gif;base64,R0lGOD">'
            f'<script>var html = \'<img src="{source}"><table>\';</script>')
    sized = legible_figures(page, data_uri_bytes)
    assert sized.count('style="min-width: ') == 1
    assert sized.startswith(f'<p><img style="min-width: {legible_width(data)}px" alt="a" src="{source}">')
    assert sized.endswith(f'<script>var html = \'<img src="{source}"><table>\';</script>')  # scripts untouched


def test_every_table_outside_scripts_gets_its_own_scroll_box():
    page = '<table class="a"><tr><td>1</td></tr></table><script>x = "<table></table>";</script><table></table>'
    assert scrolling_tables(page) == ('<div class="table-scroll"><table class="a"><tr><td>1</td></tr></table></div>'
                                      '<script>x = "<table></table>";</script>'
                                      '<div class="table-scroll"><table></table></div>')


def test_png_width_and_dpi_refuses_what_is_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        png_width_and_dpi(b"GIF89a")


def test_a_column_of_numbers_is_shown_with_one_number_of_decimals():
    table = pd.DataFrame({"run": ["a", "b", "c"], "val_accuracy": [0.9, 0.91, None], "train_minutes": [0.4, 0.41, 2.0],
                          "images_per_second": [1200, 95, 3], "sample_size": [2000, None, 500]})
    lines = text_table(table).splitlines()
    assert lines[1].split() == ["a", "90.00%", "0.40", "1200", "2000"]
    assert lines[2].split() == ["b", "91.00%", "0.41", "95"]
    assert lines[3].split() == ["c", "2.00", "3", "500"]
