"""Config: the image format, the networks as data, and how each is trained by default.

The architectures are described here as plain data (`ARCHITECTURES`), so that
`digits.model` builds them with Keras and `bench/torch_screen.py` with PyTorch
from the same description. This module imports nothing heavy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
N_CLASSES = 10
# Seed of the validation split. It is the same for every run, whatever its training seed, so that runs
# (and the members of an ensemble) are all scored on the same held-out images.
SPLIT_SEED = 42
# Images used to re-estimate the batch-normalisation statistics after each epoch.
CALIBRATION_IMAGES = 2048


# --- The networks, as data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """Random rotation, zoom and shift of the training images; never flips, since a flipped 2 is no digit."""

    rotation: float = 10 / 360  # a share of a full turn: about 10 degrees either way
    zoom: float = 0.1
    shift: float = 0.1


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution; with batch_norm it has no bias and is followed by batch normalisation, then ReLU."""

    filters: int
    kernel: int = 3
    stride: int = 1
    padding: str = "same"
    batch_norm: bool = True


@dataclass(frozen=True)
class MaxPool:
    """2x2 max-pooling."""


@dataclass(frozen=True)
class Dropout:
    """Dropout of a share of the activations while training."""

    rate: float


@dataclass(frozen=True)
class Flatten:
    """The feature maps as one vector."""


@dataclass(frozen=True)
class GlobalAveragePool:
    """The mean of each feature map."""


@dataclass(frozen=True)
class Dense:
    """A fully connected layer."""

    units: int
    activation: str = "relu"


Layer = Conv | MaxPool | Dropout | Flatten | GlobalAveragePool | Dense


def strided_layers(small: int, medium: int, large: int) -> tuple[Layer, ...]:
    """Batch-normalised convolutions that downsample by stride instead of pooling."""
    return (
        # A 5x5 stride-2 stem: full-resolution feature maps are what make a CNN slow on a CPU.
        Conv(small, kernel=5, stride=2),  # 28x28 -> 14x14
        Conv(medium),
        Conv(medium, stride=2),  # 14x14 -> 7x7
        Dropout(0.25),
        Conv(large, padding="valid"),  # 7x7 -> 5x5
        Conv(large, padding="valid"),  # 5x5 -> 3x3
        GlobalAveragePool(),
        Dropout(0.3),
        Dense(N_CLASSES, activation="softmax"),
    )


ARCHITECTURES: dict[str, tuple[Layer, ...]] = {
    # The default: batch-normalised convolutions, 280,234 weights.
    "strided": strided_layers(32, 64, 128),
    # The same with 1.5 times the filters: stronger members for an ensemble, at half the speed.
    "wide": strided_layers(48, 96, 192),
    # The original write-up's CNN: two 5x5 and two 3x3 convolution pairs with max-pooling and dropout.
    "baseline": (
        Conv(32, kernel=5, batch_norm=False),
        Conv(32, kernel=5, batch_norm=False),
        MaxPool(),
        Dropout(0.25),
        Conv(64, batch_norm=False),
        Conv(64, batch_norm=False),
        MaxPool(),
        Dropout(0.25),
        Flatten(),
        Dense(256),
        Dropout(0.5),
        Dense(N_CLASSES, activation="softmax"),
    ),
}
AUGMENTATION = Augmentation()


# --- How each network is trained by default -------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How an architecture is trained by default."""

    epochs: int
    batch_size: int
    learning_rate: float
    cosine_schedule: bool  # decay the learning rate to near zero over the run, or keep it constant
    augment: bool  # random rotation, zoom and shift of the training images
    label_smoothing: float  # share of each one-hot target spread over the other digits: less over-confidence
    full_data_val_accuracy: float  # what the recipe reaches on all 60,000 MNIST images (bench/RESULTS.md)


STRIDED_RECIPE = Recipe(epochs=15, batch_size=128, learning_rate=2e-3, cosine_schedule=True, augment=True,
                        label_smoothing=0.1, full_data_val_accuracy=0.995)
RECIPES = {
    "strided": STRIDED_RECIPE,
    "wide": STRIDED_RECIPE,  # the same network with more filters trains well with the same recipe
    "baseline": Recipe(epochs=10, batch_size=128, learning_rate=1e-3, cosine_schedule=False, augment=False,
                       label_smoothing=0.0, full_data_val_accuracy=0.992),
}


@dataclass(frozen=True)
class TrainingPlan:
    """Every parameter that decides the trained weights."""

    arch: str
    epochs: int
    batch_size: int
    seed: int
    augment: bool
    learning_rate: float
    cosine_schedule: bool
    label_smoothing: float
    # The arithmetic of training: "float32", or "mixed_bfloat16" (bfloat16 compute, float32 weights) where the
    # processor computes in bfloat16 natively. A trained model predicts in float32 either way.
    precision: str = "float32"

    def learning_rate_at(self, epoch: int) -> float:
        """Learning rate for a 0-based epoch: constant, or cosine decay from the recipe's rate towards zero."""
        if not self.cosine_schedule:
            return self.learning_rate
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))
