#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that minicnn's parity tests compare against.

Run with Debian's python3-torch (not needed to build or test minicnn; the fixtures are
committed):

    /usr/bin/python3 tools/make_fixtures.py [output_dir]      # default: tests/fixtures
    /usr/bin/python3 tools/make_fixtures.py --only activations,channel_scale [output_dir]

--only writes just the named topics (the keys of WRITERS below), leaving the other files as
they are.

Everything is deterministic: a fixed torch.manual_seed per topic, one intra-op thread, so
re-running the script on the same PyTorch version reproduces the files byte for byte.

File format (version 1), all integers little-endian; tests/fixture.hpp reads it:

    magic      8 bytes   "MCNNFIX\\0"
    version    u32       1
    count      u32       number of entries
    count times:
      name_length  u32
      name         name_length bytes of ASCII, no terminator (e.g. "case0.grad_input")
      dtype        u32   0 = float64, 1 = float32
      rank         u32   0 to 4 (rank 0 is a scalar with one element)
      dims         u64 x rank
      data         prod(dims) values of dtype, little-endian, row-major (C order)

Entries computed in float64 are stored as float64. The FashionCNN fixtures are computed in
float32 (what the model trains in) and stored as float32: exactly the values PyTorch produced,
at half the size (the model has 74,602 parameters). Integer data (class targets, layer
configuration) is stored as float64, which holds it exactly.

Files and the topics they cover:
    layer_conv2d.bin             Conv2d, several configurations
    layer_conv2d_general.bin     Conv2d with pairs, per-axis stride / padding / dilation, groups
    layer_pool_general.bin       MaxPool2d / AvgPool2d with pairs, padding, dilation, ceil_mode,
                                 count_include_pad; AdaptiveMaxPool2d (inputs without ties)
    layer_relu.bin               ReLU (inputs kept away from the kink at 0)
    layer_maxpool2d.bin          MaxPool2d (inputs without ties, so the argmax is unique)
    layer_adaptive_avgpool2d.bin AdaptiveAvgPool2d, including sizes that do not divide
    layer_linear.bin             Linear, with and without bias
    layer_flatten.bin            Flatten
    layer_batchnorm.bin          BatchNorm1d / BatchNorm2d: training, evaluation, affine=False,
                                 momentum=None, track_running_stats=False
    loss_cross_entropy.bin       CrossEntropyLoss, mean reduction, with and without label smoothing
    model_fashion_cnn.bin        FashionCNN (float32): weights, a batch, logits, loss, all gradients
    train_fashion_cnn.bin        10 training losses: Adam, AdamW, SGD (+ CosineAnnealingLR)
    optim_steps.bin              raw Adam / AdamW / SGD steps on a float64 tensor
    sched_cosine.bin             CosineAnnealingLR learning rates, past T_max
    layer_activations.bin        every element-wise activation of ops::Activation (see the writer)
    layer_channel_scale.bin      squeeze-and-excitation's x * scale[:, :, None, None]
    optim_groups.bin             AdamW / SGD (Nesterov) steps with two parameter groups, and
                                 CosineAnnealingLR over two groups
    layer_registry.bin           one case per entry of tests/layer_registry.hpp, with its whole
                                 state_dict before and buffers after (layout: see write_registry)

Per-layer files hold `num_cases` and, for each case i, entries prefixed "case<i>.": `config`
(layer arguments, documented per writer below), `input`, parameters (`weight`, `bias`),
`output`, `grad_output` (random), `grad_input`, `grad_weight`, `grad_bias`.
"""

import argparse
import math
import os
import struct
import sys

import torch
import torch.nn as nn

from fashion_cnn_torch import FashionCNN  # tools/fashion_cnn_torch.py: this script's folder is on sys.path

MAGIC = b"MCNNFIX\0"
VERSION = 1
DTYPE_CODES = {torch.float64: 0, torch.float32: 1}


class FixtureWriter:
    """Collects named tensors and writes them in the format described above."""

    def __init__(self):
        self.entries = []

    def add(self, name, value, dtype=torch.float64):
        if isinstance(value, torch.Tensor):
            # A copy: a parameter updated in place later must not change what was recorded.
            tensor = value.detach().to("cpu").clone()
        else:
            tensor = torch.tensor(value, dtype=torch.float64)
        if dtype not in DTYPE_CODES:
            raise ValueError(f"{name}: unsupported dtype {dtype}")
        if tensor.dtype.is_floating_point and torch.finfo(tensor.dtype).bits > torch.finfo(dtype).bits:
            raise ValueError(f"{name}: storing {tensor.dtype} as {dtype} would lose precision")
        if tensor.dim() > 4:
            raise ValueError(f"{name}: rank {tensor.dim()} is above 4")
        if any(existing == name for existing, _ in self.entries):
            raise ValueError(f"{name}: duplicate entry")
        self.entries.append((name, tensor.to(dtype).contiguous()))

    def write(self, path):
        with open(path, "wb") as out:
            out.write(MAGIC)
            out.write(struct.pack("<II", VERSION, len(self.entries)))
            for name, tensor in self.entries:
                encoded = name.encode("ascii")
                out.write(struct.pack("<I", len(encoded)))
                out.write(encoded)
                out.write(struct.pack("<II", DTYPE_CODES[tensor.dtype], tensor.dim()))
                out.write(struct.pack(f"<{tensor.dim()}Q", *tensor.shape))
                # numpy's "<f8"/"<f4" forces little-endian whatever the host.
                little = tensor.numpy().astype("<f8" if tensor.dtype == torch.float64 else "<f4")
                out.write(little.tobytes(order="C"))
        print(f"wrote {path}: {len(self.entries)} entries, {os.path.getsize(path)} bytes")


def away_from_zero(shape, margin=0.1):
    """Values in +-[margin, margin + 1): no element sits at or near ReLU's kink."""
    sign = torch.where(torch.rand(shape, dtype=torch.float64) < 0.5, -1.0, 1.0)
    return sign * (margin + torch.rand(shape, dtype=torch.float64))


