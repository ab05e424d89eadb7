"""MNIST: the embedded original IDX files (data/raw/mnist/), checked against their checksums and read as arrays."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from digits.formats.csvfiles import DataError
from digits.util.display import shown
from digits.util.paths import raw_mnist_dir

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}


def expected_checksums(raw_dir: Path) -> dict[str, str]:
    """Read SHA256SUMS.uncompressed: file name -> SHA-256 of the decompressed IDX file."""
    sums_path = raw_dir / "SHA256SUMS.uncompressed"
    if not sums_path.is_file():
        raise DataError(f"{sums_path}: checksum file not found")
    pairs = (line.split() for line in sums_path.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def read_idx(path: Path, expected_sha256: str) -> np.ndarray:
    """Read one gzip IDX file after checking the SHA-256 of its decompressed content."""
    if not path.is_file():
        raise DataError(f"{shown(path)}: file not found")
    try:
        content = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise DataError(f"{shown(path)}: not a readable gzip file ({error})") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected_sha256:
        raise DataError(f"{shown(path)}: checksum mismatch (got {digest[:12]}..., expected {expected_sha256[:12]}...)")
    n_dims = content[3]
    magic = int.from_bytes(content[:4], "big")
    if IDX_MAGIC.get(n_dims) != magic:
        raise DataError(f"{shown(path)}: not an IDX image or label file (magic {magic:#010x})")
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)]
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(shape)


def load_mnist(raw_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Load the four checked MNIST arrays: train/test images (n, 28, 28) and labels (n,)."""
    raw_dir = raw_dir or raw_mnist_dir()
    sums = expected_checksums(raw_dir)
    return {key: read_idx(raw_dir / f"{name}.gz", sums[name]) for key, name in MNIST_FILES.items()}
