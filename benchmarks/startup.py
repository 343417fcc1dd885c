"""Start-up times of the commands: the median wall-clock seconds of several runs, next to `python -c "import torch"`
(the floor for anything that runs a model).

Usage: python benchmarks/startup.py [--runs 5] [--json] [--only 'sample' 'torch' ...]
Each command runs as `python -m vaelm.cli.X ...` with this checkout first on PYTHONPATH, on the bundled model, with
`--num_threads 1` where a model runs (so that the thread choice does not sample the machine's load). Prints one line
per command (median, min and max), or one JSON object with `--json`. Timing belongs here, never in tests.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    'python -c "import torch"': ["-c", "import torch"],
    "vaelm-sample --help": ["-m", "vaelm.cli.sample", "--help"],
    "vaelm-sample --num 1": ["-m", "vaelm.cli.sample", "--num", "1", "--seed", "0", "--num_threads", "1"],
    "vaelm-homotopy --help": ["-m", "vaelm.cli.homotopy", "--help"],
    "vaelm-homotopy (bundled model, 3 steps)": [
        "-m",
        "vaelm.cli.homotopy",
        "--start",
        "the company said it will buy shares",
        "--end",
        "investors are worried about the market",
        "--steps",
        "3",
        "--num_threads",
        "1",
    ],
    "vaelm-evaluate --help": ["-m", "vaelm.cli.evaluate", "--help"],
    "vaelm-map --help": ["-m", "vaelm.cli.map", "--help"],
    "vaelm-demo --help": ["-m", "vaelm.cli.demo", "--help"],
    "vaelm-push --help": ["-m", "vaelm.cli.push", "--help"],
    "vaelm-train --help": ["-m", "vaelm.cli.train", "--help"],
}


def seconds(arguments: list[str]) -> float:
    """Wall-clock seconds of one `python ARGUMENTS` run (which must succeed)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=environment, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per command (the median is reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument(
        "--only", nargs="+", default=None, help="measure only the cases whose name contains one of these"
    )
    args = parser.parse_args()
    results = {}
    for name, arguments in CASES.items():
        if args.only and not any(part in name for part in args.only):
            continue
        seconds(arguments)  # once unmeasured: the file cache is warm for every measured run
        times = [seconds(arguments) for _ in range(args.runs)]
        results[name] = {
            "median_s": round(statistics.median(times), 2),
            "min_s": round(min(times), 2),
            "max_s": round(max(times), 2),
        }
        if not args.json:
            print(
                f"{name:<42} median {results[name]['median_s']:6.2f} s  "
                f"(min {results[name]['min_s']:.2f}, max {results[name]['max_s']:.2f}, {args.runs} runs)",
                flush=True,
            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps({"runs": args.runs, "load_average_1min": load, "results": results}, indent=2))
    else:
        print(f"(load average over the last minute: {load:.2f} on {os.cpu_count()} cores)" if load is not None else "")


if __name__ == "__main__":
    main()