def without_ties(shape):
    """A random permutation of distinct values spaced 0.01 apart: max-pool windows have a
    unique maximum, and a small perturbation never changes it."""
    count = math.prod(shape)
    values = (torch.randperm(count, dtype=torch.int64).to(torch.float64) - count / 2) * 0.01
    return values.reshape(shape)


def run_layer(writer, prefix, layer, input_tensor):
    """Forward + backward of one layer on float64 data; records the standard entries."""
    x = input_tensor.clone().requires_grad_(True)
    y = layer(x)
    grad_output = torch.randn(y.shape, dtype=torch.float64)
    y.backward(grad_output)
    writer.add(prefix + "input", input_tensor)
    for name, parameter in layer.named_parameters():
        writer.add(prefix + name, parameter)
        writer.add(prefix + "grad_" + name, parameter.grad)
    writer.add(prefix + "output", y)
    writer.add(prefix + "grad_output", grad_output)
    writer.add(prefix + "grad_input", x.grad)


def write_conv2d(directory):
    torch.manual_seed(100)
    writer = FixtureWriter()
    # (in_channels, out_channels, kernel_size, stride, padding, bias, input shape)
    cases = [
        (3, 4, 3, 1, 1, True, (2, 3, 6, 6)),  # the FashionCNN configuration
        (2, 3, 3, 2, 0, True, (2, 2, 7, 7)),  # stride 2, no padding, odd size
        (2, 3, 3, 1, 2, True, (2, 2, 7, 9)),  # padding 2, non-square odd input
        (3, 2, 3, 1, 1, False, (1, 3, 5, 5)),  # no bias
        (2, 3, 5, 1, 2, True, (2, 2, 8, 6)),  # 5x5 kernel
        (4, 5, 1, 1, 0, True, (2, 4, 3, 5)),  # 1x1 kernel
        (3, 2, 3, 2, 1, True, (1, 3, 9, 7)),  # stride 2 with padding on odd sizes
    ]
    # config: [in_channels, out_channels, kernel_size, stride, padding, bias (0/1)]
    for index, (cin, cout, kernel, stride, padding, bias, shape) in enumerate(cases):
        layer = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=bias).double()
        prefix = f"case{index}."
        writer.add(prefix + "config", [cin, cout, kernel, stride, padding, int(bias)])
        run_layer(writer, prefix, layer, torch.randn(shape, dtype=torch.float64))
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "layer_conv2d.bin"))


def write_conv2d_general(directory):
    """Conv2d with PyTorch's general arguments: pairs, per-axis stride / padding / dilation, groups."""
    torch.manual_seed(110)
    writer = FixtureWriter()
    # (in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, input shape)
    cases = [
        (3, 6, (5, 3), (2, 1), (1, 0), (2, 2), 3, False, (2, 3, 11, 7)),  # everything at once
        (2, 3, (3, 2), (1, 1), (0, 0), (1, 1), 1, True, (2, 2, 6, 5)),  # non-square kernel only
        (4, 4, (3, 3), (1, 1), (1, 1), (1, 1), 4, True, (2, 4, 7, 6)),  # depthwise
        (4, 6, (3, 3), (1, 2), (2, 1), (1, 2), 2, True, (2, 4, 8, 9)),  # two groups, per-axis everything
        (2, 4, (1, 3), (2, 2), (0, 1), (1, 1), 1, True, (1, 2, 5, 7)),  # 1x3 kernel, one stride
        (3, 3, (3, 3), (2, 2), (1, 1), (2, 1), 3, True, (2, 3, 9, 8)),  # depthwise, dilated, strided
        (2, 3, (3, 3), (2, 2), (1, 1), (1, 1), 1, True, (2, 2, 7, 7)),  # a plain geometry given as pairs
    ]
    # config: [in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w, padding_h,
    #          padding_w, dilation_h, dilation_w, groups, bias (0/1)]
    for index, (cin, cout, kernel, stride, padding, dilation, groups, bias, shape) in enumerate(cases):
        layer = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                          bias=bias).double()
        prefix = f"case{index}."
        writer.add(prefix + "config", [cin, cout, *kernel, *stride, *padding, *dilation, groups, int(bias)])
        run_layer(writer, prefix, layer, torch.randn(shape, dtype=torch.float64))
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "layer_conv2d_general.bin"))


