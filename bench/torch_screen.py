"""Benchmark: screen training recipes for ensembles on a GPU, eight models per recipe at once.

    python bench/torch_screen.py train OUT strided-e15 wide-e15-wd05   # one .npz per recipe in OUT
    python bench/torch_screen.py summarize OUT                          # the table of bench/RESULTS.md

Needs PyTorch (not part of the project's environment) beside the `digits`
package (installed, or `PYTHONPATH=lib`; its data module needs no TensorFlow)
and, for full-size runs in minutes, a CUDA GPU; `--quick` trains two models
for one epoch on 3,000 images, enough to check the script on a CPU.

Each recipe trains eight independent copies of the `strided` network (or a
wider one) as one grouped network: one convolution group per model, each
model with its own initial weights, shuffle order, augmentation and dropout.
It is a port of lib/digits (same layers, Glorot initialisation, Adam,
cosine schedule, label smoothing, batch-norm statistics measured after
training), with two differences: rotation, zoom and shift are one bilinear
resampling, and "same" padding is symmetric. Its use is relative: which
recipes make five-model averages better, not the TensorFlow numbers.
GPU kernels are not deterministic, so a rerun gives close, not equal, numbers.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digits.config import (
    ARCHITECTURES,
    AUGMENTATION,
    STRIDED_RECIPE,
    Conv,
    Dense,
    Dropout,
    GlobalAveragePool,
    Layer,
    strided_layers,
)
from digits.data import split_train_validation
from digits.formats.mnist import load_mnist
from digits.parameters import PARAMETERS

MODELS_PER_RECIPE = 8
ENSEMBLE_SIZE = 5
CALIBRATION_IMAGES = 2048

# The default network, recipe and augmentation (digits.config); each entry of RECIPES changes some of it.
BASE = {"layers": ARCHITECTURES["strided"], "epochs": STRIDED_RECIPE.epochs, "batch": STRIDED_RECIPE.batch_size,
        "lr": STRIDED_RECIPE.learning_rate, "weight_decay": 0.0, "rotation": AUGMENTATION.rotation * 360,
        "zoom": AUGMENTATION.zoom, "shift": AUGMENTATION.shift, "label_smoothing": STRIDED_RECIPE.label_smoothing,
        "all_images": False}
WIDE = {"layers": ARCHITECTURES["wide"]}
STRONGER_AUGMENTATION = {"rotation": 15.0, "zoom": 0.15, "shift": 0.15}
RECIPES = {
    "strided-e15": {},
    "strided-e15-aug15": STRONGER_AUGMENTATION,
    "strided-e15-aug15-wd05": dict(STRONGER_AUGMENTATION, weight_decay=0.05),
    "strided-e15-aug20": {"rotation": 20.0, "zoom": 0.2, "shift": 0.2},
    "strided-e15-b64": {"batch": 64},
    "strided-e15-full": {"all_images": True},
    "strided-e15-lr4": {"lr": 4e-3},
    "strided-e15-ls0": {"label_smoothing": 0.0},
    "strided-e15-wd05": {"weight_decay": 0.05},
    "strided-e15-wd2": {"weight_decay": 0.2},
    "strided-e30": {"epochs": 30},
    "wide-e15": WIDE,
    "wide-e15-wd05": dict(WIDE, weight_decay=0.05),
    "wide-e15-wd05-aug15": dict(WIDE, weight_decay=0.05, **STRONGER_AUGMENTATION),
    "wide-e15-wd05-full": dict(WIDE, weight_decay=0.05, all_images=True),
    "wide-e15-wd05-lr4": dict(WIDE, weight_decay=0.05, lr=4e-3),
    "wide-e15-wd05-ls0": dict(WIDE, weight_decay=0.05, label_smoothing=0.0),
    "wide-e15-wd2": dict(WIDE, weight_decay=0.2),
    "wide-e30": dict(WIDE, epochs=30),
    "wide-e30-wd05": dict(WIDE, weight_decay=0.05, epochs=30),
    "x2-e15-wd05": {"layers": strided_layers(64, 128, 256), "weight_decay": 0.05},
}


class GroupedStrided(nn.Module):
    """`n` copies of a strided network (digits.config's layers) side by side: (batch, n, 28, 28) -> (batch, n, 10)."""

    def __init__(self, n: int, layers: tuple[Layer, ...]):
        super().__init__()
        if not (isinstance(layers[-1], Dense) and isinstance(layers[-3], GlobalAveragePool)):
            raise ValueError("the grouped port takes strided networks: convolutions, pooling, dropout, one dense layer")  # noqa: TRY004
        self.n, channels, body = n, 1, []
        for layer in layers[:-3]:
            if isinstance(layer, Conv):
                padding = layer.kernel // 2 if layer.padding == "same" else 0
                body += self.block(channels, layer.filters, layer.kernel, layer.stride, padding)
                channels = layer.filters
            elif isinstance(layer, Dropout):
                body.append(nn.Dropout(layer.rate))
        self.large = channels
        self.body = nn.Sequential(*body)
        self.dropout = nn.Dropout(layers[-2].rate)
        bound = math.sqrt(6 / (channels + 10))
        self.weight = nn.Parameter(torch.empty(n, channels, 10).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n, 10))

    def block(self, cin: int, cout: int, kernel: int, stride: int, padding: int) -> list[nn.Module]:
        """Convolution (Glorot-uniform per model, as Keras), batch normalisation, ReLU."""
        conv = nn.Conv2d(self.n * cin, self.n * cout, kernel, stride, padding, groups=self.n, bias=False)
        bound = math.sqrt(6 / ((cin + cout) * kernel * kernel))
        nn.init.uniform_(conv.weight, -bound, bound)
        return [conv, nn.BatchNorm2d(self.n * cout, eps=1e-3), nn.ReLU()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.body(x).mean(dim=(2, 3)).view(-1, self.n, self.large)
        return torch.einsum("bnl,nlk->bnk", self.dropout(pooled), self.weight) + self.bias


def augment(x: torch.Tensor, recipe: dict, gen: torch.Generator) -> torch.Tensor:
    """A random rotation, zoom and shift of each image (batch, n, 28, 28), in one bilinear resampling."""
    batch, n = x.shape[:2]
    flat = x.reshape(batch * n, 1, 28, 28)

    def uniform() -> torch.Tensor:
        return torch.rand(len(flat), device=x.device, generator=gen) * 2 - 1

    angle = uniform() * math.radians(recipe["rotation"])
    scale = 1 + uniform() * recipe["zoom"]
    shift_x, shift_y = uniform() * 2 * recipe["shift"], uniform() * 2 * recipe["shift"]
    theta = torch.stack([torch.stack([angle.cos() * scale, -angle.sin() * scale, shift_x], 1),
                         torch.stack([angle.sin() * scale, angle.cos() * scale, shift_y], 1)], 1)
    grid = F.affine_grid(theta, flat.shape, align_corners=False)
    return F.grid_sample(flat, grid, align_corners=False).view(batch, n, 28, 28)


@torch.no_grad()
def calibrate(model: GroupedStrided, x: torch.Tensor) -> None:
    """Set each batch norm's statistics to its inputs' mean and variance on x, in inference mode."""
    model.eval()
    for layer in model.body:
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.copy_(x.mean(dim=(0, 2, 3)))
            layer.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))
        x = layer(x)


