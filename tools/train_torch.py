#!/usr/bin/python3
"""`fashion_mnist train` in PyTorch: the same model, the same recipe file, the same data, trained by
PyTorch on the same CPU, so that accuracy and epoch wall time can be reported side by side
(docs/results.md, "PyTorch twin of the demo's recipes").

    /usr/bin/python3 tools/train_torch.py --recipe fashion_resnet --threads 2 --out runs/torch_fashion_resnet.json
    /usr/bin/python3 tools/train_torch.py --recipe fashion_resnet --model resnet18 --out runs/torch_resnet18.json
    /usr/bin/python3 tools/train_torch.py --recipe best --limit-train 512 --limit-test 512 --epochs 1   # a smoke run
    /usr/bin/python3 tools/train_torch.py --self-test        # augmentation and lr schedules against torchvision / torch
    /usr/bin/python3 tools/train_torch.py --recipe fashion_resnet --print-config   # the effective configuration, as the demo prints it

The configuration is read exactly as the demo reads it: `--recipe NAME`
(examples/fashion_mnist/recipes/NAME.toml) and `--config FILE`, in command-line order, a later file
winning, and the demo's flags (--model ... --limit-test) winning over every file; the defaults are
the demo's (the tutorial's recipe). What each setting does is the demo's (examples/fashion_mnist/
training.hpp):
  - the model: tools/resnet_torch.py's MODELS, the twins of the demo's --model names, built under
    torch.manual_seed(seed) with their own (PyTorch / torchvision) initialisation;
  - the images: ToTensor (x / 255), then, when augmenting, RandomCrop(28, padding) if crop-padding > 0,
    RandomRotation(rotation, bilinear) if rotation > 0, RandomHorizontalFlip(0.5); Normalize(0.5, 0.5);
    then RandomErasing(p=erasing) if erasing > 0 and augmenting. torchvision's own transforms draw
    every random parameter (their get_params, image after image, in Compose order, from torch's
    global generator), and the drawn crops, rotations, flips and rectangles are applied to the whole
    batch at once: --self-test checks that the result equals torchvision's per-image Compose bit for
    bit;
  - the batches: a DataLoader over the preloaded uint8 images, shuffled every epoch by its own seeded
    torch.Generator, drop_last False, num_workers 0 (the work stays on the --threads cores);
  - Adam (L2 weight decay) or AdamW (decoupled), betas (0.9, 0.999), eps 1e-8; weight decay on every
    parameter, or with decay-norm-and-bias false only on parameters of rank >= 2 (two groups, as
    minicnn::split_weight_decay);
  - the learning rate set on every group before every step from lr_at(step), the formulas of
    include/minicnn/optim/schedules.hpp (cosine: the tutorial's CosineAnnealingLR per epoch);
  - CrossEntropyLoss(label_smoothing), the test loss with the same criterion;
  - after every epoch, the test set in eval mode, batches of test-batch-size.

One line per epoch in the demo's format; --out FILE.json gets the configuration, the per-epoch
history (the demo's metrics.json keys, plus augment_seconds) and the versions, rewritten after
every epoch. Needs Debian's python3-torch, python3-torchvision and numpy; the folder of this file
on sys.path (it is, when run as a script).
"""

import argparse
import json
import math
import os
import sys
import time

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11: the flat key = value parser below reads the recipes
    tomllib = None

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

try:
    from torchvision.transforms._functional_tensor import _apply_grid_transform  # torchvision >= 0.15
except ImportError:
    from torchvision.transforms.functional_tensor import _apply_grid_transform  # Debian 12's 0.14

from pytorch_fashion_cnn import read_idx  # the IDX reader (.gz or not, both file-name spellings)
from resnet_torch import MODELS  # the twins of the demo's --model names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE_DIR = os.path.join(REPO, "examples", "fashion_mnist", "recipes")
NORMALIZE_MEAN, NORMALIZE_STD = 0.5, 0.5
IMAGE_SIZE = 28
# The shuffling generator's seed is the run's seed XOR this, so that it does not replay the
# global generator's stream (same seed, same Mersenne Twister) that draws the weights and the
# augmentation.
SHUFFLE_SEED_MIX = 0x9E3779B97F4A7C15

# --- The configuration: the demo's TrainConfig (examples/fashion_mnist/options.hpp) ---------------