def write_pool_general(directory):
    """MaxPool2d and AvgPool2d with pairs, padding, dilation and ceil_mode; AdaptiveMaxPool2d."""
    torch.manual_seed(111)
    writer = FixtureWriter()
    # config, by kind (its first element):
    #   0 MaxPool2d:         [0, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w,
    #                         dilation_h, dilation_w, ceil_mode (0/1)]
    #   1 AvgPool2d:         [1, kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w,
    #                         ceil_mode (0/1), count_include_pad (0/1)]
    #   2 AdaptiveMaxPool2d: [2, out_h, out_w]
    max_cases = [  # (kernel, stride, padding, dilation, ceil_mode, input shape)
        ((3, 2), (2, 1), (1, 0), (1, 1), False, (2, 3, 7, 6)),
        ((3, 3), (2, 2), (1, 1), (1, 1), True, (2, 2, 8, 7)),  # ceil_mode: a last window past the input
        ((2, 2), (2, 2), (0, 0), (1, 1), True, (1, 2, 7, 9)),  # the 2x2 shape in ceil_mode on odd sizes
        ((3, 3), (1, 1), (1, 1), (2, 2), False, (1, 2, 7, 8)),  # dilation
        ((2, 3), (3, 2), (1, 1), (2, 1), True, (1, 2, 9, 8)),  # everything at once
    ]
    avg_cases = [  # (kernel, stride, padding, ceil_mode, count_include_pad, input shape)
        ((3, 3), (2, 2), (1, 1), True, False, (2, 2, 8, 7)),  # ceil_mode windows past the padding
        ((3, 3), (2, 2), (1, 1), True, True, (2, 2, 8, 7)),
        ((3, 2), (2, 1), (1, 0), True, True, (1, 2, 6, 5)),
        ((2, 4), (3, 2), (1, 2), False, False, (1, 2, 9, 7)),
        ((2, 2), (2, 2), (0, 0), False, True, (1, 2, 5, 5)),
    ]
    adaptive_max_cases = [((3, 2), (2, 2, 5, 7)), ((1, 1), (1, 3, 4, 4)), ((5, 3), (1, 2, 3, 2)), ((4, 4), (1, 2, 10, 10))]
    index = 0
    for kernel, stride, padding, dilation, ceil_mode, shape in max_cases:
        prefix = f"case{index}."
        writer.add(prefix + "config", [0, *kernel, *stride, *padding, *dilation, int(ceil_mode)])
        layer = nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        run_layer(writer, prefix, layer, without_ties(shape))
        index += 1
    for kernel, stride, padding, ceil_mode, count_include_pad, shape in avg_cases:
        prefix = f"case{index}."
        writer.add(prefix + "config", [1, *kernel, *stride, *padding, int(ceil_mode), int(count_include_pad)])
        layer = nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                             count_include_pad=count_include_pad)
        run_layer(writer, prefix, layer, torch.randn(shape, dtype=torch.float64))
        index += 1
    for output_size, shape in adaptive_max_cases:
        prefix = f"case{index}."
        writer.add(prefix + "config", [2, *output_size])
        run_layer(writer, prefix, nn.AdaptiveMaxPool2d(output_size), without_ties(shape))
        index += 1
    writer.add("num_cases", [index])
    writer.write(os.path.join(directory, "layer_pool_general.bin"))


def write_relu(directory):
    torch.manual_seed(101)
    writer = FixtureWriter()
    shapes = [(2, 3, 4, 5), (3, 7)]
    for index, shape in enumerate(shapes):
        prefix = f"case{index}."
        run_layer(writer, prefix, nn.ReLU(), away_from_zero(shape))
    writer.add("num_cases", [len(shapes)])
    writer.write(os.path.join(directory, "layer_relu.bin"))


def write_maxpool2d(directory):
    torch.manual_seed(102)
    writer = FixtureWriter()
    # (kernel_size, stride, input shape); config: [kernel_size, stride]
    cases = [
        (2, 2, (2, 3, 8, 8)),  # the FashionCNN configuration
        (3, 2, (2, 2, 9, 7)),  # overlapping windows on odd sizes
        (2, 2, (1, 2, 7, 5)),  # odd sizes: the last row/column is dropped (floor mode)
        (3, 3, (1, 1, 10, 11)),
    ]
    for index, (kernel, stride, shape) in enumerate(cases):
        prefix = f"case{index}."
        writer.add(prefix + "config", [kernel, stride])
        run_layer(writer, prefix, nn.MaxPool2d(kernel, stride=stride), without_ties(shape))
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "layer_maxpool2d.bin"))


def write_adaptive_avgpool2d(directory):
    torch.manual_seed(103)
    writer = FixtureWriter()
    # (output height, output width, input shape); config: [out_h, out_w]
    cases = [
        (1, 1, (2, 3, 7, 7)),  # the FashionCNN configuration
        (3, 2, (2, 2, 5, 7)),  # sizes that do not divide: overlapping bins
        (3, 4, (1, 2, 10, 10)),
        (2, 2, (1, 2, 4, 6)),  # sizes that divide
        (5, 4, (1, 2, 3, 3)),  # output larger than input
    ]
    for index, (out_h, out_w, shape) in enumerate(cases):
        prefix = f"case{index}."
        writer.add(prefix + "config", [out_h, out_w])
        run_layer(writer, prefix, nn.AdaptiveAvgPool2d((out_h, out_w)), torch.randn(shape, dtype=torch.float64))
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "layer_adaptive_avgpool2d.bin"))


def write_linear(directory):
    torch.manual_seed(104)
    writer = FixtureWriter()
    # (in_features, out_features, bias, batch); config: [in_features, out_features, bias (0/1)]
    cases = [(7, 5, True, 4), (64, 10, True, 3), (6, 3, False, 2)]
    for index, (fin, fout, bias, batch) in enumerate(cases):
        prefix = f"case{index}."
        writer.add(prefix + "config", [fin, fout, int(bias)])
        layer = nn.Linear(fin, fout, bias=bias).double()
        run_layer(writer, prefix, layer, torch.randn((batch, fin), dtype=torch.float64))
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "layer_linear.bin"))


