#!/usr/bin/python3
"""minicnn against PyTorch and ONNX Runtime on the same FashionCNN, same threads and batch, same
real Fashion-MNIST images (the first 2,560 training images, normalised as the tutorial), in one run.

Runs, interleaved round by round (A B A B ... so that machine noise hits both sides alike):
  PyTorch  tutorial loop   shuffled DataLoader over an in-memory TensorDataset: each step
                            gathers its batch by index and allocates afresh (the tutorial's code)
  PyTorch  steady state    a stream of batches that are views of one tensor (PyTorch at its best)
  PyTorch  inference       batch 1000 as shipped, and with glibc told not to return memory
                            (GLIBC_TUNABLES, PyTorch's best); batch-1 latency on 1 thread
  onnxruntime              onnxruntime-node on minicnn's own FashionCNN exported to ONNX
                            (benchmarks/ort_inference.js; intraOpNumThreads = threads, graph
                            optimisation "all"): batch 1000 and batch 1, 1 and 2 threads
  minicnn                   the matching BM_TrainStep / BM_Inference of minicnn_benchmarks
  N(0, 1) images            the batch-64 training step of both on random normal images instead,
                            to show how much each one's speed depends on the data
  one busy process beside   the batch-64 training step and batch-1000 inference again while a
                            CPU-bound `while True: pass` process (started and stopped here)
                            competes for the cores: the share of the quiet throughput each keeps
  minicnn per pass          every BM_Conv pass (conv1-4, forward / backward-data / backward-weights,
                            1 and 2 threads; the training passes, im2col + GEMM) in one process,
                            once per round
  minicnn per algorithm     conv2-4's inference forward pass by im2col + GEMM, Winograd F(2x2, 3x3)
                            and F(4x4, 3x3) (BM_ConvAlgorithm, batch 64 and 1, 1 and 2 threads), and
                            the whole batch-1000 inference with MINICNN_CONV_ALGO=im2col beside the
                            default (Winograd for conv2-4), once per round
and prints medians (min-max), the ratios minicnn / other, the per-pass table (GFLOP/s and the
percentage of the FMA peak that the same benchmark process measured at startup) and the
per-algorithm table.

Each measurement runs in its own process (fresh allocator state, clean thread settings).
Needs Debian's python3-torch (run with /usr/bin/python3), the data set (--data) and, for the
onnxruntime column, node with onnxruntime-node (--no-ort leaves it out):

  /usr/bin/python3 benchmarks/compare_pytorch.py --bench build/benchmarks/minicnn_benchmarks

With --model resnet18 it compares the training step of models::resnet18 (BM_TrainStepResNet18)
with torchvision's resnet18 adapted the same way (tools/resnet_torch.py), batch 64, Adam, both
on the same real batches: the first 640 Fashion-MNIST training images, cycled, normalised as the
tutorial (--data, default /usr/share/datasets/fashion-mnist; needs python3-torchvision):

  /usr/bin/python3 benchmarks/compare_pytorch.py --model resnet18 --rounds 3
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TUNED_GLIBC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776"
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")  # fashion_cnn_torch.py
BENCHMARKS = os.path.dirname(os.path.abspath(__file__))  # ort_inference.js
INTEROP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop")  # prepare_data.py
REAL_IMAGES = 2560  # as minicnn_benchmarks (bench_model.cpp): ten batches of 256


def real_batches(data_dir):
    """The first REAL_IMAGES training images [N, 1, 28, 28], normalised, and their labels."""
    import numpy as np
    import torch
    sys.path.insert(0, INTEROP)
    from prepare_data import find, images, read_idx
    pixels = images(find(data_dir, "train-images-idx3-ubyte"), REAL_IMAGES)
    labels = read_idx(find(data_dir, "train-labels-idx1-ubyte"), REAL_IMAGES).astype(np.int64)
    return torch.from_numpy(pixels), torch.from_numpy(labels)


def resnet_worker(name, threads, batch, seconds, data_dir):
    """PyTorch's training step of tools/resnet_torch.py's model `name` on real batches; prints images/s."""
    import torch
    sys.path.insert(0, TOOLS)
    from resnet_torch import MODELS
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = MODELS[name]()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    images, labels = real_batches(data_dir)
    starts = list(range(0, images.shape[0] - batch + 1, batch))

    def step(index):
        first = starts[index % len(starts)]
        optimizer.zero_grad()
        criterion(model(images[first:first + batch]), labels[first:first + batch]).backward()
        optimizer.step()

    for index in range(3):
        step(index)
    done, index, start = 0, 3, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(index)
        index += 1
        done += batch
    print(done / (time.perf_counter() - start))


def worker(kind, threads, batch, seconds, data_dir, random_data):
    """Runs one PyTorch measurement in this process; prints images/s. The images are the real ones
    minicnn's benchmarks use, or N(0, 1) ones with random_data (PyTorch runs faster on real ones)."""
    # Imported here, not at the top: only the worker processes load torch.
    import torch
    sys.path.insert(0, TOOLS)
    from fashion_cnn_torch import FashionCNN
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = FashionCNN()
    images, labels = real_batches(data_dir)
    if random_data:
        images = torch.randn(images.shape)
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


