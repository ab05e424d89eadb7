"""Model: the CNN architectures, each a keras.Sequential (their training recipes are in digits.config)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers

from digits.config import IMAGE_SIDE, N_CLASSES, RECIPES, check_arch, shown
from digits.runs import check_model_file

INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)


def augmentation_layers() -> list[layers.Layer]:
    """Random rotation (about 10 degrees), zoom (10%) and shift (10%); never flips, since a flipped 2 is no digit."""
    return [
        layers.RandomRotation(10 / 360, fill_mode="constant"),
        layers.RandomZoom(0.1, fill_mode="constant"),
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
    ]


def build_baseline(augment: bool = False) -> keras.Sequential:
    """The original write-up's CNN: two 5x5 and two 3x3 convolution pairs with max-pooling and dropout."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            *(augmentation_layers() if augment else []),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPool2D(),
            layers.Dropout(0.25),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPool2D(strides=2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(N_CLASSES, activation="softmax"),
        ],
        name="baseline",
    )


def conv_block(filters: int, strides: int = 1, padding: str = "same", kernel_size: int = 3) -> list[layers.Layer]:
    """Convolution, batch normalisation, ReLU (the bias is redundant before normalisation)."""
    return [
        layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("relu"),
    ]


def build_strided(augment: bool = True, filters: tuple[int, int, int] = (32, 64, 128),
                  name: str = "strided") -> keras.Sequential:
    """The default: batch-normalised convolutions that downsample by stride instead of pooling."""
    small, medium, large = filters
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            *(augmentation_layers() if augment else []),
            # A 5x5 stride-2 stem: full-resolution feature maps are what make a CNN slow on a CPU.
            *conv_block(small, strides=2, kernel_size=5),  # 28x28 -> 14x14
            *conv_block(medium),
            *conv_block(medium, strides=2),  # 14x14 -> 7x7
            layers.Dropout(0.25),
            *conv_block(large, padding="valid"),  # 7x7 -> 5x5
            *conv_block(large, padding="valid"),  # 5x5 -> 3x3
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.3),
            layers.Dense(N_CLASSES, activation="softmax"),
        ],
        name=name,
    )


def build_wide(augment: bool = True) -> keras.Sequential:
    """The strided network with 1.5 times the filters: stronger members for an ensemble, at half the speed."""
    return build_strided(augment, filters=(48, 96, 192), name="wide")


BUILDERS: dict[str, Callable[[bool], keras.Sequential]] = {
    "strided": build_strided, "wide": build_wide, "baseline": build_baseline,
}


def build_model(arch: str, augment: bool | None = None) -> keras.Sequential:
    """Build an architecture by name; `augment` None follows its recipe."""
    check_arch(arch)
    return BUILDERS[arch](RECIPES[arch].augment if augment is None else augment)


def load_model(path: str | Path) -> keras.Model:
    """Load a trained model in Keras' safe mode; a missing or corrupt file is a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{shown(path)}: model file not found (train one with `make all`)")
    check_model_file(path)
    try:
        return keras.saving.load_model(path, safe_mode=True)
    # Keras raises many types for a damaged archive; all mean the same here.
    except Exception as error:  # noqa: BLE001
        raise ValueError(
            f"{shown(path)}: cannot load the model ({type(error).__name__}: {error}); retrain to replace it"
        ) from None
