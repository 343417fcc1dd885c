#!/usr/bin/env bash
# The prepared GPU check (issue 16): ≤ 8 minutes on one GPU; prints ONE JSON object on stdout (logs on stderr):
# training tokens/s of vaelm and of the reference, evaluation token-samples/s, the projected full K = 500 PTB test
# time, and the valid ELBO of a PTB training sized by --train_seconds (default 120 s). What each figure is:
# benchmarks/device_check.py.
#
# Prepare here (once), from the repository root; both folders are git-ignored and travel with `carry`:
#   benchmarks/device_check.sh --prepare      # copies PTB into .ptb/, downloads the missing wheels into .whl/
# Run on the device machine:  bash benchmarks/device_check.sh > $OUT/device_check.json       (carry: .ptb .whl)
# Test of the CPU side (tests/test_speed_paths.py):  benchmarks/device_check.sh --device cpu --tiny --data_dir DIR
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p .ptb
    cp "${PTB_DIR:-../shared/data/ptb}"/ptb.{train,valid,test}.txt .ptb/
    # The GPU image (Python 3.12) has torch but not datasets, and an older transformers: carry these. Its own
    # huggingface_hub (1.33) serves transformers 5.24 (>= 1.31); hub 2.x would need httpx2, which it lacks. regex:
    # transformers checks its version when imported.
    rm -rf .whl && "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
        transformers==5.24.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 regex==2026.11.19
    du -sh .ptb .whl >&2
    exit 0
fi

source benchmarks/gpu_env.sh  # the carried wheels, where the image lacks them
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false
exec "$PYTHON" benchmarks/device_check.py "$@"