def write_flatten(directory):
    torch.manual_seed(105)
    writer = FixtureWriter()
    shapes = [(2, 3, 4, 5), (3, 64, 1, 1)]
    for index, shape in enumerate(shapes):
        prefix = f"case{index}."
        run_layer(writer, prefix, nn.Flatten(), torch.randn(shape, dtype=torch.float64))
    writer.add("num_cases", [len(shapes)])
    writer.write(os.path.join(directory, "layer_flatten.bin"))


def write_batchnorm(directory):
    """Batch normalisation through the ops' whole contract. Beside the standard entries, a case
    with running statistics holds `running_mean_before` / `running_var_before` (set before the
    forward, non-trivial) and `running_mean` / `running_var` (after it); affine=False cases have
    no weight or bias entries.

    config: [num_features, eps, momentum_factor, affine (0/1), track_running_stats (0/1),
             training (0/1)]
    momentum_factor is the blend factor the forward used: the layer's momentum or, for
    momentum=None, 1 / num_batches_tracked after the forward's increment. The batch statistics
    normalise when training or when track_running_stats is 0."""
    torch.manual_seed(108)
    writer = FixtureWriter()
    # (module, input shape, training, batches tracked before the forward (momentum=None only))
    cases = [
        (nn.BatchNorm2d(3), (4, 3, 5, 6), True, 0),
        (nn.BatchNorm2d(3), (4, 3, 5, 6), False, 0),
        (nn.BatchNorm2d(3, affine=False, momentum=0.3), (4, 3, 5, 6), True, 0),
        (nn.BatchNorm1d(5, eps=1e-3), (8, 5), True, 0),
        (nn.BatchNorm2d(3, momentum=None), (4, 3, 5, 6), True, 3),
        (nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 4), False, 0),
        (nn.BatchNorm1d(4, affine=False), (6, 4), False, 0),
    ]
    for index, (layer, shape, training, batches_tracked) in enumerate(cases):
        layer = layer.double()
        layer.train(training)
        prefix = f"case{index}."
        channels = shape[1]
        with torch.no_grad():
            if layer.affine:
                layer.weight.copy_(0.5 + torch.rand(channels, dtype=torch.float64))
                layer.bias.copy_(torch.randn(channels, dtype=torch.float64))
            if layer.track_running_stats:
                layer.running_mean.copy_(torch.randn(channels, dtype=torch.float64))
                layer.running_var.copy_(0.5 + torch.rand(channels, dtype=torch.float64))
                layer.num_batches_tracked.fill_(batches_tracked)
                writer.add(prefix + "running_mean_before", layer.running_mean)
                writer.add(prefix + "running_var_before", layer.running_var)
        # Means away from 0 and spreads away from 1, so neither the centring nor the scaling is
        # a no-op.
        input_tensor = 1.5 + 2.0 * torch.randn(shape, dtype=torch.float64)
        run_layer(writer, prefix, layer, input_tensor)
        if layer.track_running_stats:
            writer.add(prefix + "running_mean", layer.running_mean)
            writer.add(prefix + "running_var", layer.running_var)
        if layer.momentum is None:
            momentum_factor = 1.0 / float(layer.num_batches_tracked) if training else 0.0
        else:
            momentum_factor = layer.momentum
        writer.add(prefix + "config", [channels, layer.eps, momentum_factor, int(layer.affine),
                                       int(layer.track_running_stats), int(training)])
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "layer_batchnorm.bin"))


def write_cross_entropy(directory):
    torch.manual_seed(106)
    writer = FixtureWriter()
    # (batch, classes, label_smoothing, logit scale); config: [label_smoothing]
    # The scale 20 case puts logits far apart, where a naive softmax would overflow exp().
    cases = [(6, 10, 0.0, 3.0), (6, 10, 0.1, 3.0), (4, 5, 0.1, 20.0), (1, 10, 0.0, 1.0)]
    for index, (batch, classes, smoothing, scale) in enumerate(cases):
        prefix = f"case{index}."
        logits = (scale * torch.randn((batch, classes), dtype=torch.float64)).requires_grad_(True)
        targets = torch.randint(0, classes, (batch,))
        loss = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, targets)
        loss.backward()
        writer.add(prefix + "config", [smoothing])
        writer.add(prefix + "logits", logits)
        writer.add(prefix + "targets", targets.to(torch.float64))
        writer.add(prefix + "loss", loss.reshape(1))
        writer.add(prefix + "grad_logits", logits.grad)
    writer.add("num_cases", [len(cases)])
    writer.write(os.path.join(directory, "loss_cross_entropy.bin"))


def fashion_cnn_setup():
    """The fixed float32 weights (PyTorch's default init under manual_seed(0)) and one fixed
    batch of 8 images with targets."""
    torch.manual_seed(0)
    model = FashionCNN()
    generator = torch.Generator().manual_seed(1)
    images = torch.randn((8, 1, 28, 28), generator=generator, dtype=torch.float32)
    targets = torch.randint(0, 10, (8,), generator=generator)
    return model, images, targets


