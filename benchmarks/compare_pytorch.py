#!/usr/bin/python3
"""minicnn against PyTorch on the same FashionCNN, same threads and batch, in one run.

Runs, interleaved round by round (A B A B ... so that machine noise hits both sides alike):
  PyTorch  tutorial loop   shuffled DataLoader over an in-memory TensorDataset: each step
                            gathers its batch by index and allocates afresh (the tutorial's code)
  PyTorch  steady state    a stream of batches that are views of one tensor (PyTorch at its best)
  PyTorch  inference       batch 1000 as shipped, and with glibc told not to return memory
                            (GLIBC_TUNABLES, PyTorch's best); batch-1 latency on 1 thread
  minicnn                   the matching BM_TrainStep / BM_Inference of minicnn_benchmarks
and prints medians (min-max) and the ratios minicnn / PyTorch.

Each measurement runs in its own process (fresh allocator state, clean thread settings).
Needs Debian's python3-torch: run with /usr/bin/python3.

  /usr/bin/python3 benchmarks/compare_pytorch.py --bench build/benchmarks/minicnn_benchmarks
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TUNED_GLIBC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776"


def fashion_cnn(torch):
    """The tutorial's FashionCNN (same layers and names as minicnn::models::FashionCNN)."""
    nn = torch.nn

    class FashionCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.feature_extractor = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(
                nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(128, 10))

        def forward(self, x):
            return self.classifier(self.feature_extractor(x))

    return FashionCNN()


def worker(kind, threads, batch, seconds):
    """Runs one PyTorch measurement in this process; prints images/s."""
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = fashion_cnn(torch)
    images = torch.randn(12800 if batch < 1000 else 10000, 1, 28, 28)
    labels = torch.randint(0, 10, (images.shape[0],))
    if kind in ("train_tutorial", "train_steady"):
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        criterion = torch.nn.CrossEntropyLoss()

        def batches():
            while True:
                if kind == "train_tutorial":
                    dataset = torch.utils.data.TensorDataset(images, labels)
                    yield from torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True)
                else:
                    for i in range(0, images.shape[0] - batch + 1, batch):
                        yield images[i:i + batch], labels[i:i + batch]

        def step(x, y):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def batches():
            while True:
                for i in range(0, images.shape[0] - batch + 1, batch):
                    yield images[i:i + batch], None

        def step(x, _):
            with torch.no_grad():
                model(x)
    stream = batches()
    warmup = 3 if batch >= 1000 else 10
    for _ in range(warmup):
        step(*next(stream))
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(*next(stream))
        done += batch
    print(done / (time.perf_counter() - start))


def run_torch(kind, threads, batch, seconds, tuned=False):
    env = dict(os.environ)
    if tuned:
        env["GLIBC_TUNABLES"] = TUNED_GLIBC
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--threads", str(threads), "--batch",
                          str(batch), "--seconds", str(seconds)], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_minicnn(bench, name, seconds):
    # The benchmarks use real time, so their names end in /real_time.
    out = subprocess.run([bench, "--benchmark_filter=^" + name + "(/real_time)?$", "--benchmark_format=json",
                          "--benchmark_min_time=" + str(seconds)], check=True, capture_output=True, text=True)
    results = json.loads(out.stdout)["benchmarks"] if out.stdout.strip() else []
    if not results:
        raise SystemExit("no minicnn benchmark matched " + name + ": " + out.stderr.strip())
    return results[0]["items_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="build/benchmarks/minicnn_benchmarks", help="minicnn_benchmarks binary")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.threads, args.batch, args.seconds)

    t, s = args.threads, args.seconds
    # (row label, [(column, measure function)])
    rows = [
        (f"train step, batch 64, {t} threads", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_TrainStep/batch:64/threads:{t}", s)),
            ("torch tutorial loop", lambda: run_torch("train_tutorial", t, 64, s)),
            ("torch steady state", lambda: run_torch("train_steady", t, 64, s))]),
        (f"train step, batch 256, {t} threads", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_TrainStep/batch:256/threads:{t}", s)),
            ("torch steady state", lambda: run_torch("train_steady", t, 256, s))]),
        ("train step, batch 64, 1 thread", [
            ("minicnn", lambda: run_minicnn(args.bench, "BM_TrainStep/batch:64/threads:1", s)),
            ("torch steady state", lambda: run_torch("train_steady", 1, 64, s))]),
        (f"inference, batch 1000, {t} threads", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_Inference/batch:1000/threads:{t}", s)),
            ("torch as shipped", lambda: run_torch("infer", t, 1000, s)),
            ("torch tuned allocator", lambda: run_torch("infer", t, 1000, s, tuned=True))]),
        ("inference, batch 1, 1 thread", [
            ("minicnn", lambda: run_minicnn(args.bench, "BM_Inference/batch:1/threads:1", s)),
            ("torch", lambda: run_torch("infer", 1, 1, s))]),
    ]
    samples = {(label, column): [] for label, columns in rows for column, _ in columns}
    for round_index in range(args.rounds):
        for label, columns in rows:
            for column, measure in columns:
                samples[(label, column)].append(measure())
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)

    def median(key):
        return statistics.median(samples[key])

    print(f"\nimages/s, median of {args.rounds} interleaved rounds (min-max); ratio = minicnn / PyTorch\n")
    print("| measurement | implementation | images/s | min-max | minicnn ratio |")
    print("|---|---|---|---|---|")
    for label, columns in rows:
        ours = median((label, "minicnn"))
        for column, _ in columns:
            values = samples[(label, column)]
            ratio = "" if column == "minicnn" else f"{ours / median((label, column)):.2f}x"
            print(f"| {label} | {column} | {median((label, column)):.0f} | {min(values):.0f}-{max(values):.0f} | {ratio} |")
    two = median((f"train step, batch 64, {t} threads", "minicnn"))
    one = median(("train step, batch 64, 1 thread", "minicnn"))
    print(f"\nminicnn thread scaling, train step batch 64: {t} threads / 1 thread = {two / one:.2f}x")
    print("batch-1 latency (ms): minicnn %.3f, torch %.3f" % (1e3 / median(("inference, batch 1, 1 thread", "minicnn")),
                                                             1e3 / median(("inference, batch 1, 1 thread", "torch"))))


if __name__ == "__main__":
    main()
