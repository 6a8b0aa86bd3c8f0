#!/usr/bin/python3
"""Before / after: several minicnn_benchmarks binaries on the same benchmarks, interleaved round
by round (A B C A B C ...) so that machine noise hits all alike; prints medians (min-max) of
images/s. A benchmark name ending in ":busy" runs beside one CPU-bound process (a
`while True: pass` loop started before and killed after), the shared-machine case.

  benchmarks/compare_binaries.py --rounds 3 old=OLD/minicnn_benchmarks new=build/benchmarks/minicnn_benchmarks \\
      -- BM_TrainStep/batch:64/threads:2 BM_TrainStep/batch:64/threads:2:busy

--random-data sets MINICNN_BENCH_DATA=random for every binary (N(0, 1) images), the only choice
when a binary predates the real-data benchmarks.
"""
import argparse
import statistics
import sys

from compare_pytorch import beside_busy_process, run_minicnn  # this folder: imports no torch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="--benchmark_min_time of each measurement")
    parser.add_argument("--random-data", action="store_true")
    parser.add_argument("binaries", nargs="+", metavar="LABEL=PATH", help="then --, then the benchmarks")
    argv = sys.argv[1:]
    if "--" not in argv:
        raise SystemExit("expected LABEL=PATH ... -- BENCHMARK[:busy] ...")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    binaries = [word.split("=", 1) for word in args.binaries]
    benchmarks = argv[split + 1:]
    if not benchmarks or any(len(b) != 2 for b in binaries):
        raise SystemExit("expected LABEL=PATH ... -- BENCHMARK[:busy] ...")
    samples = {}
    for round_index in range(args.rounds):
        for spec in benchmarks:
            busy = spec.endswith(":busy")
            name = spec[:-len(":busy")] if busy else spec
            for label, path in binaries:
                def measure(path=path):
                    return run_minicnn(path, name, args.seconds, random_data=args.random_data)
                samples.setdefault((spec, label), []).append((beside_busy_process(measure) if busy else measure)())
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    print("| benchmark | " + " | ".join(label for label, _ in binaries) + " |")
    print("|---|" + "---|" * len(binaries))
    for spec in benchmarks:
        cells = []
        for label, _ in binaries:
            values = samples[(spec, label)]
            cells.append(f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})")
        print(f"| {spec} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
