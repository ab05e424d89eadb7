"""The preparation's checks before the model ("not a digit") and its evening of uneven light (digits.prepare)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digits import prepare
from digits.prepare import NotADigit, to_mnist
from helpers import PEN, SIDE, pad, scribble, shadowed


@pytest.mark.parametrize("image, reason", [
    (Image.new("L", (SIDE, SIDE), 255), "blank"),
    (pad(scribble(0.0), width=2 * PEN), "edges"),
    (pad(scribble(0.12), width=2 * PEN), "ink"),
    (pad([(0.1, 0.1), (0.1, 0.3)], [(0.9, 0.7), (0.9, 0.9)]), "marks"),
], ids=["blank pad", "filled pad", "scribble", "two far-apart marks"])
def test_what_holds_no_digit_is_refused_with_its_reason(image, reason):
    with pytest.raises(NotADigit) as refused:
        to_mnist(image)
    assert refused.value.reason == reason
    assert str(refused.value) == prepare.REASONS[reason] and str(refused.value).startswith("not a digit: ")


@pytest.mark.parametrize("strokes", [
    [[(0.52, 0.15), (0.48, 0.85)]],  # a 1
    [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],  # a 7
    [[(0.3, 0.25), (0.3, 0.55), (0.7, 0.55)], [(0.62, 0.2), (0.62, 0.85)]],  # a 4 in two strokes
], ids=["1", "7", "4 in two strokes"])
def test_a_drawn_digit_passes_the_checks(strokes):
    assert to_mnist(pad(*strokes)).max() == pytest.approx(1.0)


def test_a_shadow_across_the_paper_is_evened_out_before_the_ink_is_found(mnist):
    photo, evenly_lit = shadowed(mnist["test_images"][0])
    clean = to_mnist(evenly_lit)
    assert np.abs(to_mnist(photo) - clean).mean() < 0.02
    with pytest.MonkeyPatch.context() as patch:  # the paper taken as one shade, the border's: the shadow is ink
        patch.setattr(prepare, "paper_shade", lambda grey, light, border: np.full_like(grey, border))
        assert np.abs(to_mnist(photo) - clean).mean() > 0.08


def test_the_bounds_reject_none_of_mnists_training_images_sampled(mnist):
    """The first 2,000 training images, in MNIST's form again, pass every check (all 60,000 in docs)."""
    refused = []
    for index, image in enumerate(mnist["train_images"][:2000]):
        try:
            to_mnist(Image.fromarray(image))
        except NotADigit as problem:
            refused.append((index, problem.reason))
    assert refused == []


@pytest.mark.slow
def test_the_bounds_reject_almost_none_of_mnists_test_images(mnist):
    refused = 0
    for image in mnist["test_images"]:
        try:
            to_mnist(Image.fromarray(image))
        except NotADigit:
            refused += 1
    assert refused <= 2  # of 10,000 (docs/how-it-works.md gives the measured count)