@torch.no_grad()
def predict(model: GroupedStrided, images: torch.Tensor) -> torch.Tensor:
    """Every model's probabilities for the same images: (models, images, 10)."""
    model.eval()
    chunks = [F.softmax(model(chunk[:, None].expand(-1, model.n, -1, -1)), -1) for chunk in images.split(2000)]
    return torch.cat(chunks).transpose(0, 1)


def train(name: str, out: Path, device: str, quick: bool) -> None:
    """Train one recipe's models and save their validation accuracy and test probabilities to OUT/name.npz."""
    recipe = dict(BASE, **RECIPES[name])
    n, train_limit, test_limit = (2, 3000, 1000) if quick else (MODELS_PER_RECIPE, None, None)
    if quick:
        recipe["epochs"] = 1
    gen = torch.Generator(device=device).manual_seed(zlib.crc32(name.encode()))
    torch.manual_seed(zlib.crc32(name.encode()))
    mnist = load_mnist()
    train_labels = mnist["train_labels"][:train_limit].astype(np.int64)
    trained_on, held_out = split_train_validation(train_labels, PARAMETERS["validation_fraction"].default)
    if recipe["all_images"]:
        trained_on = np.arange(len(train_labels))
    images = torch.tensor(mnist["train_images"][:train_limit], device=device) / 255
    labels = torch.tensor(train_labels, device=device)
    test_images = torch.tensor(mnist["test_images"][:test_limit], device=device) / 255
    test_labels = mnist["test_labels"][:test_limit].astype(np.int64)
    x_train, y_train = images[trained_on], labels[trained_on]
    model = GroupedStrided(n, recipe["layers"]).to(device)
    optimizer = (torch.optim.AdamW if recipe["weight_decay"] else torch.optim.Adam)(
        model.parameters(), lr=recipe["lr"], eps=1e-7, weight_decay=recipe["weight_decay"])
    started = time.perf_counter()
    for epoch in range(recipe["epochs"]):
        for group in optimizer.param_groups:
            group["lr"] = recipe["lr"] * 0.5 * (1 + math.cos(math.pi * epoch / recipe["epochs"]))
        model.train()
        orders = torch.stack([torch.randperm(len(x_train), device=device, generator=gen) for _ in range(n)])
        for start in range(0, len(x_train), recipe["batch"]):
            rows = orders[:, start:start + recipe["batch"]].T  # (batch, n): each model its own images
            logits = model(augment(x_train[rows], recipe, gen))
            loss = n * F.cross_entropy(logits.reshape(-1, 10), y_train[rows].reshape(-1),
                                       label_smoothing=recipe["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        print(f"{name}: epoch {epoch + 1}/{recipe['epochs']} {time.perf_counter() - started:.0f} s", flush=True)
    calibrate(model, x_train[orders[:, :CALIBRATION_IMAGES].T])
    validation = (predict(model, images[held_out]).argmax(-1) == labels[held_out]).float().mean(1)
    np.savez(out / f"{name}.npz", validation_accuracy=validation.cpu().numpy(),
             test_probabilities=predict(model, test_images).cpu().numpy().astype(np.float16),
             test_labels=test_labels, train_seconds=time.perf_counter() - started)


def mistakes(probabilities: np.ndarray, labels: np.ndarray) -> int:
    """Test images whose most probable digit is wrong."""
    return int((probabilities.argmax(-1) != labels).sum())


def summarize(out: Path) -> None:
    """One Markdown row per recipe: members' mistakes and those of every five-model average."""
    print("| recipe | validation | each model | five averaged: median | mean | range | 25 or fewer | all averaged |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted(out.glob("*.npz")):
        saved = np.load(path)
        probabilities, labels = saved["test_probabilities"].astype(np.float32), saved["test_labels"]
        each = [mistakes(p, labels) for p in probabilities]
        fives = np.array([mistakes(probabilities[list(c)].mean(0), labels)
                          for c in itertools.combinations(range(len(probabilities)),
                                                          min(ENSEMBLE_SIZE, len(probabilities)))])
        print(f"| {path.stem} | {saved['validation_accuracy'].mean():.2%} | {np.mean(each):.1f} | "
              f"{np.median(fives):.0f} | {fives.mean():.1f} | {fives.min()}–{fives.max()} | "
              f"{(fives <= 25).mean():.0%} | {mistakes(probabilities.mean(0), labels)} |")


def main() -> None:
    """Parse the command line and train or summarize."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["train", "summarize"])
    parser.add_argument("out", type=Path, help="folder of the per-recipe .npz results")
    parser.add_argument("recipes", nargs="*", metavar="RECIPE", help=f"recipes to train: {', '.join(RECIPES)}")
    parser.add_argument("--quick", action="store_true", help="two models, one epoch, 3,000 images")
    args = parser.parse_args()
    unknown = [name for name in args.recipes if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    if args.action == "summarize":
        summarize(args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    for name in args.recipes:
        train(name, args.out, device, args.quick)


if __name__ == "__main__":
    main()