# key: (default, kind, check). The defaults are the demo's, the tutorial's recipe. A check returns
# an error text or None.
def _in(low, high, low_open=False):
    def check(value):
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
        return None if ok else f"expected a number in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}"
    return check


def _member(names):
    return lambda value: None if value in names else f"expected one of {', '.join(names)}, got {value!r}"


OPTIMIZERS = ["adam", "adamw"]
SCHEDULES = ["cosine", "onecycle", "warmup-cosine", "constant"]
SETTINGS = {
    "model": ("fashion_cnn", str, _member(list(MODELS))),
    "epochs": (10, int, _in(1, 100000)),
    "batch-size": (64, int, _in(1, 65536)),
    "lr": (1e-3, float, _in(0.0, 1e300, low_open=True)),
    "optimizer": ("adam", str, _member(OPTIMIZERS)),
    "weight-decay": (0.0, float, _in(0.0, 1e6)),
    "decay-norm-and-bias": (True, bool, None),
    "schedule": ("cosine", str, _member(SCHEDULES)),
    "warmup": (0.15, float, _in(0.0, 0.99)),
    "label-smoothing": (0.0, float, _in(0.0, 1.0)),
    "augment": (True, bool, None),
    "rotation": (10.0, float, _in(0.0, 180.0)),
    "crop-padding": (0, int, _in(0, 28)),
    "erasing": (0.0, float, _in(0.0, 1.0)),
    "seed": (0, int, _in(0, 2**64 - 1)),
    "test-batch-size": (1000, int, _in(1, 65536)),
    "limit-train": (0, int, _in(0, 2**40)),
    "limit-test": (0, int, _in(0, 2**40)),
}
# Where and how to run, not what to train: the demo refuses them in a configuration file.
NOT_CONFIGURABLE = {"config", "recipe", "print-config", "data", "out", "resume", "threads", "device"}


class ConfigError(Exception):
    pass


def typed(key, value, where):
    """`value` as the setting's kind, checked; ConfigError naming `where`, the key, expected and found."""
    kind, check = SETTINGS[key][1], SETTINGS[key][2]
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "yes", "no", "1", "0"):
            value = value.lower() in ("true", "on", "yes", "1")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key}: expected true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key}: expected a non-negative integer, got {value!r}")
    elif kind is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key}: expected a number, got {value!r}")
        value = float(value)
    elif not isinstance(value, str):
        raise ConfigError(f"{where}: {key}: expected a name, got {value!r}")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{where}: {problem}" if where == "--" + key else f"{where}: {key}: {problem}")
    return value


