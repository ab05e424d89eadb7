"""Predicting your own images: MNIST's preprocessing on hand-made cases, bad files, and the command line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from digits.parameters import quoted
from digits.predict import (
    ImageProblem,
    image_files,
    load_image,
    predict_images,
    predictions_figure,
    write_predictions,
)
from digits.prepare import centre_of_mass, to_mnist
from helpers import PEN, PROJECT_ROOT, pad, run_pipeline, scribble, train_tiny_run


def on_paper(ink: np.ndarray, size: tuple[int, int] = (100, 80), at: tuple[int, int] = (10, 10)) -> Image.Image:
    """Ink strengths (0..1, rows x columns) drawn dark on a white canvas (width, height) at (left, top)."""
    canvas = np.zeros((size[1], size[0]))
    canvas[at[1]:at[1] + ink.shape[0], at[0]:at[0] + ink.shape[1]] = ink
    return Image.fromarray((255 - canvas * 225).round().astype(np.uint8))


def mnist_on_paper(digit: np.ndarray) -> Image.Image:
    """An MNIST digit enlarged three times, dark on a white 100x100 canvas."""
    enlarged = Image.fromarray(digit).resize((84, 84), Image.Resampling.BICUBIC)
    return on_paper(np.asarray(enlarged) / 255, size=(100, 100), at=(8, 8))


def ink_box(image: np.ndarray) -> tuple[int, int]:
    """Height and width of the inked region."""
    rows, columns = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


L_SHAPE = np.zeros((30, 20))
L_SHAPE[:, :4] = L_SHAPE[-4:, :] = 1  # an asymmetric mark: its centre of mass is not its box's centre


# --- MNIST's preprocessing ----------------------------------------------------------------------


def test_a_light_background_is_inverted_to_light_ink_on_black():
    digit = to_mnist(on_paper(L_SHAPE))
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert digit.max() == pytest.approx(1.0) and digit[0].max() == digit[:, 0].max() == 0
    inverted = to_mnist(Image.fromarray(255 - np.asarray(on_paper(L_SHAPE))))  # the same mark, light on black
    np.testing.assert_allclose(digit, inverted, atol=1e-6)


def test_an_off_centre_digit_is_centred_by_its_mass_in_a_20_pixel_box():
    digit = to_mnist(on_paper(L_SHAPE, size=(160, 120), at=(120, 5)))
    row, column = centre_of_mass(digit)
    assert abs(row - 14) <= 1 and abs(column - 14) <= 1
    height, width = ink_box(digit)
    assert max(height, width) == 20 and min(height, width) <= 20


def test_a_wide_digit_keeps_its_aspect_ratio():
    digit = to_mnist(on_paper(np.ones((20, 60)), size=(100, 60), at=(20, 20)))
    height, width = ink_box(digit)
    assert width == 20 and 6 <= height <= 8


def test_faint_paper_noise_neither_counts_as_ink_nor_widens_the_crop():
    clean = np.asarray(on_paper(L_SHAPE, size=(120, 90), at=(50, 30)), dtype=np.float64)
    noisy = clean + np.random.default_rng(0).normal(0, 6, clean.shape)
    digit = to_mnist(Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8)))
    assert ink_box(digit) == ink_box(to_mnist(Image.fromarray(clean.astype(np.uint8)))) == (20, 13)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_a_digit_already_in_mnist_form_stays_close_to_the_original(mnist, index):
    original = mnist["test_images"][index]
    digit = to_mnist(Image.fromarray(original))
    assert np.corrcoef(digit.ravel(), original.ravel())[0, 1] > 0.9


def test_a_transparent_background_counts_as_white_paper(mnist):
    opaque = mnist_on_paper(mnist["test_images"][0])
    ink = 255 - np.asarray(opaque)
    transparent = Image.fromarray(np.dstack([np.zeros_like(ink)] * 3 + [ink]), "RGBA")
    np.testing.assert_allclose(to_mnist(transparent), to_mnist(opaque), atol=0.02)


@pytest.mark.parametrize("grey", [255, 0, 128])
def test_an_image_without_ink_is_blank(grey):
    with pytest.raises(ImageProblem, match=r"^not a digit: blank \(no ink found\)$"):
        to_mnist(Image.new("L", (40, 40), grey))


# --- Files --------------------------------------------------------------------------------------


def test_image_files_lists_a_folders_images_by_name_and_checks_the_path(tmp_path):
    for name in ("b.png", "a.JPG", "notes.md", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [path.name for path in image_files(tmp_path)] == ["a.JPG", "b.png"]
    assert image_files(tmp_path / "notes.md") == [tmp_path / "notes.md"]  # a file named on its own is tried
    with pytest.raises(ValueError, match="missing: no such file or folder"):
        image_files(tmp_path / "missing")
    with pytest.raises(ValueError, match="no image files in this folder"):
        image_files(tmp_path / "sub.png")


def png_bytes(image: Image.Image) -> bytes:
    """The image as a PNG file's bytes."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write_mixed_folder(folder: Path, mnist: dict[str, np.ndarray]) -> Path:
    """Two good images and one file of each kind that cannot be predicted."""
    folder.mkdir()
    mnist_on_paper(mnist["test_images"][0]).save(folder / "good-7.png")
    three = 255 - np.asarray(mnist_on_paper(mnist["test_images"][18]))
    Image.fromarray(np.dstack([np.full_like(three, 20)] * 3 + [three]), "RGBA").save(folder / "transparent-3.png")
    (folder / "not-an-image.png").write_text("7\n")
    noise = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    whole = png_bytes(Image.fromarray(noise))
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    Image.new("L", (64, 64), 255).save(folder / "blank.png")
    Image.new("L", (1, 1), 0).save(folder / "tiny.png")
    Image.new("L", (150, 150), 255).save(folder / "bomb-warning.png")  # over the limit the tests set
    Image.new("L", (300, 300), 255).save(folder / "bomb-error.png")  # over twice the limit
    frames = [Image.fromarray(np.asarray(mnist_on_paper(mnist["test_images"][index]))) for index in (0, 1)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist):
    """A finished one-epoch run on 1000 MNIST images."""
    return train_tiny_run(tmp_path_factory.mktemp("predict"), mnist, 1000)