def write_fashion_cnn(directory):
    model, images, targets = fashion_cnn_setup()
    writer = FixtureWriter()
    for name, tensor in model.state_dict().items():
        writer.add(name, tensor, torch.float32)
    writer.add("input", images, torch.float32)
    writer.add("targets", targets.to(torch.float64))
    model.eval()  # dropout off: the result is deterministic
    logits = model(images)
    loss = nn.CrossEntropyLoss()(logits, targets)
    loss.backward()
    writer.add("logits", logits, torch.float32)
    writer.add("loss", loss.reshape(1), torch.float32)
    for name, parameter in model.named_parameters():
        writer.add("grad." + name, parameter.grad, torch.float32)
    writer.write(os.path.join(directory, "model_fashion_cnn.bin"))


def write_training(directory):
    """10 steps from the weights and batch of model_fashion_cnn.bin (which the test reads them
    from), model in eval mode. losses[i] is the loss before step i. The scheduler steps once per
    optimiser step, so the learning rate changes every step."""
    writer = FixtureWriter()
    optimizers = {
        "adam": lambda params: torch.optim.Adam(params, lr=1e-3),
        "adamw": lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2),
        "sgd": lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9),
    }
    steps = 10
    for key, make_optimizer in optimizers.items():
        model, images, targets = fashion_cnn_setup()
        model.eval()
        optimizer = make_optimizer(model.parameters())
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
        criterion = nn.CrossEntropyLoss()
        losses, lrs = [], []
        for _ in range(steps):
            optimizer.zero_grad()
            loss = criterion(model(images), targets)
            loss.backward()
            losses.append(loss.item())
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        # The float32 losses, widened exactly to float64.
        writer.add(key + ".losses", losses)
        writer.add(key + ".lrs", lrs)
    writer.write(os.path.join(directory, "train_fashion_cnn.bin"))