def run_torch(kind, threads, batch, seconds, tuned=False, extra=()):
    """One PyTorch measurement in a fresh process (extra: more worker flags)."""
    env = dict(os.environ)
    if tuned:
        env["GLIBC_TUNABLES"] = TUNED_GLIBC
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--threads", str(threads), "--batch",
                          str(batch), "--seconds", str(seconds), *extra], env=env, check=True, capture_output=True,
                         text=True)
    return float(out.stdout.strip().splitlines()[-1])


def beside_busy_process(measure):
    """`measure`, run while one CPU-bound process (as a compile or a browser tab would be) competes
    for the cores: started before, killed after."""
    def shared():
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)  # running before the measurement starts
            return measure()
        finally:
            busy.kill()
            busy.wait()
    return shared


def run_ort(model, threads, batch, seconds, data_dir):
    """ONNX Runtime (onnxruntime-node) on minicnn's exported FashionCNN, same real images; images/s."""
    out = subprocess.run(["node", os.path.join(BENCHMARKS, "ort_inference.js"), model, str(threads), str(batch),
                          str(seconds), data_dir], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_benchmarks(bench, pattern, seconds, env=None):
    """One minicnn_benchmarks process on the benchmarks matching `pattern`; its JSON report."""
    # The default rows run minicnn's default algorithm whatever the caller's shell says.
    base = {key: value for key, value in os.environ.items() if key != "MINICNN_CONV_ALGO"}
    out = subprocess.run([bench, "--benchmark_filter=" + pattern, "--benchmark_format=json",
                          "--benchmark_min_time=" + str(seconds)], check=True, capture_output=True, text=True,
                         env=dict(base, **(env or {})))
    report = json.loads(out.stdout) if out.stdout.strip() else {}
    if not report.get("benchmarks"):
        raise SystemExit("no minicnn benchmark matched " + pattern + ": " + out.stderr.strip())
    return report


def run_minicnn(bench, name, seconds, random_data=False, algorithm=None):
    # The benchmarks use real time, so their names end in /real_time. algorithm: MINICNN_CONV_ALGO.
    env = {"MINICNN_BENCH_DATA": "random"} if random_data else {}
    if algorithm:
        env["MINICNN_CONV_ALGO"] = algorithm
    return run_benchmarks(bench, "^" + name + "(/real_time)?$", seconds, env)["benchmarks"][0]["items_per_second"]


def run_passes(bench, seconds):
    """One process: every conv pass. Returns {(conv, pass, threads): (GFLOP/s, % of peak)} and
    {threads: peak GFLOP/s}: the FMA peak that process measured at startup (its context block),
    which its pct_peak counters are relative to."""
    report = run_benchmarks(bench, "^BM_Conv/", seconds)
    context = report["context"]
    peaks = {1: float(context["fma_peak_gflops_1_thread"]), 2: float(context["fma_peak_gflops_2_threads"])}
    passes = {}
    for result in report["benchmarks"]:
        fields = dict(part.split(":") for part in result["name"].split("/")[1:] if ":" in part)
        passes[(int(fields["conv"]), int(fields["pass"]), int(fields["threads"]))] = (result["GFLOP/s"],
                                                                                     result["pct_peak"])
    return passes, peaks


ALGORITHMS = ("im2col", "winograd2x2", "winograd4x4")  # BM_ConvAlgorithm's algorithm argument 0, 1, 2


def run_algorithms(bench, seconds):
    """One process: conv2-4's inference forward by each algorithm. Returns
    {(conv, algorithm, batch, threads): (effective GFLOP/s, milliseconds per call)}."""
    results = {}
    for result in run_benchmarks(bench, "^BM_ConvAlgorithm/", seconds)["benchmarks"]:
        fields = dict(part.split(":") for part in result["name"].split("/")[1:] if ":" in part)
        key = (int(fields["conv"]), ALGORITHMS[int(fields["algorithm"])], int(fields["batch"]), int(fields["threads"]))
        results[key] = (result["GFLOP/s"], result["real_time"] / 1e6)  # real_time is in ns
    return results


def print_algorithms(rounds, peaks):
    """The per-algorithm table: medians over the rounds; the fastest algorithm of each row in bold."""
    print(f"\nconv2-4 forward pass in inference by algorithm: milliseconds per call and effective GFLOP/s (the direct "
          f"convolution's FLOPs over the time: Winograd's can pass the FMA peak, " +
          ", ".join(f"{peaks[t]:.1f} on {t} thread{'s' if t > 1 else ''}" for t in sorted(peaks)) +
          f"), median of {len(rounds)}\n")
    print("| layer | batch | threads | " + " | ".join(ALGORITHMS) + " |")
    print("|---|---|---|" + "---|" * len(ALGORITHMS))
    keys = sorted({(k[0], k[2], k[3]) for k in rounds[0]}, key=lambda k: (-k[1], k[2], k[0]))
    for conv, batch, threads in keys:
        cells, times = [], {}
        for algorithm in ALGORITHMS:
            values = [r[(conv, algorithm, batch, threads)] for r in rounds if (conv, algorithm, batch, threads) in r]
            times[algorithm] = statistics.median(v[1] for v in values)
            cells.append((algorithm, f"{times[algorithm]:.3f} ms ({statistics.median(v[0] for v in values):.0f})"))
        fastest = min(times, key=times.get)
        row = " | ".join(f"**{cell}**" if algorithm == fastest else cell for algorithm, cell in cells)
        print(f"| conv{conv} | {batch} | {threads} | {row} |")


def print_passes(rounds):
    """The per-pass table: medians over the rounds of GFLOP/s and of the percentage of peak."""
    pass_names = ("forward", "backward-data", "backward-weights")
    peaks = {t: statistics.median(r[1][t] for r in rounds) for t in rounds[0][1]}
    print(f"\nconv passes at batch 64, GFLOP/s (% of the FMA peak measured by the same process), median of "
          f"{len(rounds)}; FMA peak " + ", ".join(f"{peaks[t]:.1f} GFLOP/s on {t} thread{'s' if t > 1 else ''}"
                                                 for t in sorted(peaks)) + "\n")
    print("| layer | threads | " + " | ".join(pass_names) + " |")
    print("|---|---|" + "---|" * len(pass_names))
    for conv, threads in sorted({(k[0], k[2]) for k in rounds[0][0]}, key=lambda ct: (ct[1], ct[0])):
        cells = []
        for index in range(len(pass_names)):
            values = [r[0][(conv, index, threads)] for r in rounds if (conv, index, threads) in r[0]]
            cells.append(f"{statistics.median(v[0] for v in values):.0f} ({statistics.median(v[1] for v in values):.0f}%)"
                         if values else "")
        print(f"| conv{conv} | {threads} | " + " | ".join(cells) + " |")


def compare_resnet(args):
    """minicnn's BM_TrainStepResNet18 against PyTorch's step on the same real batches, interleaved."""
    if args.model != "resnet18":
        raise SystemExit(f"--model {args.model}: minicnn_benchmarks has a training-step benchmark for resnet18 only")
    t, s = args.threads, args.seconds
    minicnn, torch_steps = [], []
    for round_index in range(args.rounds):
        minicnn.append(run_minicnn(args.bench, f"BM_TrainStepResNet18/batch:64/threads:{t}", s))
        torch_steps.append(run_torch(args.model, t, 64, s, extra=("--data", args.data)))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    ours, theirs = statistics.median(minicnn), statistics.median(torch_steps)
    print(f"\n{args.model} training step, batch 64, Adam, {t} threads, real Fashion-MNIST batches: images/s, "
          f"median of {args.rounds} interleaved rounds (min-max)\n")
    print("| implementation | images/s | min-max | minicnn ratio |")
    print("|---|---|---|---|")
    print(f"| minicnn | {ours:.0f} | {min(minicnn):.0f}-{max(minicnn):.0f} | |")
    print(f"| torch steady state | {theirs:.0f} | {min(torch_steps):.0f}-{max(torch_steps):.0f} | {ours / theirs:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="build/benchmarks/minicnn_benchmarks", help="minicnn_benchmarks binary")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--pass-seconds", type=float, default=0.2,
                        help="time per conv pass for the per-pass table (0: leave the table out)")
    parser.add_argument("--model", choices=["fashion_cnn", "resnet18", "resnet18_se"], default="fashion_cnn",
                        help="fashion_cnn: the full comparison below; a ResNet: its training step at batch 64")
    parser.add_argument("--data", default=os.environ.get("MINICNN_DATA", "/usr/share/datasets/fashion-mnist"),
                        help="Fashion-MNIST directory (the ResNet comparison's real batches)")
    parser.add_argument("--no-ort", action="store_true",
                        help="leave out ONNX Runtime (onnxruntime-node, run with `node`) from the inference rows")
    parser.add_argument("--no-shared", action="store_true",
                        help="leave out the measurements beside a competing busy process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--random-data", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker in ("resnet18", "resnet18_se"):
        return resnet_worker(args.worker, args.threads, args.batch, args.seconds, args.data)
    if args.worker:
        return worker(args.worker, args.threads, args.batch, args.seconds, args.data, args.random_data)
    if args.model != "fashion_cnn":
        return compare_resnet(args)

    t, s = args.threads, args.seconds
    data = ("--data", args.data)
    onnx_dir = tempfile.mkdtemp(prefix="compare_pytorch_")
    onnx_model = os.path.join(onnx_dir, "fashion_cnn.onnx")
    subprocess.run([args.bench, "--export-onnx=" + onnx_model], check=True)

    def ort(threads, batch):
        """The onnxruntime column of an inference row (none with --no-ort)."""
        if args.no_ort:
            return []
        return [("onnxruntime", lambda: run_ort(onnx_model, threads, batch, s, args.data))]

    random_data = data + ("--random-data",)
    train64, infer1000 = f"train step, batch 64, {t} threads", f"inference, batch 1000, {t} threads"
    # (row label, [(column, measure function)]); every row on the same real batches unless it says so
    rows = [
        (train64, [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_TrainStep/batch:64/threads:{t}", s)),
            ("torch tutorial loop", lambda: run_torch("train_tutorial", t, 64, s, extra=data)),
            ("torch steady state", lambda: run_torch("train_steady", t, 64, s, extra=data))]),
        (f"train step, batch 256, {t} threads", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_TrainStep/batch:256/threads:{t}", s)),
            ("torch steady state", lambda: run_torch("train_steady", t, 256, s, extra=data))]),
        ("train step, batch 64, 1 thread", [
            ("minicnn", lambda: run_minicnn(args.bench, "BM_TrainStep/batch:64/threads:1", s)),
            ("torch steady state", lambda: run_torch("train_steady", 1, 64, s, extra=data))]),
        (infer1000, [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_Inference/batch:1000/threads:{t}", s)),
            ("torch as shipped", lambda: run_torch("infer", t, 1000, s, extra=data)),
            ("torch tuned allocator", lambda: run_torch("infer", t, 1000, s, tuned=True, extra=data))] + ort(t, 1000)),
        ("inference, batch 1000, 1 thread", [
            ("minicnn", lambda: run_minicnn(args.bench, "BM_Inference/batch:1000/threads:1", s))] + ort(1, 1000)),
        (infer1000 + ", MINICNN_CONV_ALGO=im2col", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_Inference/batch:1000/threads:{t}", s,
                                            algorithm="im2col"))]),
        ("inference, batch 1, 1 thread", [
            ("minicnn", lambda: run_minicnn(args.bench, "BM_Inference/batch:1/threads:1", s)),
            ("torch", lambda: run_torch("infer", 1, 1, s, extra=data))] + ort(1, 1)),
        (f"inference, batch 1, {t} threads", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_Inference/batch:1/threads:{t}", s))] + ort(t, 1)),
        (train64 + ", N(0, 1) images", [
            ("minicnn", lambda: run_minicnn(args.bench, f"BM_TrainStep/batch:64/threads:{t}", s, random_data=True)),
            ("torch steady state", lambda: run_torch("train_steady", t, 64, s, extra=random_data))]),
    ]
    shared_rows = {}  # shared row label -> its quiet row label
    if not args.no_shared:
        # The quiet rows' own measurements, run again beside a busy process: minicnn and PyTorch at its best.
        quiet_columns = dict(rows)
        for quiet, chosen in ((train64, "torch steady state"), (infer1000, "torch tuned allocator")):
            columns = [(column, measure) for column, measure in quiet_columns[quiet] if column in ("minicnn", chosen)]
            label = quiet + ", one busy process beside"
            rows.append((label, [(column, beside_busy_process(measure)) for column, measure in columns]))
            shared_rows[label] = quiet
    samples = {(label, column): [] for label, columns in rows for column, _ in columns}
    pass_rounds, algorithm_rounds = [], []
    for round_index in range(args.rounds):
        for label, columns in rows:
            for column, measure in columns:
                samples[(label, column)].append(measure())
        if args.pass_seconds > 0:
            pass_rounds.append(run_passes(args.bench, args.pass_seconds))
            algorithm_rounds.append(run_algorithms(args.bench, args.pass_seconds))
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
    for label in ("inference, batch 1, 1 thread", f"inference, batch 1, {t} threads"):
        print(f"batch-1 latency, {label.split(', ')[-1]} (ms): " + ", ".join(
            f"{column} {1e3 / median((label, column)):.3f}" for column in
            ("minicnn", "torch", "onnxruntime") if (label, column) in samples))
    if shared_rows:
        print("\nsharing the machine: throughput beside one busy process (a `while True: pass` loop that this "
              "script starts and stops) as a share of the quiet throughput\n")
        print("| measurement | implementation | quiet images/s | shared images/s | share of quiet |")
        print("|---|---|---|---|---|")
        for label, quiet in shared_rows.items():
            for column in ("minicnn", "torch steady state", "torch tuned allocator"):
                if (label, column) in samples:
                    shared, alone = median((label, column)), median((quiet, column))
                    print(f"| {quiet} | {column} | {alone:.0f} | {shared:.0f} | {100 * shared / alone:.0f}% |")
    if pass_rounds:
        print_passes(pass_rounds)
        print_algorithms(algorithm_rounds, {t: statistics.median(r[1][t] for r in pass_rounds) for t in pass_rounds[0][1]})
    shutil.rmtree(onnx_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