def parse_flat(text, path):
    """The demo's INI-or-TOML subset without tomllib: `key = value` lines, comments with # or ;,
    strings in quotes or not, no sections."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            raise ConfigError(f"{path}:{number}: unexpected section {line}; the settings are top-level keys")
        key, equals, value = line.partition("=")
        if not equals:
            raise ConfigError(f"{path}:{number}: expected key = value, got {line!r}")
        value = value.strip()
        if value[:1] in "\"'":
            end = value.find(value[0], 1)
            if end < 0:
                raise ConfigError(f"{path}:{number}: unterminated string {value}")
            values[key.strip()] = value[1:end]
            continue
        value = value.split("#")[0].split(";")[0].strip()
        for convert in (int, float):
            try:
                values[key.strip()] = convert(value)
                break
            except ValueError:
                pass
        else:
            values[key.strip()] = {"true": True, "false": False}.get(value, value)
    return values


def read_config_file(path):
    """A recipe or configuration file as {key: typed value}."""
    with open(path, "rb") as f:
        data = f.read()
    values = None
    if tomllib is not None:
        try:
            values = tomllib.loads(data.decode())
        except tomllib.TOMLDecodeError:
            values = None  # maybe INI syntax (strings without quotes), which the demo also reads
    if values is None:
        values = parse_flat(data.decode(), path)
    config = {}
    for key, value in values.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: unexpected section [{key}]; the settings are top-level keys")
        if key in NOT_CONFIGURABLE:
            raise ConfigError(f"{path}: '{key}' is not part of a configuration; give --{key} on the command line")
        if key not in SETTINGS:
            raise ConfigError(f"{path}: unknown setting '{key}'")
        config[key] = typed(key, value, path)
    return config


def recipe_path(name):
    path = os.path.join(RECIPE_DIR, name + ".toml")
    if not os.path.isfile(path):
        names = sorted(n[:-5] for n in os.listdir(RECIPE_DIR) if n.endswith(".toml"))
        raise argparse.ArgumentTypeError(f"no recipe '{name}' (the recipes: {', '.join(names)})")
    return path


def parse_command_line(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        epilog="The flags from --model to --limit-test are the demo's (docs/demo.md); a flag wins over every file.")
    # --recipe and --config land in one list, in command-line order: a later file wins.
    parser.add_argument("--recipe", dest="config_files", action="append", type=recipe_path, default=[],
                        metavar="NAME", help="a shipped recipe, examples/fashion_mnist/recipes/NAME.toml")
    parser.add_argument("--config", dest="config_files", action="append", default=[], metavar="FILE",
                        help="a TOML (or INI) configuration file, as the demo's --config; may be repeated")
    for key, (default, kind, _) in SETTINGS.items():
        if kind is bool:
            parser.add_argument("--" + key, action=argparse.BooleanOptionalAction, default=None,
                                help=f"(default {str(default).lower()})")
        else:
            parser.add_argument("--" + key, type=str, default=None,
                                metavar="NAME" if kind is str else "N" if kind is int else "X",
                                help=f"(default {default})")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--data", default=os.environ.get("MINICNN_DATA", "/usr/share/datasets/fashion-mnist"),
                        metavar="DIR", help="the Fashion-MNIST folder (default: $MINICNN_DATA, else %(default)s)")
    parser.add_argument("--out", metavar="FILE.json", help="write the metrics here (rewritten after every epoch)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration as a file --config reads, and exit")
    parser.add_argument("--self-test", action="store_true",
                        help="check the batched augmentation against torchvision's per-image Compose and lr_at "
                             "against torch's schedulers, then exit (no data needed)")
    args = parser.parse_args(argv)

    config = {key: default for key, (default, _, _) in SETTINGS.items()}
    names = []
    try:
        for path in args.config_files:
            config.update(read_config_file(path))
            stem = os.path.splitext(os.path.basename(path))[0]
            names.append(stem if os.path.abspath(path) == os.path.join(RECIPE_DIR, stem + ".toml") else path)
        for key in SETTINGS:
            value = getattr(args, key.replace("-", "_"))
            if value is not None:
                config[key] = typed(key, value, "--" + key)
    except (ConfigError, OSError) as error:
        parser.error(str(error))
    if args.threads < 1:
        parser.error(f"--threads: expected a number >= 1, got {args.threads}")
    config["recipe"] = " + ".join(names) if names else "tutorial"
    return args, config


def config_text(config):
    lines = [f"# fashion_mnist train configuration (from {config['recipe']}); read it back with --config FILE"]
    for key in SETTINGS:
        value = config[key]
        lines.append(f"{key} = " + (f'"{value}"' if isinstance(value, str) else str(value).lower()
                                    if isinstance(value, bool) else repr(value)))
    return "\n".join(lines) + "\n"


# --- The learning rate: include/minicnn/optim/schedules.hpp, formula for formula ------------------

def cosine_anneal(start, end, fraction):
    """From `start` (fraction 0) to `end` (fraction 1), as detail::cosine_anneal (OneCycleLR's)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1.0)


def epoch_cosine_lrs(base_lr, t_max, eta_min=0.0):
    """EpochCosineSchedule's table: the lr of epochs 0 .. t_max by CosineAnnealingLR's recursive
    update (CosineAnnealingLR::next_lr), which is what the tutorial's scheduler holds."""
    lrs = [base_lr]
    for epoch in range(1, t_max + 1):
        previous = lrs[-1]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            lrs.append(previous + (base_lr - eta_min) * (1.0 - math.cos(math.pi / t_max)) / 2.0)
        else:
            lrs.append((1.0 + math.cos(math.pi * epoch / t_max)) / (1.0 + math.cos(math.pi * (epoch - 1) / t_max)) *
                       (previous - eta_min) + eta_min)
    return lrs


def one_cycle(max_lr, total_steps, pct_start, div_factor=25.0, final_div_factor=1e4):
    """OneCycleSchedule::lr (OneCycleLR, cos, two phases, lr only)."""
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    first_end, second_end = pct_start * total_steps - 1.0, float(total_steps - 1)
    if total_steps < 2 or not 0.0 < pct_start < 1.0 or not 0.0 < first_end < second_end:
        raise ConfigError(f"onecycle: warmup {pct_start:g} leaves an empty phase for {total_steps} steps (the demo refuses "
                          "it too); train on more images or epochs, or in smaller batches")

    def lr_at(step):
        if not 0 <= step <= total_steps:
            raise ValueError(f"OneCycleSchedule: step {step} is outside [0, {total_steps}]")
        if step <= first_end:
            return cosine_anneal(initial_lr, max_lr, step / first_end)
        return cosine_anneal(max_lr, min_lr, (step - first_end) / (second_end - first_end))
    return lr_at


def llround(x):
    """std::llround for x >= 0: halves away from zero (Python's round() goes to even)."""
    below = math.floor(x)
    return int(below) + (1 if x - below >= 0.5 else 0)


def warmup_cosine(peak_lr, total_steps, warmup_steps, final_lr=0.0, warmup_start_lr=0.0):
    """WarmupCosineSchedule::lr."""
    def lr_at(step):
        if step < warmup_steps:
            return warmup_start_lr + (peak_lr - warmup_start_lr) * step / warmup_steps
        if step >= total_steps:
            return final_lr
        return cosine_anneal(peak_lr, final_lr, (step - warmup_steps) / (total_steps - warmup_steps))
    return lr_at


def make_schedule(config, steps_per_epoch):
    """(lr_at(step), description), as the demo's make_schedule (training.hpp)."""
    epochs, lr, total_steps = config["epochs"], config["lr"], steps_per_epoch * config["epochs"]
    warmup = f"{100 * config['warmup']:g}%"
    if config["schedule"] == "cosine":
        lrs = epoch_cosine_lrs(lr, epochs)
        return (lambda step: lrs[step // steps_per_epoch]), f"CosineAnnealingLR(T_max={epochs}) per epoch"
    if config["schedule"] == "onecycle":
        return one_cycle(lr, total_steps, config["warmup"]), f"one-cycle per step, {warmup} warm-up"
    if config["schedule"] == "warmup-cosine":
        return (warmup_cosine(lr, total_steps, llround(config["warmup"] * total_steps)),
                f"linear warm-up {warmup} then cosine, per step")
    return (lambda step: lr), "constant lr"


# --- The optimiser ---------------------------------------------------------------------------------

def make_optimizer(config, model):
    """Adam or AdamW as the demo's make_optimizer; with decay-norm-and-bias false, two groups:
    rank >= 2 tensors decayed, the others (biases, BatchNorm weights) not."""
    weight_decay = config["weight-decay"]
    if config["decay-norm-and-bias"]:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    else:
        parameters = list(model.parameters())
        groups = [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]
        groups = [group for group in groups if group["params"]]
    kind = torch.optim.AdamW if config["optimizer"] == "adamw" else torch.optim.Adam
    return kind(groups, lr=config["lr"], betas=(0.9, 0.999), eps=1e-8)


# --- The images --------------------------------------------------------------------------------------

class Augmentation:
    """The demo's training transforms (make_train_transform) with torchvision's semantics, for a
    batch of uint8 images [B, 1, 28, 28]: torchvision's transform objects draw each image's
    parameters from torch's global generator (image after image, transform after transform, the
    draws a per-image Compose makes), then the crops, rotations, flips, Normalize and erasures are
    applied to the whole batch. reference() is torchvision's own Compose, image by image."""

    def __init__(self, config):
        augment = config["augment"]
        self.crop = T.RandomCrop(IMAGE_SIZE, padding=config["crop-padding"]) if augment and config["crop-padding"] > 0 else None
        self.rotation = (T.RandomRotation(config["rotation"], interpolation=InterpolationMode.BILINEAR)
                         if augment and config["rotation"] > 0 else None)
        self.flip = T.RandomHorizontalFlip(0.5) if augment else None
        self.normalize = T.Normalize((NORMALIZE_MEAN,), (NORMALIZE_STD,))
        self.erasing = T.RandomErasing(p=config["erasing"]) if augment and config["erasing"] > 0 else None
        transforms = [self.crop, self.rotation, self.flip, self.normalize, self.erasing]
        self.compose = T.Compose([t for t in transforms if t is not None])
        padded = IMAGE_SIZE + 2 * (self.crop.padding if self.crop else 0)
        self._padded_like = torch.empty(1, padded, padded)  # what get_params reads: the shape
        self._image_like = torch.empty(1, IMAGE_SIZE, IMAGE_SIZE)

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.compose.transforms) + ")"

    @staticmethod
    def to_unit_range(images):
        return images.to(torch.float32).div(255)  # ToTensor's arithmetic

    def reference(self, images):
        """torchvision's Compose on each image in turn: what __call__ must equal."""
        return torch.stack([self.compose(image) for image in self.to_unit_range(images)])

    def draw(self, count):
        """Every image's parameters, drawn as the per-image Compose draws them."""
        tops, lefts, angles, flips, erasures = [], [], [], [], []
        for _ in range(count):
            if self.crop:
                top, left, _, _ = self.crop.get_params(self._padded_like, self.crop.size)
                tops.append(top)
                lefts.append(left)
            if self.rotation:
                angles.append(self.rotation.get_params(self.rotation.degrees))
            if self.flip:
                flips.append(bool(torch.rand(1) < self.flip.p))
            if self.erasing:
                rectangle = (0, 0, 0, 0)
                if torch.rand(1) < self.erasing.p:
                    top, left, height, width, _ = self.erasing.get_params(
                        self._image_like, scale=self.erasing.scale, ratio=self.erasing.ratio, value=[self.erasing.value])
                    if height < IMAGE_SIZE:  # (0, 0, H, W): no rectangle fitted, the image stays
                        rectangle = (top, left, height, width)
                erasures.append(rectangle)
        return tops, lefts, angles, flips, erasures

    def __call__(self, images):
        tops, lefts, angles, flips, erasures = self.draw(len(images))
        x = self.to_unit_range(images)
        if self.crop:
            padded = F.pad(x, self.crop.padding, self.crop.fill, self.crop.padding_mode)
            window = torch.arange(IMAGE_SIZE)
            rows = (torch.tensor(tops)[:, None] + window)[:, :, None]
            columns = (torch.tensor(lefts)[:, None] + window)[:, None, :]
            x = padded[torch.arange(len(x))[:, None, None], 0, rows, columns].unsqueeze(1)
        if self.rotation:
            x = self.rotate(x, angles)
        if self.flip:
            x = torch.where(torch.tensor(flips)[:, None, None, None], x.flip(-1), x)
        x = self.normalize(x)
        if self.erasing:
            top, left, height, width = torch.tensor(erasures).unbind(1)
            index = torch.arange(IMAGE_SIZE)
            in_rows = (index >= top[:, None]) & (index < (top + height)[:, None])
            in_columns = (index >= left[:, None]) & (index < (left + width)[:, None])
            x = x.masked_fill((in_rows[:, :, None] & in_columns[:, None, :])[:, None], float(self.erasing.value))
        return x

    def rotate(self, x, angles):
        """F.rotate(image, angle, BILINEAR, fill=[fill]) for every image, one grid_sample: the
        sampling grid of torchvision's _gen_affine_grid with one theta per image."""
        size = x.shape[-1]
        matrices = [F._get_inverse_affine_matrix([0.0, 0.0], -angle, [0.0, 0.0], 1.0, [0.0, 0.0]) for angle in angles]
        theta = torch.tensor(matrices, dtype=x.dtype).reshape(-1, 2, 3)
        base_grid = torch.empty(1, size, size, 3, dtype=x.dtype)
        line = torch.linspace(-size * 0.5 + 0.5, size * 0.5 + 0.5 - 1, steps=size)
        base_grid[..., 0].copy_(line)
        base_grid[..., 1].copy_(line.unsqueeze(-1))
        base_grid[..., 2].fill_(1)
        rescaled_theta = theta.transpose(1, 2) / torch.tensor([0.5 * size, 0.5 * size], dtype=x.dtype)
        grid = torch.matmul(base_grid.view(size * size, 3), rescaled_theta)  # [B, size * size, 2]
        fill = self.rotation.fill
        fill = [float(fill)] * x.shape[1] if isinstance(fill, (int, float)) else [float(f) for f in fill]
        return _apply_grid_transform(x, grid.view(-1, size, size, 2), InterpolationMode.BILINEAR.value, fill)


def load_split(directory, prefix, limit):
    images = torch.from_numpy(read_idx(directory, f"{prefix}-images-idx3-ubyte")).unsqueeze(1)  # [N, 1, 28, 28] uint8
    labels = torch.from_numpy(read_idx(directory, f"{prefix}-labels-idx1-ubyte")).to(torch.int64)
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    return images, labels


# --- Training ------------------------------------------------------------------------------------------

def describe(config, schedule, augmentation):
    c = config
    decay = ""
    if c["weight-decay"] > 0:
        decay = f", weight decay {c['weight-decay']:g}" + ("" if c["decay-norm-and-bias"] else " (weights only)")
    return (f"recipe {c['recipe']}: {c['model']}, {c['epochs']} epochs, batch {c['batch-size']}, "
            f"{'AdamW' if c['optimizer'] == 'adamw' else 'Adam'} lr {c['lr']:g}{decay}, {schedule}, "
            f"label smoothing {c['label-smoothing']:g}, {augmentation if c['augment'] else 'no augmentation'}, "
            f"seed {c['seed']}")


def evaluate(model, images, labels, batch_size, criterion):
    """(mean loss, accuracy, correct count) on normalised images, in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = model(images[start:start + batch_size])
            batch_labels = labels[start:start + batch_size]
            loss_sum += criterion(logits, batch_labels).item() * len(batch_labels)
            correct += (logits.argmax(1) == batch_labels).sum().item()
    return loss_sum / max(len(labels), 1), correct / max(len(labels), 1), correct


def write_json(path, value):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(temporary, path)


def train(args, config):
    torch.set_num_threads(args.threads)
    torch.manual_seed(config["seed"])  # the weights, the augmentation, the dropout masks
    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads")
    train_images, train_labels = load_split(args.data, "train", config["limit-train"])
    test_images, test_labels = load_split(args.data, "t10k", config["limit-test"])
    print(f"data: {len(train_labels)} training images{' (--limit-train)' if config['limit-train'] else ''}, "
          f"{len(test_labels)} test images, from {args.data}")
    augmentation = Augmentation(config)
    normalized_test = augmentation.normalize(Augmentation.to_unit_range(test_images))

    model = MODELS[config["model"]]()
    optimizer = make_optimizer(config, model)
    criterion = nn.CrossEntropyLoss(label_smoothing=config["label-smoothing"])
    shuffle = torch.Generator().manual_seed(config["seed"] ^ SHUFFLE_SEED_MIX)
    loader = torch.utils.data.DataLoader(range(len(train_labels)), batch_size=config["batch-size"], shuffle=True,
                                         generator=shuffle, drop_last=False, num_workers=0)
    lr_at, schedule = make_schedule(config, len(loader))
    print(describe(config, schedule, augmentation))
    print(f"model: {config['model']}, {sum(p.numel() for p in model.parameters())} parameters", flush=True)

    metrics = {"status": "running", "producer": "tools/train_torch.py", "command": " ".join(sys.argv),
               "torch": torch.__version__, "torchvision": torchvision.__version__, "threads": torch.get_num_threads(),
               "config": {key.replace("-", "_"): value for key, value in config.items()},
               "schedule": schedule, "transform": repr(augmentation),
               "data": {"train_images": len(train_labels), "test_images": len(test_labels), "path": args.data},
               "parameters": sum(p.numel() for p in model.parameters()), "epochs_completed": 0, "history": []}
    metrics["config"]["seed"] = str(config["seed"])  # as the demo's metrics.json
    history = metrics["history"]
    step, epochs, run_start = 0, config["epochs"], time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, correct, seen, augment_seconds = 0.0, 0, 0, 0.0
        start = time.perf_counter()
        for indices in loader:
            augment_start = time.perf_counter()
            images, labels = augmentation(train_images[indices]), train_labels[indices]
            augment_seconds += time.perf_counter() - augment_start
            lr = lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = model(images)
            loss = criterion(logits, labels)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                metrics["status"] = "diverged"
                if args.out:
                    write_json(args.out, metrics)
                sys.exit(f"error: training diverged: the training loss is {loss_value:g} at epoch {epoch}, "
                         f"step {step + 1} (lr {lr:g})")
            correct += (logits.argmax(1) == labels).sum().item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss_value * len(labels)
            seen += len(labels)
            step += 1
        seconds = time.perf_counter() - start
        eval_start = time.perf_counter()
        test_loss, test_accuracy, test_correct = evaluate(model, normalized_test, test_labels,
                                                          config["test-batch-size"], criterion)
        eval_seconds = time.perf_counter() - eval_start
        record = {"epoch": epoch, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                  "test_loss": test_loss, "test_accuracy": test_accuracy, "lr": lr,  # the epoch's last step's
                  "seconds": seconds, "eval_seconds": eval_seconds, "augment_seconds": augment_seconds}
        history.append(record)
        best = max(history, key=lambda r: r["test_accuracy"])
        metrics.update(status="completed" if epoch == epochs else "running", epochs_completed=epoch,
                       final_test_accuracy=test_accuracy, best_test_accuracy=best["test_accuracy"],
                       best_epoch=best["epoch"], total_seconds=time.perf_counter() - run_start)
        if args.out:
            write_json(args.out, metrics)
        print(f"epoch {epoch:2d}/{epochs}  train loss {record['train_loss']:.4f}  acc {100 * record['train_accuracy']:.2f}%"
              f"  |  test loss {test_loss:.4f}  acc {100 * test_accuracy:.2f}%  |  lr {lr:.3g}  |  {seconds:.1f} s "
              f"(+{eval_seconds:.1f} s eval)", flush=True)
    print(f"\nfinal test accuracy {100 * test_accuracy:.2f}% ({test_correct}/{len(test_labels)}), "
          f"{metrics['total_seconds']:.1f} s in all" + (f"; wrote {args.out}" if args.out else ""))


# --- Self-test: the two things written here rather than taken from torch/torchvision ----------------

def self_test():
    torch.set_num_threads(1)
    failures = 0
    images = torch.randint(0, 256, (300, 1, IMAGE_SIZE, IMAGE_SIZE), generator=torch.Generator().manual_seed(1),
                           dtype=torch.uint8)
    augment_cases = [
        {"augment": True, "crop-padding": 2, "rotation": 0.0, "erasing": 0.25},   # fashion_resnet
        {"augment": True, "crop-padding": 0, "rotation": 10.0, "erasing": 0.0},   # tutorial
        {"augment": True, "crop-padding": 4, "rotation": 30.0, "erasing": 1.0},   # everything, often
        {"augment": False, "crop-padding": 4, "rotation": 10.0, "erasing": 0.5},  # best: Normalize only
    ]
    for case in augment_cases:
        augmentation = Augmentation(dict(case))
        torch.manual_seed(7)
        expected = augmentation.reference(images)
        after_reference = torch.rand(1)
        torch.manual_seed(7)
        got = augmentation(images)
        same_stream = torch.equal(torch.rand(1), after_reference)  # the same number of draws
        ok = torch.equal(got, expected) and same_stream
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} augmentation {case}: batched == torchvision per image "
              f"(max |diff| {(got - expected).abs().max().item():g}, same draws {same_stream})")

    # lr_at against torch's own schedulers, stepped as the tutorial (per epoch) and OneCycleLR (per step).
    def torch_lrs(make_scheduler, steps, per_epoch=None):
        parameter = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.Adam([parameter], lr=1e-3)
        scheduler = make_scheduler(optimizer)
        lrs = []
        for step in range(steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if per_epoch is None or (step + 1) % per_epoch == 0:
                scheduler.step()
        return lrs

    config = {"epochs": 5, "lr": 3e-3, "warmup": 0.15, "schedule": "onecycle"}
    lr_at, _ = make_schedule(config, 47)
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=3e-3, total_steps=235, pct_start=0.15,
                                                                        cycle_momentum=False), 235)
    ok = [lr_at(s) for s in range(235)] == expected
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} onecycle lr_at == OneCycleLR(cycle_momentum=False), 235 steps, bit for bit")
    config.update(schedule="cosine", epochs=10, lr=1e-3)
    lr_at, _ = make_schedule(config, 3)
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10), 30, per_epoch=3)
    ok = [lr_at(s) for s in range(30)] == expected
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} cosine lr_at == CosineAnnealingLR(T_max=10) stepped per epoch, bit for bit")
    config.update(schedule="warmup-cosine", lr=2e-3, warmup=0.1)
    lr_at, _ = make_schedule(config, 10)  # 100 steps, 10 of warm-up
    ok = lr_at(0) == 0.0 and abs(lr_at(5) - 1e-3) < 1e-18 and lr_at(10) == 2e-3 and lr_at(100) == 0.0 and \
        abs(lr_at(55) - 1e-3) < 1e-15 and llround(2.5) == 3 and llround(2.4999999999999996) == 2
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} warmup-cosine: 0 at step 0, peak at the end of warm-up, half way down at mid-decay, 0 at the end")
    print("failures:", failures)
    return 1 if failures else 0


def main():
    args, config = parse_command_line(sys.argv[1:])
    if args.self_test:
        sys.exit(self_test())
    if args.print_config:
        sys.stdout.write(config_text(config))
        return
    try:
        train(args, config)
    except ConfigError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
