#!/usr/bin/env bash
# The frontier's points on a lent GPU in one call (scripts/gpu_screens.sh): configuration/ptb-latent.yaml at each
# rate, scored on valid (K = 50) and once on test (K = 500), stored in float16. Unpack $OUT/results.tgz's JSON files
# here as kl*.valid.json / kl*.test.json, then `python results/latent_frontier/table.py`.
# usage: OUT=... bash results/latent_frontier/gpu.sh      (after benchmarks/device_check.sh --prepare; carry .ptb .whl)
export RECIPE=configuration/ptb-latent.yaml
export POINTS=${POINTS:-kl32:--target_kl,32 kl16:--target_kl,16 kl48:--target_kl,48 kl8:--target_kl,8}
exec bash "$(dirname "$0")/../../scripts/gpu_screens.sh"
