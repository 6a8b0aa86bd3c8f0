#!/usr/bin/python3
"""Writes the interop tests' data file from the real Fashion-MNIST files (gzip + numpy only,
independent of minicnn's IDX reader).

    prepare_data.py DATA_DIR OUT.safetensors [TRAIN_COUNT [TEST_COUNT]]

OUT holds, all F32: "test_images" [TEST_COUNT, 1, 28, 28] (the first TEST_COUNT test images,
default 1000), "train_images" [TRAIN_COUNT, 1, 28, 28] (the first TRAIN_COUNT training images,
default 1280 = 20 batches of 64) and "train_labels" [TRAIN_COUNT], plus "test_labels"
[TEST_COUNT]. Pixels are scaled to [0, 1]
and normalised as the tutorial does (Normalize(0.5, 0.5): (x - 0.5) / 0.5).
"""
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from pytorch_to_safetensors import write_safetensors  # noqa: E402

MEAN, STD = 0.5, 0.5


def find(directory, stem):
    """Either file-name spelling, gzipped or not."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (name + ".gz", name):
            path = os.path.join(directory, candidate)
            if os.path.exists(path):
                return path
    raise SystemExit(f"prepare_data: no {stem}[.gz] in {directory}")


def read_idx(path, count):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as source:
        raw = source.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    values = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)
    if dims[0] < count:
        raise SystemExit(f"{path}: {dims[0]} items, fewer than {count}")
    return values[:count]


def images(path, count):
    pixels = read_idx(path, count).astype(np.float32) / np.float32(255)
    return ((pixels - np.float32(MEAN)) / np.float32(STD)).astype(np.float32).reshape(count, 1, 28, 28)


def main():
    directory, out = sys.argv[1], sys.argv[2]
    train_count = int(sys.argv[3]) if len(sys.argv) > 3 else 1280
    test_count = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    tensors = {
        "test_images": images(find(directory, "t10k-images-idx3-ubyte"), test_count),
        "test_labels": read_idx(find(directory, "t10k-labels-idx1-ubyte"), test_count).astype(np.float32),
        "train_images": images(find(directory, "train-images-idx3-ubyte"), train_count),
        "train_labels": read_idx(find(directory, "train-labels-idx1-ubyte"), train_count).astype(np.float32),
    }
    write_safetensors(out, tensors, {"source": directory})
    print(f"prepare_data: wrote {out} ({test_count} test images, {train_count} training images)")


if __name__ == "__main__":
    main()