def write_optimizer_steps(directory):
    """Three raw steps on a small float64 tensor with given gradients: a tight unit test of
    each optimiser's update rule (weight decay included), no model involved."""
    torch.manual_seed(107)
    writer = FixtureWriter()
    initial = torch.randn((2, 3), dtype=torch.float64)
    gradients = [torch.randn((2, 3), dtype=torch.float64) for _ in range(3)]
    # Step 2 repeats a gradient with one sign flipped, so momentum terms partly cancel.
    gradients[2][0, 0] = -gradients[1][0, 0]
    optimizers = {
        # config: [lr, beta1, beta2, eps, weight_decay]
        "adam": (lambda p: torch.optim.Adam([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
                 [1e-2, 0.9, 0.999, 1e-8, 0.1]),
        "adamw": (lambda p: torch.optim.AdamW([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
                  [1e-2, 0.9, 0.999, 1e-8, 0.1]),
        # config: [lr, momentum, weight_decay]
        "sgd": (lambda p: torch.optim.SGD([p], lr=1e-2, momentum=0.9, weight_decay=0.1),
                [1e-2, 0.9, 0.1]),
    }
    writer.add("initial", initial)
    for step, gradient in enumerate(gradients):
        writer.add(f"grad{step}", gradient)
    for key, (make_optimizer, config) in optimizers.items():
        parameter = initial.clone().requires_grad_(True)
        optimizer = make_optimizer(parameter)
        writer.add(key + ".config", config)
        for step, gradient in enumerate(gradients):
            parameter.grad = gradient.clone()
            optimizer.step()
            writer.add(f"{key}.after{step}", parameter)
    writer.write(os.path.join(directory, "optim_steps.bin"))


def write_cosine(directory):
    """get_last_lr() before any step (index 0) and after each of 25 steps: PyTorch's recursive
    formula, followed past T_max where the cosine climbs back up."""
    writer = FixtureWriter()
    base_lr = 1e-3
    # config: [base_lr, T_max, eta_min]
    for key, t_max, eta_min in [("tmax10", 10, 0.0), ("tmax7", 7, 1e-5)]:
        parameter = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([parameter], lr=base_lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=eta_min)
        lrs = [scheduler.get_last_lr()[0]]
        for _ in range(25):
            optimizer.step()
            scheduler.step()
            lrs.append(scheduler.get_last_lr()[0])
        writer.add(key + ".config", [base_lr, t_max, eta_min])
        writer.add(key + ".lrs", lrs)
    writer.write(os.path.join(directory, "sched_cosine.bin"))


def write_optimizer_groups(directory):
    """Parameter groups: three raw steps of AdamW and of SGD (Nesterov) on two float64 tensors in
    two groups, one a [2, 3] weight, one a [3] bias, with different lr and weight_decay; then
    CosineAnnealingLR over two groups.

    Entries: `weight.initial`, `bias.initial`, `weight.grad<step>`, `bias.grad<step>`;
    per optimiser (`adamw`, `sgd`): `<kind>.config` (the constructor's defaults: AdamW
    [lr, beta1, beta2, eps, weight_decay], SGD [lr, momentum, weight_decay], nesterov on,
    dampening 0), `<kind>.group<g>.lr` / `<kind>.group<g>.weight_decay` only where the group sets
    them (group 0 holds the weight, group 1 the bias; an absent entry means the default), and
    `<kind>.weight.after<step>`, `<kind>.bias.after<step>`. Cosine: `cosine.config`
    [default_lr, T_max, eta_min], `cosine.group<g>.lr`, and `cosine.lrs` [26, 2]: both groups'
    learning rates before any step, then after each of 25 steps (past T_max)."""
    torch.manual_seed(211)
    writer = FixtureWriter()
    initial = {"weight": torch.randn((2, 3), dtype=torch.float64), "bias": torch.randn(3, dtype=torch.float64)}
    gradients = {name: [torch.randn(value.shape, dtype=torch.float64) for _ in range(3)]
                 for name, value in initial.items()}
    for name in initial:
        writer.add(name + ".initial", initial[name])
        for step, gradient in enumerate(gradients[name]):
            writer.add(f"{name}.grad{step}", gradient)
    # Each optimiser has a group that sets a value and one that takes the default, for lr and
    # for weight_decay, so both halves of PyTorch's default rule are exercised.
    optimizers = {
        "adamw": (lambda groups: torch.optim.AdamW(groups, lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.02),
                  [3e-3, 0.9, 0.999, 1e-8, 0.02],
                  [{"lr": 1e-2, "weight_decay": 0.1}, {}]),
        "sgd": (lambda groups: torch.optim.SGD(groups, lr=1e-2, momentum=0.9, weight_decay=1e-3, nesterov=True),
                [1e-2, 0.9, 1e-3],
                [{"weight_decay": 5e-2}, {"lr": 5e-2, "weight_decay": 0.0}]),
    }
    for key, (make_optimizer, config, settings) in optimizers.items():
        parameters = {name: value.clone().requires_grad_(True) for name, value in initial.items()}
        groups = [dict(params=[parameters[name]], **group_settings)
                  for name, group_settings in zip(["weight", "bias"], settings)]
        optimizer = make_optimizer(groups)
        writer.add(key + ".config", config)
        for g, group_settings in enumerate(settings):
            for field, value in group_settings.items():
                writer.add(f"{key}.group{g}.{field}", [value])
        for step in range(3):
            for name, parameter in parameters.items():
                parameter.grad = gradients[name][step].clone()
            optimizer.step()
            for name, parameter in parameters.items():
                writer.add(f"{key}.{name}.after{step}", parameter)

    default_lr, t_max, eta_min = 1e-1, 7, 1e-3
    group_lrs = [None, 2e-2]  # group 0 takes the default lr
    optimizer = torch.optim.SGD([dict(params=[torch.zeros(1, requires_grad=True)]),
                                 dict(params=[torch.zeros(1, requires_grad=True)], lr=group_lrs[1])], lr=default_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=eta_min)
    lrs = [scheduler.get_last_lr()]
    for _ in range(25):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
    writer.add("cosine.config", [default_lr, t_max, eta_min])
    writer.add("cosine.group1.lr", [group_lrs[1]])
    writer.add("cosine.lrs", lrs)
    writer.write(os.path.join(directory, "optim_groups.bin"))


# The points where an activation's derivative jumps: ReLU and LeakyReLU at 0, Hardswish and
# Hardsigmoid at -3 and 3.
ACTIVATION_KINKS = (-3.0, 0.0, 3.0)


def away_from_kinks(shape, low=-5.0, high=5.0, margin=0.05):
    """Uniform values in [low, high), each at least `margin` from every point of ACTIVATION_KINKS
    (values too close are drawn again), so a finite perturbation never crosses a kink."""
    values = torch.empty(shape, dtype=torch.float64).uniform_(low, high)
    while True:
        near = torch.zeros(shape, dtype=torch.bool)
        for kink in ACTIVATION_KINKS:
            near |= (values - kink).abs() < margin
        if not near.any():
            return values
        values[near] = torch.empty(int(near.sum()), dtype=torch.float64).uniform_(low, high)


def write_activations(directory):
    """One case per activation, prefixed with minicnn's name for it (ops::activation_name):
    "<name>.input", "<name>.output", "<name>.grad_output", "<name>.grad_input", all float64
    [2, 3, 4, 5]; leaky_relu also has "leaky_relu.negative_slope"."""
    torch.manual_seed(108)
    writer = FixtureWriter()
    negative_slope = 0.1
    modules = [
        ("relu", nn.ReLU()),
        ("sigmoid", nn.Sigmoid()),
        ("tanh", nn.Tanh()),
        ("silu", nn.SiLU()),
        ("hardswish", nn.Hardswish()),
        ("hardsigmoid", nn.Hardsigmoid()),
        ("gelu", nn.GELU()),
        ("gelu_tanh", nn.GELU(approximate="tanh")),
        ("leaky_relu", nn.LeakyReLU(negative_slope)),
    ]
    for name, module in modules:
        prefix = name + "."
        if name == "leaky_relu":
            writer.add(prefix + "negative_slope", [negative_slope])
        run_layer(writer, prefix, module, away_from_kinks((2, 3, 4, 5)))
    writer.write(os.path.join(directory, "layer_activations.bin"))


def write_channel_scale(directory):
    """Squeeze-and-excitation's multiply, output = input * scale[:, :, None, None]: "input"
    [2, 3, 4, 5], "scale" [2, 3], "output", "grad_output" (random), "grad_input", "grad_scale"."""
    torch.manual_seed(109)
    writer = FixtureWriter()
    input_tensor = torch.randn((2, 3, 4, 5), dtype=torch.float64, requires_grad=True)
    scale = torch.rand((2, 3), dtype=torch.float64, requires_grad=True)  # a sigmoid's range
    output = input_tensor * scale[:, :, None, None]
    grad_output = torch.randn(output.shape, dtype=torch.float64)
    output.backward(grad_output)
    writer.add("input", input_tensor)
    writer.add("scale", scale)
    writer.add("output", output)
    writer.add("grad_output", grad_output)
    writer.add("grad_input", input_tensor.grad)
    writer.add("grad_scale", scale.grad)
    writer.write(os.path.join(directory, "layer_channel_scale.bin"))


# --- The layer registry (tests/layer_registry.hpp) ------------------------------------------
# torchvision's modules in plain torch.nn (torchvision is not a dependency), with its attribute
# names and forward order, so their state_dict names are minicnn's state() names.

class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: x * sigmoid(fc2(relu(fc1(avgpool(x)))))."""

    def __init__(self, input_channels, squeeze_channels):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


def resnet_downsample(in_channels, out_channels, stride):
    """torchvision's _make_layer shortcut: 1x1 conv with stride, no bias, then BatchNorm2d."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock; `se` (SENet's placement) after bn2, before the add."""

    def __init__(self, in_channels, planes, stride=1, se_squeeze_channels=0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if se_squeeze_channels:
            self.se = SqueezeExcitation(planes, se_squeeze_channels)
        self.downsample = resnet_downsample(in_channels, planes, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if hasattr(self, "se"):
            out = self.se(out)
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision.models.resnet.Bottleneck (stride on the 3x3 conv, expansion 4)."""

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = resnet_downsample(in_channels, planes * 4, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu(out + identity)


class Residual(nn.Module):
    """minicnn's Residual: branch(x) + x (the identity shortcut)."""

    def __init__(self, branch):
        super().__init__()
        self.branch = branch

    def forward(self, x):
        return self.branch(x) + x


def kink_free_grid(shape):
    """tests/gradcheck.hpp's kink_free_input with the registry's spacing 3 / ceil(0.375 n):
    distinct values (no max-pool ties) within about +-4, each at least half a spacing away from
    0 and +-3 (the kinks of ReLU, LeakyReLU, Hardswish and Hardsigmoid)."""
    count = math.prod(shape)
    spacing = 3.0 / math.ceil(0.375 * count)
    values = (torch.arange(count, dtype=torch.float64) - count // 2 + 0.5) * spacing
    return values[torch.randperm(count)].reshape(shape)


# prefix -> (module factory, input shape, training mode, kink-free input); the same prefixes,
# layers and first input shapes as the entries of tests/layer_registry.hpp.
REGISTRY_CASES = {
    "conv2d_fashion": (lambda: nn.Conv2d(1, 4, 3, 1, 1), (2, 1, 6, 6), True, False),
    "conv2d_stride2": (lambda: nn.Conv2d(3, 2, 3, 2, 0), (2, 3, 7, 9), True, False),
    "conv2d_5x3_per_axis": (lambda: nn.Conv2d(3, 2, (5, 3), stride=(2, 1), padding=(1, 0)), (2, 3, 9, 6), True, False),
    "conv2d_dilation": (lambda: nn.Conv2d(2, 2, 3, padding=(2, 1), dilation=(2, 1), bias=False), (2, 2, 7, 6), True,
                        False),
    "conv2d_groups": (lambda: nn.Conv2d(4, 6, 3, stride=(1, 2), padding=1, groups=2), (2, 4, 6, 7), True, False),
    "conv2d_depthwise": (lambda: nn.Conv2d(3, 3, 3, padding=1, groups=3), (2, 3, 5, 5), True, False),
    "conv2d_no_bias": (lambda: nn.Conv2d(2, 2, 5, 2, 1, bias=False), (2, 2, 9, 8), True, False),
    "relu": (lambda: nn.ReLU(), (2, 3, 4, 5), True, True),
    "sigmoid": (lambda: nn.Sigmoid(), (2, 3, 4, 5), True, False),
    "tanh": (lambda: nn.Tanh(), (2, 3, 4, 5), True, False),
    "silu": (lambda: nn.SiLU(), (2, 3, 4, 5), True, False),
    "hardswish": (lambda: nn.Hardswish(), (2, 3, 4, 5), True, True),
    "hardsigmoid": (lambda: nn.Hardsigmoid(), (2, 3, 4, 5), True, True),
    "gelu": (lambda: nn.GELU(), (2, 3, 4, 5), True, False),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), (2, 3, 4, 5), True, False),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), (2, 3, 4, 5), True, True),
    "maxpool2d_2": (lambda: nn.MaxPool2d(2), (2, 3, 8, 8), True, True),
    "maxpool2d_resnet": (lambda: nn.MaxPool2d(3, 2, 1), (2, 3, 8, 7), True, True),
    "maxpool2d_ceil": (lambda: nn.MaxPool2d(3, 2, 0, ceil_mode=True), (2, 3, 8, 7), True, True),
    "avgpool2d_padding": (lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 7, 8), True, False),
    "avgpool2d_ceil_exclude_pad": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                                   (2, 3, 8, 7), True, False),
    "adaptive_avgpool2d_1": (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 7), True, False),
    "adaptive_avgpool2d_nondividing": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 5, 7), True, False),
    "adaptive_maxpool2d": (lambda: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 5, 7), True, True),
    "linear": (lambda: nn.Linear(7, 5), (4, 7), True, False),
    "linear_no_bias": (lambda: nn.Linear(6, 3, bias=False), (2, 6), True, False),
    "flatten": (lambda: nn.Flatten(), (3, 2, 3, 4), True, False),
    "dropout_eval": (lambda: nn.Dropout(0.3), (4, 50), False, False),
    "batchnorm2d_train": (lambda: nn.BatchNorm2d(3), (4, 3, 3, 2), True, False),
    "batchnorm2d_eval": (lambda: nn.BatchNorm2d(3), (4, 3, 3, 2), False, False),
    "batchnorm2d_affine_false": (lambda: nn.BatchNorm2d(3, affine=False), (4, 3, 3, 2), True, False),
    "batchnorm1d": (lambda: nn.BatchNorm1d(4), (5, 4), True, False),
    "residual_conv": (lambda: Residual(nn.Sequential(nn.Conv2d(3, 3, 3, 1, 1), nn.Tanh(), nn.Conv2d(3, 3, 3, 1, 1))),
                      (2, 3, 5, 5), True, False),
    "squeeze_excitation": (lambda: SqueezeExcitation(4, 2), (2, 4, 5, 5), True, False),
    "basic_block": (lambda: BasicBlock(4, 4), (2, 4, 6, 6), True, False),
    "basic_block_downsample": (lambda: BasicBlock(4, 8, 2), (2, 4, 7, 7), True, False),
    "basic_block_se": (lambda: BasicBlock(4, 4, 1, 2), (2, 4, 6, 6), False, False),
    "bottleneck": (lambda: Bottleneck(4, 2, 2), (2, 4, 6, 6), True, False),
    "sequential_mixed": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                               nn.Conv2d(4, 3, 3, 2, 1), nn.SiLU(), nn.AdaptiveAvgPool2d((2, 1)),
                                               nn.Flatten(), nn.Linear(6, 3)),
                         (2, 2, 8, 7), True, False),
    "sequential_exportable": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
                                                    nn.Dropout(0.5)),
                              (2, 1, 6, 6), False, False),
}


