#!/usr/bin/env bash
# The NLL-reconstruction frontier at full length: configuration/ptb-latent.yaml trained at each rate (--target_kl),
# each model scored on valid (K = 50, the first 1,000 sentences reconstructed) and, once, on test (K = 500).
# Resumable: rerun the same command; a finished step is skipped, a training run continues from its last checkpoint.
# usage: PTB=path/to/ptb bash results/latent_frontier/run.sh [TARGET ...]   (default targets: 8 16 32 48)
# then:  python results/latent_frontier/table.py                            (frontier.md and frontier.png here)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PTB=${PTB:-data/ptb}
RUNS=${RUNS:-runs/latent_frontier}
THREADS=${THREADS:-1}
TEST=${TEST:-1}  # 0: valid only (the test split is scored once per reported model, after selection on valid)
for target in "${@:-8 16 32 48}"; do
  for target in $target; do
    out=$RUNS/kl$target
    if [ ! -f "$out/model.safetensors" ]; then
      resume=()
      compgen -G "$out/checkpoint-*/trainer_state.json" >/dev/null && resume=(--resume_from_checkpoint true)
      vaelm-train configuration/ptb-latent.yaml --data_dir "$PTB" --output_dir "$out" --target_kl "$target" \
        --num_threads "$THREADS" --disable_tqdm true "${resume[@]}"
    fi
    for split in valid test; do
      [ "$split" = test ] && [ "$TEST" = 0 ] && continue
      k=50; [ "$split" = test ] && k=500
      json=$here/kl$target.$split.json
      [ -f "$json" ] || vaelm-evaluate --model "$out" --data_dir "$PTB" --split "$split" --iw_samples "$k" \
        --seed 0 --num_threads "$THREADS" --no_progress true --output "$json"
    done
  done
done