@pytest.fixture(scope="module")
def mixed_predictions(tmp_path_factory, mnist, trained_run) -> tuple[Path, pd.DataFrame, list]:
    """The mixed folder predicted with the tiny run, with Pillow's decompression-bomb limit at 20,000 pixels."""
    folder = write_mixed_folder(tmp_path_factory.mktemp("mixed") / "images", mnist)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
        table, pairs = predict_images(image_files(folder), trained_run)
    return folder, table, pairs


@pytest.mark.parametrize("name, problem", [
    ("not-an-image.png", "not an image: Pillow cannot read this file"),
    ("truncated.png", "truncated or corrupt: "),
    ("blank.png", "not a digit: blank (no ink found)"),
    ("tiny.png", "too small: 1x1 pixels (need 8 or more on a side)"),
    ("bomb-warning.png", "too large: over 20,000 pixels, a possible decompression bomb"),
    ("bomb-error.png", "too large: over 20,000 pixels, a possible decompression bomb"),
    ("animated.gif", "several frames: 2 "),
])
@pytest.mark.slow
def test_a_bad_file_is_reported_and_not_predicted(mixed_predictions, name, problem):
    _, table, _ = mixed_predictions
    row = table.set_index("file").loc[name]
    assert row["problem"].startswith(problem) and pd.isna(row["label"]) and pd.isna(row["confidence"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["good-7.png", "transparent-3.png"])
def test_the_good_files_beside_bad_ones_are_predicted(mixed_predictions, name):
    _, table, pairs = mixed_predictions
    assert table["file"].tolist() == sorted(table["file"])
    index = table["file"].tolist().index(name)
    row = table.iloc[index]
    assert row["problem"] == "" and 0 <= row["label"] <= 9 and 0.1 <= row["confidence"] <= 1
    original, digit = pairs[index]
    assert isinstance(original, Image.Image) and digit.shape == (28, 28)


def test_load_image_names_the_problem_of_a_missing_file(tmp_path):
    with pytest.raises(ImageProblem, match="^unreadable: No such file or directory$"):
        load_image(tmp_path / "gone.png")


@pytest.mark.slow
def test_predictions_are_written_and_drawn(mixed_predictions, trained_run, tmp_path):
    _, table, pairs = mixed_predictions
    written = pd.read_csv(write_predictions(table, tmp_path), keep_default_na=False)
    assert list(written.columns) == ["file", "label", "confidence", "unsure", "problem"] and len(written) == len(table)
    assert written.set_index("file").loc["blank.png", "label"] == ""
    figure = predictions_figure(pairs, table, trained_run)
    titles = [axis.get_title() for axis in figure.axes]
    texts = [text.get_text() for axis in figure.axes for text in axis.texts]
    assert len(figure.axes) == 2 * len(table) and "good-7.png" in titles  # nine files: one row of pairs
    assert "not a digit:\nblank" in texts and "several\nframes" in texts
    assert any(title.endswith("%)") for title in titles)
    title = figure._suptitle.get_text().replace("\n", " ")
    assert title.startswith(f"Run {trained_run.name} (a quick run: its answers are rough).")


@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_figure_of_a_few_images_shows_its_whole_title(count, mixed_predictions, trained_run):
    _, table, pairs = mixed_predictions
    figure = predictions_figure(pairs[:count], table.head(count), trained_run)
    figure.canvas.draw()
    box = figure._suptitle.get_window_extent(figure.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width  # not cut off at either side


# --- Command line -------------------------------------------------------------------------------


def predict_command(run, *arguments: str):
    """`make predict ARGUMENTS` as the pipeline runs it, on the run's models and data folders."""
    return run_pipeline(PROJECT_ROOT, "predict", f"MODELS_DIR={run.models_dir}", f"DATA_DIR={run.data_dir}",
                        *arguments)


@pytest.mark.slow
def test_the_command_predicts_a_folder_into_a_folder_of_its_own(trained_run, mnist, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    mnist_on_paper(mnist["test_images"][0]).save(folder / "seven.png")
    (folder / "note.png").write_text("not a picture")
    results = [predict_command(trained_run, f"IMAGES={folder}", f"RUN={trained_run.name}") for _ in range(2)]
    assert [result.returncode for result in results] == [0, 0], results[0].stderr
    calls = sorted((trained_run.folder / "predictions").iterdir())
    assert len(calls) == 2  # each call keeps its own folder: the first one's predictions are still there
    written = pd.read_csv(calls[0] / "predictions.csv", keep_default_na=False)
    assert written["file"].tolist() == ["note.png", "seven.png"] and written["problem"][0].startswith("not an image")
    assert written["run"].tolist() == [trained_run.name] * 2
    assert (calls[0] / "predictions.png").stat().st_size > 1000
    assert "seven.png" in results[0].stdout and "%" in results[0].stdout and "predictions.csv" in results[0].stdout


@pytest.mark.slow
def test_the_command_says_not_a_digit_and_unsure_in_its_table_and_csv(trained_run, mnist, tmp_path):
    from digits.evaluate import run_calibration
    from digits.prepare import REASONS

    folder = tmp_path / "mixed"
    folder.mkdir()
    pad(scribble(0.0), width=2 * PEN).save(folder / "filled.png")
    pad().save(folder / "blank.png")
    pad([(0.1, 0.1), (0.1, 0.3)], [(0.9, 0.7), (0.9, 0.9)]).save(folder / "two-marks.png")
    for index in range(12):
        mnist_on_paper(mnist["test_images"][index]).save(folder / f"digit-{index:02}.png")
    result = predict_command(trained_run, f"IMAGES={folder}", f"RUN={trained_run.name}")
    assert result.returncode == 0, result.stderr
    call = max((trained_run.folder / "predictions").iterdir(), key=lambda folder: folder.stat().st_mtime_ns)
    written = pd.read_csv(call / "predictions.csv", keep_default_na=False).set_index("file")
    assert list(written.columns) == ["label", "confidence", "unsure", "problem", "run"] and len(written) == 15
    assert written.loc[["filled.png", "blank.png", "two-marks.png"], "problem"].tolist() == [
        REASONS["edges"], REASONS["blank"], REASONS["marks"]]
    for reason in ("edges", "blank", "marks"):
        assert REASONS[reason] in result.stdout
    digits = written[written.index.str.startswith("digit-")].astype({"label": int, "confidence": float})
    threshold = run_calibration(trained_run).threshold
    assert ((digits["unsure"] != "") == (digits["confidence"] < threshold)).all()
    assert digits["unsure"].str.fullmatch(r"(\d or \d)?").all()
    unsure = digits[digits["unsure"] != ""]
    assert len(unsure) and all(row.unsure.startswith(f"{row.label} or ") for row in unsure.itertuples())


@pytest.mark.slow
def test_the_command_fails_when_no_file_can_be_predicted(trained_run, tmp_path):
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    result = predict_command(trained_run, f"IMAGES={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: none of the 1 file(s) could be predicted"
    assert "not a digit: blank (no ink found)" in result.stdout


@pytest.mark.parametrize("images, run, message", [
    ("missing", "", "missing: no such file or folder"),
    ("data/samples", "nope", "no run 'nope' in "),
    ("data/samples", "elsewhere", "no finished run in "),
    ("", "", "no images given: make predict IMAGES="),
])
@pytest.mark.slow
def test_the_command_reports_a_bad_path_or_run_in_one_line(trained_run, tmp_path, images, run, message):
    models = tmp_path if run == "elsewhere" else trained_run.models_dir
    images = str(tmp_path / images) if images == "missing" else str(PROJECT_ROOT / images) if images else ""
    result = run_pipeline(PROJECT_ROOT, "predict", f"MODELS_DIR={models}", f"DATA_DIR={trained_run.data_dir}",
                          f"IMAGES={images}", f"RUN={'' if run == 'elsewhere' else run}")
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ") and message in result.stderr


# --- Photos: turned upright, large ones within the memory budget ----------------------------------------------


def test_a_phone_photo_is_read_upright_from_its_exif_orientation(mnist, tmp_path):
    """Cameras store the sensor's pixels and say in EXIF how to turn them: tag 6 is 90 degrees clockwise."""
    upright = mnist_on_paper(mnist["test_images"][1])  # a 2
    sideways = upright.rotate(90, expand=True)  # as the sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    sideways.convert("RGB").save(tmp_path / "photo.jpg", exif=exif, quality=95)
    sideways.convert("RGB").save(tmp_path / "no-exif.jpg", quality=95)
    read = to_mnist(load_image(tmp_path / "photo.jpg"))
    assert np.abs(read - to_mnist(upright)).mean() < 0.03  # the same digit as drawn
    assert np.abs(to_mnist(load_image(tmp_path / "no-exif.jpg")) - to_mnist(upright)).mean() > 0.1  # control


def test_an_image_over_the_memory_budget_is_refused_before_it_is_decoded(tmp_path):
    Image.new("RGB", (9000, 9000), "white").save(tmp_path / "huge.png", compress_level=1)  # 81 megapixels
    with pytest.raises(ImageProblem, match=r"too large: 9000x9000 pixels \(RGB\) take 232 MB decoded, over the 128 MB"):
        load_image(tmp_path / "huge.png")


def test_a_large_jpeg_is_decoded_at_a_reduced_size(mnist, tmp_path):
    big = mnist_on_paper(mnist["test_images"][0]).resize((8000, 8000), Image.Resampling.BILINEAR).convert("RGB")
    big.save(tmp_path / "big.jpg", quality=90)
    image = load_image(tmp_path / "big.jpg")
    assert max(image.size) <= 2048
    assert np.abs(to_mnist(image) - to_mnist(mnist_on_paper(mnist["test_images"][0]))).mean() < 0.03


@pytest.mark.slow
def test_a_symbolic_link_loop_is_one_line(trained_run, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = predict_command(trained_run, f"IMAGES={tmp_path / 'a'}")
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"error: bad parameter: images: {quoted(str(tmp_path / 'a'))} is a symbolic link that loops"]
    result = run_pipeline(PROJECT_ROOT, "runs", f"MODELS_DIR={tmp_path / 'a'}")
    assert result.returncode == 2 and "models_dir: " in result.stderr and "is a symbolic link that loops" in result.stderr