def write_registry(directory):
    """One case per entry of tests/layer_registry.hpp that has a PyTorch counterpart, under the
    entry's name as prefix ("<prefix>."):
      input                          the input (float64)
      <state name>                   every state_dict tensor BEFORE forward, PyTorch's names
                                     ("conv1.weight", "bn1.running_mean", ...); BatchNorm's
                                     weight, bias and running statistics are randomised so that
                                     they are not the identity; num_batches_tracked (an int64
                                     scalar in PyTorch) as float64 [1], as minicnn holds it
      output, grad_output (random), grad_input
      grad.<parameter name>          each parameter's gradient
      after.<buffer name>            each buffer after the forward (running statistics updated
                                     in training)"""
    torch.manual_seed(110)
    writer = FixtureWriter()
    for prefix, (make, shape, training, kink_free) in REGISTRY_CASES.items():
        module = make().to(torch.float64)
        with torch.no_grad():
            for child in module.modules():
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    if child.affine:
                        child.weight.uniform_(0.5, 1.5)
                        child.bias.uniform_(-0.5, 0.5)
                    child.running_mean.uniform_(-0.5, 0.5)
                    child.running_var.uniform_(0.5, 1.5)
                    child.num_batches_tracked.fill_(3)
        module.train(training)
        input_tensor = kink_free_grid(shape) if kink_free else torch.randn(shape, dtype=torch.float64)

        def stored(value):
            return value.reshape(1).to(torch.float64) if value.dtype == torch.int64 else value

        writer.add(prefix + ".input", input_tensor)
        for name, value in module.state_dict().items():
            writer.add(prefix + "." + name, stored(value))
        x = input_tensor.clone().requires_grad_(True)
        y = module(x)
        grad_output = torch.randn(y.shape, dtype=torch.float64)
        y.backward(grad_output)
        writer.add(prefix + ".output", y)
        writer.add(prefix + ".grad_output", grad_output)
        writer.add(prefix + ".grad_input", x.grad)
        for name, parameter in module.named_parameters():
            writer.add(prefix + ".grad." + name, parameter.grad)
        for name, buffer in module.named_buffers():
            writer.add(prefix + ".after." + name, stored(buffer))
    writer.write(os.path.join(directory, "layer_registry.bin"))


