#!/usr/bin/python3
"""Where the conv passes lose on 2 threads: in minicnn's threads, or in the machine?

Per round, interleaved so that machine noise hits all alike, the BM_Conv passes of conv2-4
(forward, backward-data, backward-weights; batch 64) run
  alone      in one process on 1 thread;
  pair       in two such processes at once, one per core: two independent 1-thread
             computations that share nothing but the machine (caches beyond L2, memory,
             power, the host's other tenants);
  2 threads  in one process on 2 threads, as training runs them.
Prints medians (min-max) of GFLOP/s and two ratios per pass:
  machine  = pair sum / (2 x alone): what running both cores costs each of them, with no
             threads, no shared data and no synchronisation (1.00: nothing);
  threads  = 2 threads / pair sum: what minicnn's parallel loop costs beyond that (end of the
             loop, the fixed-order reduction, the serial packing; 1.00: nothing).
The share of the 2-thread FMA peak a pass reaches is about its 1-thread share x machine x
threads (docs/performance.md, "Two threads against two processes").

  benchmarks/thread_scaling.py --bench build/benchmarks/minicnn_benchmarks --rounds 3

The two processes of a pair run the same benchmarks in the same order for the same time, so
they overlap benchmark by benchmark, not to the microsecond. Needs two cores or more.
"""
import argparse
import statistics
import subprocess
import sys

from compare_pytorch import run_benchmarks  # this folder: imports no torch

PASSES = ("forward", "backward-data", "backward-weights")


def rates(report):
    """{(conv, pass): GFLOP/s} of one minicnn_benchmarks JSON report."""
    found = {}
    for result in report["benchmarks"]:
        fields = dict(part.split(":") for part in result["name"].split("/")[1:] if ":" in part)
        found[(int(fields["conv"]), int(fields["pass"]))] = result["GFLOP/s"]
    return found


def pattern(threads):
    return f"^BM_Conv/conv:[234]/pass:[012]/threads:{threads}/"


def pair(bench, seconds):
    """Two 1-thread processes started together; their reports once both have ended."""
    import json
    args = [bench, "--benchmark_filter=" + pattern(1), "--benchmark_format=json", "--benchmark_min_time=" + str(seconds)]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    reports = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit("minicnn_benchmarks failed: " + err.strip())
        reports.append(json.loads(out))
    return reports


def spread(values):
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default="build/benchmarks/minicnn_benchmarks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="--benchmark_min_time of each benchmark")
    args = parser.parse_args()
    samples = {}  # (conv, pass) -> {"alone": [...], "pair": [...], "pair sum": [...], "2 threads": [...]}
    peaks = {"1": [], "2": []}

    def add(kind, found):
        for key, value in found.items():
            samples.setdefault(key, {}).setdefault(kind, []).append(value)

    for round_index in range(args.rounds):
        alone = run_benchmarks(args.bench, pattern(1), args.seconds)
        add("alone", rates(alone))
        first, second = pair(args.bench, args.seconds)
        a, b = rates(first), rates(second)
        add("pair", {key: (a[key] + b[key]) / 2 for key in a})
        add("pair sum", {key: a[key] + b[key] for key in a})
        both = run_benchmarks(args.bench, pattern(2), args.seconds)
        add("2 threads", rates(both))
        for report in (alone, both):
            peaks["1"].append(float(report["context"]["fma_peak_gflops_1_thread"]))
            peaks["2"].append(float(report["context"]["fma_peak_gflops_2_threads"]))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)

    model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in model.splitlines() if line.startswith("Model name")), "?")
    print(f"\nconv passes at batch 64, GFLOP/s, median (min-max) of {args.rounds} interleaved rounds; "
          f"CPU {name}; FMA peak (quiet processes' startup) {statistics.median(peaks['1']):.1f} on 1 thread, "
          f"{statistics.median(peaks['2']):.1f} on 2\n")
    print("| layer | pass | alone (1 thread) | each of a pair | pair sum | 2 threads | machine | threads |")
    print("|---|---|---|---|---|---|---|---|")
    for conv, index in sorted(samples):
        s = samples[(conv, index)]
        machine = [p / (2 * a) for p, a in zip(s["pair sum"], s["alone"])]
        threads = [t / p for t, p in zip(s["2 threads"], s["pair sum"])]
        print(f"| conv{conv} | {PASSES[index]} | {spread(s['alone'])} | {spread(s['pair'])} | {spread(s['pair sum'])} | "
              f"{spread(s['2 threads'])} | {statistics.median(machine):.2f} | {statistics.median(threads):.2f} |")


if __name__ == "__main__":
    main()
