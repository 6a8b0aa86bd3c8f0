#!/usr/bin/python3
"""Writes the torchvision RandomCrop / RandomErasing fixture that tests/test_transforms.cpp
compares against.

Run with Debian's python3-torchvision (not needed to build or test minicnn; the files are
committed):

    /usr/bin/python3 tools/make_augmentation_fixture.py [output_dir]    # default: tests/fixtures

Inputs are the rotation fixture's (tools/make_rotation_fixture.py): input 0 and 1 are
Fashion-MNIST test images 0 and 1 as [1, 28, 28] float32 (pixels / 255, as ToTensor), input 2
is the random 2-channel 9x14 image. Everything is deterministic: fixed cases, a seeded NumPy
generator, torch on one thread.

What is pinned down, each with torchvision's own code:
  - crop: RandomCrop(size, padding=p, fill=fill).forward on a tensor is
    F.pad(img, p, fill, "constant") then F.crop(img, top, left, h, w) with top, left drawn; here
    top and left are fixed, including both ends of their range [0, H + 2p - h].
  - erase: F.erase(img, i, j, h, w, v), the call RandomErasing.forward makes.
  - erase size: RandomErasing.get_params turns an area fraction and a log aspect ratio into
    (h, w) with float32 draws and Python's round() (halves to even), and gives up on a draw whose
    h >= H or w >= W. get_params is called with its random draws replaced by fixed values, so
    the (h, w) and "fits" recorded are what torchvision's code computes from them.

Files (IDX, big-endian; .gz files are gzip with mtime 0 so re-running reproduces them byte for
byte):
    crop_cases.idx             i32 [K, 6]   input, padding, top, left, out_height, out_width
    crop_fills.idx             f32 [K]      the constant fill of each case
    crop_expected.idx.gz       f32 [sum of C * out_height * out_width]   results, case after case
    erase_cases.idx            i32 [E, 5]   input, top, left, height, width
    erase_values.idx           f32 [E]      the erasing value of each case
    erase_expected.idx.gz      f32 [sum of C * H * W]                    results, case after case
    erase_size_cases.idx       i32 [S, 5]   image height, image width, h, w, fits (1 or 0)
    erase_size_draws.idx       f64 [S, 2]   area fraction, aspect ratio (torchvision's float32
                                            exp of the log aspect), as get_params used them
"""
import math
import os
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
import torchvision.transforms.transforms as T

from make_rotation_fixture import odd_image, read_test_images, write

# (input, padding, top, left, out_height, out_width, fill). RandomCrop crops back to the image
# size; a few smaller, non-square windows check the general helper.
CROP_CASES = [
    (0, 4, 0, 0, 28, 28, 0.0),  # top and left at 0
    (0, 4, 8, 8, 28, 28, 0.0),  # top and left at their maximum, 2 * padding
    (0, 4, 0, 8, 28, 28, -1.0),  # fill -1: black after Normalize(0.5, 0.5)
    (0, 1, 2, 2, 28, 28, 0.0),
    (1, 4, 3, 5, 28, 28, 0.0),
    (1, 2, 4, 0, 28, 28, 0.5),
    (1, 0, 0, 0, 28, 28, 0.0),  # no padding: the identity
    (1, 3, 2, 7, 24, 20, 0.0),
    (2, 3, 0, 0, 9, 14, 0.25),
    (2, 3, 6, 6, 9, 14, 0.25),
    (2, 3, 6, 0, 9, 14, 0.25),
    (2, 3, 0, 6, 9, 14, 0.25),
    (2, 1, 1, 0, 9, 14, -3.0),
    (2, 2, 0, 3, 5, 11, 0.25),
    (2, 5, 0, 0, 19, 24, 0.25),  # the whole padded image
    (2, 0, 0, 0, 9, 14, 0.25),
]

