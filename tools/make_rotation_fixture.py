#!/usr/bin/python3
"""Writes the torchvision rotation fixture that tests/test_transforms.cpp compares against.

Run with Debian's python3-torchvision (not needed to build or test minicnn; the files are
committed):

    /usr/bin/python3 tools/make_rotation_fixture.py [output_dir]    # default: tests/fixtures

It rotates a few images by fixed angles exactly as torchvision's
RandomRotation(degrees, interpolation=InterpolationMode.BILINEAR) does on a tensor: its forward()
turns the fill value into a per-channel list and calls
F.rotate(img, angle, BILINEAR, expand=False, center=None, fill=[fill] * channels), which is what
this script calls (with the angle fixed instead of drawn). Conventions being pinned down: a
positive angle turns the image counter-clockwise; the centre is ((W - 1) / 2, (H - 1) / 2) in
pixel indices; samples outside the image read 0 and the result is blended with the fill by the
in-image weight.

Files (IDX, big-endian, written by this script's own small writer; .gz files are gzip with
mtime 0 so that re-running reproduces them byte for byte):
    rotation_angles.idx              f64 [A]                the angles, degrees
    rotation_fashion_input.idx       u8  [2, 28, 28]        Fashion-MNIST test images 0 and 1
    rotation_fashion_expected.idx.gz f32 [A, 2, 28, 28]     rotate(input / 255, angle), fill 0
    rotation_odd_input.idx           f32 [2, 9, 14]         one random 2-channel 9x14 image
    rotation_odd_expected.idx.gz     f32 [A, 2, 9, 14]      rotate(input, angle), fill 0.25
The 9x14 image (odd height, even width, not square) checks the centre convention on both axes.
"""
import gzip
import io
import os
import struct
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

ANGLES = [-10.0, 7.3, 33.0, 90.0]
DATA_DIR = os.environ.get("MINICNN_DATA", "/usr/share/datasets/fashion-mnist")

TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array):
    array = np.ascontiguousarray(array)
    header = bytes([0, 0, TYPE_CODES[array.dtype], array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, array, compress=False):
    data = idx_bytes(array)
    if compress:
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as out:
            out.write(data)
        data = buffer.getvalue()
    with open(path, "wb") as out:
        out.write(data)


def read_test_images(count):
    with gzip.open(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:count].copy()


def odd_image():
    # One random 2-channel 9x14 image (odd height, even width, not square), float32 in [0, 1).
    rng = np.random.default_rng(20261129)
    return rng.random((2, 9, 14), dtype=np.float32)


def rotate(image, angle, fill):
    # image: float32 [C, H, W]; exactly RandomRotation.forward's call with a fixed angle.
    channels = image.shape[0]
    out = F.rotate(torch.from_numpy(image), angle, InterpolationMode.BILINEAR, False, None, [float(fill)] * channels)
    return out.numpy()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    torch.set_num_threads(1)

    fashion = read_test_images(2)
    # ToTensor's scaling: a float32 division by 255.
    fashion_float = (torch.from_numpy(fashion).to(torch.float32) / 255).numpy()
    fashion_expected = np.stack(
        [np.stack([rotate(fashion_float[k : k + 1], a, 0.0)[0] for k in range(len(fashion))]) for a in ANGLES]
    ).astype(np.float32)

    odd = odd_image()
    odd_expected = np.stack([rotate(odd, a, 0.25) for a in ANGLES]).astype(np.float32)

    write(os.path.join(out_dir, "rotation_angles.idx"), np.array(ANGLES, dtype=np.float64))
    write(os.path.join(out_dir, "rotation_fashion_input.idx"), fashion)
    write(os.path.join(out_dir, "rotation_fashion_expected.idx.gz"), fashion_expected, compress=True)
    write(os.path.join(out_dir, "rotation_odd_input.idx"), odd)
    write(os.path.join(out_dir, "rotation_odd_expected.idx.gz"), odd_expected, compress=True)
    print(f"wrote the rotation fixture for angles {ANGLES} to {os.path.abspath(out_dir)}")


if __name__ == "__main__":
    main()
