"""Explain: what the network looks at (saliency) and how it arranges the test images (an embedding map).

Saliency is gradient times input: how much each pixel, as drawn, pushes the
score (logit, before the softmax) of one digit up or down. The map is of the
raw logit. The temperature divides every logit by the same T, so the calibrated
map is this one divided by T: shown scaled to its largest value, as Try it and
the report show it, the two are the same picture. For an ensemble it is the
mean of its members' maps. Try it computes the same map in the browser
(web/digits-tryit.js) and a test holds the two together.

The embedding map is a t-SNE of the penultimate layer (what the last layer
reads: the global average pool, or the last hidden layer) for a few thousand
test images (and every image it gets wrong), all members' features side by
side for an ensemble. It takes seconds to a minute, so it is kept in the run's
embedding.npz with a digest of what it was made from, and checked before use.
"""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np
import tensorflow as tf
from sklearn.manifold import TSNE

from digits.model import load_model
from digits.runs import Run, records
from digits.util.display import shown
from digits.util.files import atomic_path, digest_of

EMBEDDING_FILE = records.EMBEDDING_FILE
EMBEDDING_IMAGES = 3000  # at most this many test images, chosen at random with EMBEDDING_SEED
EMBEDDING_SEED = 0
PERPLEXITY = 30.0
FORMAT = 1  # changes whenever the file's meaning does: an older file is made again


def _hidden(model: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """What the last layer reads: every layer but the last, in inference mode."""
    for layer in model.layers[:-1]:
        images = layer(images, training=False)
    return images


def logits(model: keras.Model, images: np.ndarray | tf.Tensor) -> tf.Tensor:
    """The last layer's scores before its softmax."""
    last = model.layers[-1]
    return tf.matmul(_hidden(model, tf.convert_to_tensor(images, tf.float32)), last.kernel) + last.bias


def saliency(models: list[keras.Model], images: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Gradient times input of each image's given digit's logit, the mean over the members: (n, 28, 28)."""
    images = tf.convert_to_tensor(np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1))
    digits = np.asarray(digits).reshape(-1)
    if len(digits) != images.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {len(digits)} digits to explain")
    maps = []
    for model in models:
        with tf.GradientTape() as tape:
            tape.watch(images)
            chosen = tf.gather(logits(model, images), digits, axis=1, batch_dims=1)
        maps.append((tape.gradient(chosen, images) * images).numpy())
    return np.mean(maps, axis=0).reshape(-1, 28, 28)


def members(run: Run) -> list[keras.Model]:
    """The models that predict for a run: its own, or an ensemble's members'."""
    return [load_model(member.folder / "model.keras") for member in run.single_runs]


def mistake_maps(run: Run, images: np.ndarray, mistakes) -> tuple[np.ndarray, np.ndarray]:
    """The saliency of each mistake (a table of misclassified: index, true, predicted) towards the digit the run
    predicted, and towards the true digit."""
    models, chosen = members(run), images[mistakes["index"].to_numpy()]
    return (saliency(models, chosen, mistakes["predicted"].to_numpy()),
            saliency(models, chosen, mistakes["true"].to_numpy()))


def features(models: list[keras.Model], images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The penultimate layer's values of each image, every member's side by side."""
    return np.concatenate([np.concatenate([_hidden(model, tf.convert_to_tensor(images[start:start + batch_size]))
                                           .numpy() for start in range(0, len(images), batch_size)])
                           for model in models], axis=1)


def _source(run: Run, images: np.ndarray, include: np.ndarray) -> str:
    """What a run's embedding is made from: its models, the images and those it must hold, and how it is drawn."""
    made_from = [digest_of(*(member.folder / "model.keras" for member in run.single_runs)),
                 hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(), np.asarray(include).tolist(),
                 EMBEDDING_IMAGES, EMBEDDING_SEED, PERPLEXITY, FORMAT]
    return hashlib.sha256(json.dumps(made_from).encode()).hexdigest()


def _read(run: Run, expected: str, n_images: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The kept embedding (indices of the images, their 2-D points), None when there is none yet; ValueError naming
    the file when it cannot be used."""
    path = run.folder / EMBEDDING_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as kept:
            source, indices, points = str(kept["source"]), kept["indices"], kept["points"]
    except (OSError, ValueError, KeyError, EOFError):
        raise ValueError(f"{shown(path)}: damaged") from None
    if source != expected:
        raise ValueError(f"{shown(path)}: made from other models or data")
    if points.shape != (len(indices), 2) or not np.isfinite(points).all() or not (
            (0 <= indices) & (indices < n_images)).all():
        raise ValueError(f"{shown(path)}: damaged (not an embedding of these images)")
    return indices, points


def embedding(run: Run, images: np.ndarray, include: np.ndarray = ()) -> tuple[np.ndarray, np.ndarray]:
    """The run's map of images: the indices of those drawn (EMBEDDING_IMAGES at random, and those of `include`) and
    their t-SNE points, kept with the run. A missing file is made; a damaged or stale one is named in one line and
    made again."""
    source = _source(run, images, include)
    try:
        kept = _read(run, source, len(images))
    except ValueError as problem:
        print(f"{problem}: drawing the map of the images again (t-SNE)", flush=True)
    else:
        if kept is not None:
            return kept
    chosen = np.random.default_rng(EMBEDDING_SEED).choice(len(images), min(EMBEDDING_IMAGES, len(images)),
                                                          replace=False)
    indices = np.union1d(chosen, np.asarray(include, dtype=int))
    if len(indices) < 4:
        raise ValueError(f"{len(indices)} image(s): too few for a map")
    # t-SNE needs more images than three times its perplexity: a quick run's few test images get a smaller one.
    points = TSNE(perplexity=min(PERPLEXITY, (len(indices) - 1) / 3), init="pca", random_state=EMBEDDING_SEED,
                  ).fit_transform(features(members(run), images[indices])).astype(np.float32)
    with atomic_path(run.folder / EMBEDDING_FILE) as temporary:
        np.savez(temporary, indices=indices, points=points, source=source)
    return indices, points
