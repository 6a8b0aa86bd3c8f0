#!/usr/bin/python3
"""PyTorch <-> minicnn agreement, both ways, on the prepared real test images (1,000; 250 for the
ResNets; run by run_interop.sh).

    check_pytorch.py WORK_DIR DRIVER [MODEL]

MODEL (default fashion_cnn) names the model on both sides: tools/resnet_torch.py's MODELS in
PyTorch, interop_driver --model MODEL in minicnn.
1. minicnn -> PyTorch: WORK_DIR/minicnn.safetensors (the model as `interop_driver train` left it)
   goes through tools/safetensors_to_pytorch.py into the PyTorch model (load_state_dict, strict,
   buffers included); its logits must match minicnn's (WORK_DIR/minicnn_logits.safetensors).
2. PyTorch -> minicnn: the model, initialised by PyTorch (manual_seed(0)) and prepared as the
   driver prepares it (the FashionCNNs trained 20 or 40 Adam steps, lr 1e-3, batch 64, over the
   training batches in order, cycled; the ResNets not
   trained; a model with BatchNorm then runs three training-mode forwards of the first three
   training batches and gets its BatchNorm weights and biases shifted by uniform(-0.5, 0.5)), is
   saved with torch.save, converted by tools/pytorch_to_safetensors.py and loaded by the driver;
   minicnn's logits must match PyTorch's.
Tolerance: 1e-4 absolute on every logit. Exits 1 on a mismatch.
"""
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
from fashion_cnn_torch import FashionCNN  # noqa: E402  the tutorial's model, shared with the parity fixtures
from safetensors_to_pytorch import read_arrays  # noqa: E402

TOLERANCE = 1e-4
TRAINED_STEPS = {"fashion_cnn": 20, "fashion_cnn_se": 40, "resnet18": 0, "resnet18_se": 0,  # as interop_driver's
                 "fashion_resnet": 0, "fashion_resnet_se": 0}


def make_model(name):
    if name == "fashion_cnn":  # needs torch only, not torchvision
        return FashionCNN()
    from resnet_torch import MODELS
    return MODELS[name]()


def randomize_batch_norms(model, batches):
    """Non-trivial BatchNorm state, as interop_driver's: training-mode forwards, then the affine
    parameters shifted by uniform(-0.5, 0.5)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch)
        for norm in norms:
            norm.weight.add_(torch.rand_like(norm.weight) - 0.5)
            norm.bias.add_(torch.rand_like(norm.bias) - 0.5)


def run(*command):
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def pytorch_logits(model, images):
    """In slices of 100 images: PyTorch's allocator makes one pass over 1,000 several times slower."""
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(images[i:i + 100])).numpy() for i in range(0, len(images), 100)])


def compare(what, expected, found, labels):
    difference = float(np.max(np.abs(expected.astype(np.float64) - found.astype(np.float64))))
    accuracy = float(np.mean(np.argmax(found, axis=1) == labels))
    spread = float(np.std(expected))
    print(f"{what}: max |difference| = {difference:.3g} over {expected.size} logits "
          f"(logit std {spread:.3g}, accuracy {accuracy:.3f}, argmax agreement "
          f"{np.mean(np.argmax(expected, 1) == np.argmax(found, 1)):.4f})")
    if expected.shape != found.shape:
        raise SystemExit(f"{what}: shapes differ: {expected.shape} vs {found.shape}")
    if spread < 0.05:
        raise SystemExit(f"{what}: the logits are nearly constant (std {spread}): the test would prove little")
    return difference


def main():
    work, driver = sys.argv[1], sys.argv[2]
    name = sys.argv[3] if len(sys.argv) > 3 else "fashion_cnn"
    if name not in TRAINED_STEPS:
        raise SystemExit(f"check_pytorch: unknown model {name!r} (expected one of {sorted(TRAINED_STEPS)})")
    torch.set_num_threads(2)
    data = read_arrays(os.path.join(work, "data.safetensors"))
    images, labels = data["test_images"], data["test_labels"].astype(np.int64)

    # 1. minicnn -> PyTorch
    run(sys.executable, os.path.join(TOOLS, "safetensors_to_pytorch.py"),
        os.path.join(work, "minicnn.safetensors"), os.path.join(work, "minicnn.pt"))
    model = make_model(name)
    model.load_state_dict(torch.load(os.path.join(work, "minicnn.pt"), weights_only=True), strict=True)
    minicnn_logits = read_arrays(os.path.join(work, "minicnn_logits.safetensors"))["logits"]
    forward = compare("minicnn-trained weights, PyTorch vs minicnn", minicnn_logits, pytorch_logits(model, images), labels)

    # 2. PyTorch -> minicnn
    torch.manual_seed(0)
    model = make_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    batches = len(data["train_images"]) // 64
    for step in range(TRAINED_STEPS[name]):
        first = (step % batches) * 64
        batch = torch.from_numpy(data["train_images"][first:first + 64])
        targets = torch.from_numpy(data["train_labels"][first:first + 64].astype(np.int64))
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(batch), targets).backward()
        optimizer.step()
    randomize_batch_norms(model, [torch.from_numpy(data["train_images"][i * 64:(i + 1) * 64]) for i in range(3)])
    torch.save(model.state_dict(), os.path.join(work, "pytorch.pt"))
    run(sys.executable, os.path.join(TOOLS, "pytorch_to_safetensors.py"),
        os.path.join(work, "pytorch.pt"), os.path.join(work, "pytorch.safetensors"))
    run(driver, "--model", name, "logits", os.path.join(work, "pytorch.safetensors"), os.path.join(work, "data.safetensors"),
        os.path.join(work, "pytorch_in_minicnn_logits.safetensors"))
    found = read_arrays(os.path.join(work, "pytorch_in_minicnn_logits.safetensors"))["logits"]
    backward = compare("PyTorch-initialised weights, minicnn vs PyTorch", pytorch_logits(model, images), found, labels)

    worst = max(forward, backward)
    print(f"{name}: largest logit difference vs PyTorch: {worst:.3g} (tolerance {TOLERANCE})")
    if worst > TOLERANCE:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
