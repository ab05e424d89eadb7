"""Model: the networks of digits.config.ARCHITECTURES built as keras.Sequential, and loading a saved one."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from digits.config import (
    ARCHITECTURES,
    AUGMENTATION,
    IMAGE_SIDE,
    RECIPES,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePool,
    Layer,
    MaxPool,
)
from digits.parameters import parse_arch
from digits.runs.records import check_model_file
from digits.util.display import shown

INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)


def augmentation_layers() -> list[layers.Layer]:
    """Random rotation, zoom and shift, active only while training."""
    return [
        layers.RandomRotation(AUGMENTATION.rotation, fill_mode="constant"),
        layers.RandomZoom(AUGMENTATION.zoom, fill_mode="constant"),
        layers.RandomTranslation(AUGMENTATION.shift, AUGMENTATION.shift, fill_mode="constant"),
    ]


def keras_layers(layer: Layer, final: bool = False) -> list[layers.Layer]:
    """The Keras layers of one described layer (the final one computes in float32 under any precision)."""
    if isinstance(layer, Conv) and layer.batch_norm:
        # The bias is redundant before batch normalisation.
        return [layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=layer.padding, use_bias=False),
                layers.BatchNormalization(), layers.Activation("relu")]
    if isinstance(layer, Conv):
        return [layers.Conv2D(layer.filters, layer.kernel, strides=layer.stride, padding=layer.padding,
                              activation="relu")]
    if isinstance(layer, MaxPool):
        return [layers.MaxPool2D()]
    if isinstance(layer, Dropout):
        return [layers.Dropout(layer.rate)]
    if isinstance(layer, Flatten):
        return [layers.Flatten()]
    if isinstance(layer, GlobalAveragePool):
        return [layers.GlobalAveragePooling2D()]
    if isinstance(layer, Dense):
        # Probabilities in bfloat16 keep 8 bits of mantissa; the loss wants more.
        return [layers.Dense(layer.units, activation=layer.activation, **({"dtype": "float32"} if final else {}))]
    raise ValueError(f"no Keras layer for {layer!r}")


def build_model(arch: str, augment: bool | None = None, precision: str = "float32") -> keras.Sequential:
    """Build an architecture by name; `augment` None follows its recipe; `precision` is Keras's dtype policy."""
    parse_arch(arch)
    augment = RECIPES[arch].augment if augment is None else augment
    described = ARCHITECTURES[arch]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return keras.Sequential(
            [keras.Input(INPUT_SHAPE), *(augmentation_layers() if augment else []),
             *(keras_layer for index, layer in enumerate(described)
               for keras_layer in keras_layers(layer, final=precision != "float32" and index == len(described) - 1))],
            name=arch,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)


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
