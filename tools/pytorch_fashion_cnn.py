#!/usr/bin/python3
"""The tutorial's FashionCNN trained by PyTorch, for side-by-side comparisons with
`fashion_mnist train` (docs/results.md): same model, same recipes, same data files.

    /usr/bin/python3 tools/pytorch_fashion_cnn.py                       # the tutorial's recipe, 10 epochs
    /usr/bin/python3 tools/pytorch_fashion_cnn.py --no-augment
    /usr/bin/python3 tools/pytorch_fashion_cnn.py --recipe best         # AdamW + one-cycle + label smoothing
    /usr/bin/python3 tools/pytorch_fashion_cnn.py --limit-train 3200 --epochs 1 --threads 1   # a timing sample

Prints one line per epoch (train loss, test loss and accuracy, seconds). Needs Debian's
python3-torch, python3-torchvision and numpy. The tutorial's loop: batches of a shuffled
DataLoader, transforms applied per image (RandomRotation(10), RandomHorizontalFlip, ToTensor,
Normalize(0.5, 0.5)), Adam, CosineAnnealingLR stepped per epoch, test batch 1000.
"""

import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms as T

from fashion_cnn_torch import FashionCNN  # tools/fashion_cnn_torch.py: this script's folder is on sys.path


def read_idx(directory, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
            with opener(path, "rb") as f:
                data = f.read()
            dims = data[3]
            shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape).copy()
    raise SystemExit(f"error: {stem} not found in {directory}")


class Images(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("MINICNN_DATA", "/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--recipe", choices=["tutorial", "best"], default="tutorial")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--limit-test", type=int)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    best = args.recipe == "best"
    epochs = args.epochs or (20 if best else 10)
    augment = not (args.no_augment or best)
    train_images = read_idx(args.data, "train-images-idx3-ubyte")[:args.limit_train]
    train_labels = read_idx(args.data, "train-labels-idx1-ubyte")[:args.limit_train]
    test_images = read_idx(args.data, "t10k-images-idx3-ubyte")[:args.limit_test]
    test_labels = read_idx(args.data, "t10k-labels-idx1-ubyte")[:args.limit_test]
    normalize = [T.ToTensor(), T.Normalize((0.5,), (0.5,))]
    train_transform = T.Compose(([T.ToPILImage(), T.RandomRotation(10), T.RandomHorizontalFlip()] if augment else []) +
                                normalize)
    train_loader = torch.utils.data.DataLoader(Images(train_images, train_labels, train_transform), batch_size=64,
                                               shuffle=True)
    test_loader = torch.utils.data.DataLoader(Images(test_images, test_labels, T.Compose(normalize)), batch_size=1000)

    model = FashionCNN()
    if best:
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * len(train_loader),
                                                        pct_start=0.15, cycle_momentum=False)
        criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        criterion = nn.CrossEntropyLoss()
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, recipe {args.recipe}, "
          f"augment {augment}, {len(train_labels)} training images", flush=True)

    for epoch in range(1, epochs + 1):
        start = time.time()
        model.train()
        loss_sum, seen = 0.0, 0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            if best:
                scheduler.step()
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
        if not best:
            scheduler.step()
        train_seconds = time.time() - start
        model.eval()
        correct, test_loss = 0, 0.0
        with torch.no_grad():
            for images, labels in test_loader:
                logits = model(images)
                test_loss += criterion(logits, labels).item() * len(labels)
                correct += (logits.argmax(1) == labels).sum().item()
        print(f"epoch {epoch:2d}/{epochs}  train loss {loss_sum / seen:.4f}  |  test loss {test_loss / len(test_labels):.4f}"
              f"  acc {100 * correct / len(test_labels):.2f}%  |  {train_seconds:.1f} s "
              f"({seen / train_seconds:.0f} images/s, +{time.time() - start - train_seconds:.1f} s eval)", flush=True)


if __name__ == "__main__":
    main()