# (input, top, left, height, width, value).
ERASE_CASES = [
    (0, 0, 0, 5, 7, 0.0),  # top-left corner
    (0, 20, 21, 8, 7, -1.5),  # reaches the bottom and right edges
    (1, 3, 10, 1, 1, 2.0),  # one pixel
    (1, 10, 0, 4, 28, -0.25),  # a full-width band
    (1, 5, 5, 0, 3, 9.0),  # empty: unchanged (get_params can give h = 0 when scale starts at 0)
    (2, 0, 0, 8, 13, 0.0),  # the largest rectangle get_params allows on 9x14
    (2, 4, 9, 5, 5, 0.75),
    (2, 2, 3, 3, 4, -2.0),
]

SCALE = (0.02, 0.33)
RATIO = (0.3, 3.3)
# get_params's range for the log aspect ratio: float32 logs of the float32 ratio bounds.
LOG_RATIO = tuple(float(x) for x in torch.log(torch.tensor(RATIO)))

# (image height, image width, area fraction, log aspect ratio) with exact ties for round():
# on 16x16 (area 256) with aspect 1, fraction 25/1024 gives sqrt(6.25) = 2.5 -> 2 and 49/1024
# gives 3.5 -> 4; 1/1024 gives 0.5 -> 0 (an empty rectangle that "fits").
ERASE_SIZE_FIXED = [
    (16, 16, 25 / 1024, 0.0),
    (16, 16, 49 / 1024, 0.0),
    (16, 16, 1 / 1024, 0.0),
    (16, 16, 0.25, 0.0),  # sqrt(64) = 8 exactly
    (16, 16, 1.0, 0.0),  # 16 x 16: does not fit
    (16, 16, 25 / 2048, math.log(2.0)),  # aspect 2 (if float32 exp gives exactly 2): 2.5 -> 2, 1.25 -> 1
    (9, 14, 0.33, LOG_RATIO[1]),  # h = 12 >= 9: does not fit
    (9, 14, 0.33, LOG_RATIO[0]),
    (28, 28, 0.02, LOG_RATIO[0]),
    (28, 28, 0.33, LOG_RATIO[1]),
]


def inputs():
    fashion = read_test_images(2)
    # ToTensor's scaling: a float32 division by 255.
    fashion_float = (torch.from_numpy(fashion).to(torch.float32) / 255).numpy()
    return [fashion_float[0:1], fashion_float[1:2], odd_image()], fashion


def crop(image, padding, top, left, out_height, out_width, fill):
    # image: float32 [C, H, W]; RandomCrop.forward's calls with the window fixed.
    padded = F.pad(torch.from_numpy(image), padding, fill, "constant")
    assert 0 <= top <= padded.shape[-2] - out_height and 0 <= left <= padded.shape[-1] - out_width
    return F.crop(padded, top, left, out_height, out_width).numpy()


def erase(image, top, left, height, width, value):
    # RandomErasing.forward's call with a single value: v = torch.tensor([value])[:, None, None].
    v = torch.tensor([value])[:, None, None]
    return F.erase(torch.from_numpy(image), top, left, height, width, v, inplace=False).numpy()


class _FixedDraws:
    """Stands in for the `torch` module inside torchvision.transforms.transforms, so that
    get_params's `torch.empty(1).uniform_(low, high)` returns fixed values (as float32, like the
    real draw) and `torch.randint(low, high, size)` returns low; everything else is torch."""

    def __init__(self, values):
        self.values = list(values)
        self.uniform_calls = 0

    def __getattr__(self, name):
        return getattr(torch, name)

    def empty(self, *size):
        draws = self

        class _Uniform:
            def uniform_(self, low, high):
                value = draws.values[draws.uniform_calls % len(draws.values)]
                draws.uniform_calls += 1
                assert float(low) <= value <= float(high), (value, low, high)
                return torch.tensor([value], dtype=torch.float32)

        return _Uniform()

    def randint(self, low, high, size):
        return torch.tensor([low])


