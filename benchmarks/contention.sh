#!/usr/bin/env bash
# Training steps/s beside a bounded busy-loop process (one core kept busy), before and after the thread fixes of
# issue 16, alternating the settings R times (default 2):
#   before     : 2 threads spinning at OpenMP barriers (libgomp's default; torch's old default of 2 threads)
#   1 thread   : 1 thread
#   2 passive  : 2 threads whose idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE, what importing vaelm sets)
#   default    : vaelm's default (the usable cores less those other processes keep busy, waiting passively)
# Run: bash benchmarks/contention.sh [SECONDS_PER_SETTING] [R]        prints one JSON line per measurement
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
SECONDS_EACH=${1:-8}; ROUNDS=${2:-2}
unset OMP_NUM_THREADS OMP_WAIT_POLICY GOMP_SPINCOUNT
for _ in $(seq "$ROUNDS"); do
    "$PYTHON" benchmarks/step_contention.py 2 "$SECONDS_EACH" --busy
    "$PYTHON" benchmarks/step_contention.py 1 "$SECONDS_EACH" --busy
    OMP_WAIT_POLICY=PASSIVE "$PYTHON" benchmarks/step_contention.py 2 "$SECONDS_EACH" --busy
    OMP_WAIT_POLICY=PASSIVE "$PYTHON" benchmarks/step_contention.py default "$SECONDS_EACH" --busy
done