# Topic name -> writer, in the order a full run writes them.
WRITERS = {
    "conv2d": write_conv2d,
    "conv2d_general": write_conv2d_general,
    "pool_general": write_pool_general,
    "relu": write_relu,
    "maxpool2d": write_maxpool2d,
    "adaptive_avgpool2d": write_adaptive_avgpool2d,
    "linear": write_linear,
    "flatten": write_flatten,
    "cross_entropy": write_cross_entropy,
    "fashion_cnn": write_fashion_cnn,
    "training": write_training,
    "optimizer_steps": write_optimizer_steps,
    "cosine": write_cosine,
    "activations": write_activations,
    "batchnorm": write_batchnorm,
    "channel_scale": write_channel_scale,
    "optim_groups": write_optimizer_groups,
    "registry": write_registry,
}


def main():
    parser = argparse.ArgumentParser(description="Writes minicnn's PyTorch reference fixtures.")
    parser.add_argument("output_dir", nargs="?",
                        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    parser.add_argument("--only", default="",
                        help="comma-separated topics to write (default: all): " + ", ".join(WRITERS))
    arguments = parser.parse_args()
    topics = [topic for topic in arguments.only.split(",") if topic] or list(WRITERS)
    unknown = [topic for topic in topics if topic not in WRITERS]
    if unknown:
        parser.error(f"unknown topic(s) {', '.join(unknown)}; expected some of: {', '.join(WRITERS)}")
    os.makedirs(arguments.output_dir, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for topic in topics:
        WRITERS[topic](arguments.output_dir)


if __name__ == "__main__":
    main()