def torchvision_erase_size(height, width, fraction, log_aspect):
    """Runs RandomErasing.get_params on a [1, height, width] image with every attempt drawing
    (fraction, log_aspect); returns (aspect ratio used, h, w, fits)."""
    fixed = _FixedDraws([fraction, log_aspect])
    real_torch = T.torch
    T.torch = fixed
    try:
        top, left, h, w, _ = T.RandomErasing.get_params(
            torch.zeros(1, height, width), scale=(0.0, 1.0), ratio=RATIO, value=[0.0]
        )
    finally:
        T.torch = real_torch
    aspect = torch.exp(torch.tensor([log_aspect], dtype=torch.float32)).item()
    # The two lines of get_params that turn the draws into a size, for draws that do not fit
    # (get_params then returns the whole image and does not say).
    erase_area = height * width * fraction
    formula_h = int(round(math.sqrt(erase_area * aspect)))
    formula_w = int(round(math.sqrt(erase_area / aspect)))
    fits = fixed.uniform_calls == 2  # the first attempt returned
    if fits:
        assert (h, w) == (formula_h, formula_w), (height, width, fraction, log_aspect, h, w)
    else:
        assert fixed.uniform_calls == 20 and (top, left, h, w) == (0, 0, height, width)
        assert not (formula_h < height and formula_w < width)
    return aspect, formula_h, formula_w, int(fits)


def erase_size_cases():
    cases = [(h, w, float(np.float32(f)), float(np.float32(a))) for h, w, f, a in ERASE_SIZE_FIXED]
    rng = np.random.default_rng(20261207)
    log_low, log_high = LOG_RATIO
    for height, width, count in ((28, 28, 12), (9, 14, 10)):
        for _ in range(count):
            fraction = float(np.float32(rng.uniform(*SCALE)))
            log_aspect = float(np.float32(rng.uniform(log_low, log_high)))
            cases.append((height, width, fraction, log_aspect))
    rows, draws = [], []
    for height, width, fraction, log_aspect in cases:
        aspect, h, w, fits = torchvision_erase_size(height, width, fraction, log_aspect)
        rows.append((height, width, h, w, fits))
        draws.append((fraction, aspect))
    return np.array(rows, dtype=np.int32), np.array(draws, dtype=np.float64)


def check_inputs_match_rotation_fixture(out_dir, fashion_u8, odd):
    # The tests read the inputs from the rotation fixture's files; they must be these images.
    from make_rotation_fixture import idx_bytes

    for name, array in (("rotation_fashion_input.idx", fashion_u8), ("rotation_odd_input.idx", odd)):
        with open(os.path.join(out_dir, name), "rb") as f:
            assert f.read() == idx_bytes(array), f"{name} differs: run tools/make_rotation_fixture.py"


def write_cases(out_dir, name, float_name, cases, results):
    # Cases are integer columns then one float (a fill or a value): <name>_cases.idx i32 [K, n],
    # <name>_<float_name>.idx f32 [K], <name>_expected.idx.gz the results flattened in case order.
    write(os.path.join(out_dir, f"{name}_cases.idx"), np.array([c[:-1] for c in cases], dtype=np.int32))
    write(os.path.join(out_dir, f"{name}_{float_name}.idx"), np.array([c[-1] for c in cases], dtype=np.float32))
    expected = np.concatenate([r.ravel() for r in results]).astype(np.float32)
    write(os.path.join(out_dir, f"{name}_expected.idx.gz"), expected, compress=True)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    torch.set_num_threads(1)
    images, fashion_u8 = inputs()
    check_inputs_match_rotation_fixture(out_dir, fashion_u8, images[2])

    crop_results = [crop(images[c[0]], *c[1:]) for c in CROP_CASES]
    for case, result in zip(CROP_CASES, crop_results):
        assert result.shape == (images[case[0]].shape[0], case[4], case[5]), (case, result.shape)
    erase_results = [erase(images[c[0]], *c[1:]) for c in ERASE_CASES]
    size_rows, size_draws = erase_size_cases()

    write_cases(out_dir, "crop", "fills", CROP_CASES, crop_results)
    write_cases(out_dir, "erase", "values", ERASE_CASES, erase_results)
    write(os.path.join(out_dir, "erase_size_cases.idx"), size_rows)
    write(os.path.join(out_dir, "erase_size_draws.idx"), size_draws)
    print(
        f"wrote {len(CROP_CASES)} crop, {len(ERASE_CASES)} erase and {len(size_rows)} erase-size cases "
        f"({int(size_rows[:, 4].sum())} fit) to {os.path.abspath(out_dir)}"
    )


if __name__ == "__main__":
    main()
