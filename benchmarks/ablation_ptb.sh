#!/usr/bin/env bash
# Short PTB ablation: KL schedule x free bits x latent size, each trained for the same 2,000 steps with the
# bundled model's architecture (350/256, z at every step, dropout 0.3, cosine lr 1e-3, bf16), then scored on
# the *valid* split (IW-NLL with K=100). Writes results/ablation/<recipe>.valid.json and results/ablation.md.
# Usage: bash benchmarks/ablation_ptb.sh [PTB_DIR] [RUNS_DIR]    (about 10 min per recipe on one core)
set -euo pipefail
PTB_DIR=${1:-../shared/data/ptb}
RUNS=${2:-runs/ablation}
STEPS=${STEPS:-2000}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p results/ablation

# name | schedule flags
RECIPES=(
  "linear-fb0.2-z32|--kl_schedule linear --annealing_pivot 1000 --free_bits 0.2 --latent_dim 32"
  "linear-fb0-z32|--kl_schedule linear --annealing_pivot 1000 --free_bits 0 --latent_dim 32"
  "cyclical-fb0.2-z32|--kl_schedule cyclical --kl_cycles 4 --free_bits 0.2 --latent_dim 32"
  "linear-fb0.5-z32|--kl_schedule linear --annealing_pivot 1000 --free_bits 0.5 --latent_dim 32"
  "sigmoid_pivot-fb0-z32|--kl_schedule sigmoid_pivot --annealing_pivot 1000 --free_bits 0 --latent_dim 32"
  "linear-fb0.2-z13|--kl_schedule linear --annealing_pivot 1000 --free_bits 0.2 --latent_dim 13"
)
for recipe in "${RECIPES[@]}"; do
  name=${recipe%%|*}
  flags=${recipe#*|}
  if [ ! -f "$RUNS/$name/model.safetensors" ]; then
    # shellcheck disable=SC2086  # $flags is a list of flags
    vaelm-train --data_dir "$PTB_DIR" --output_dir "$RUNS/$name" $flags \
      --embedding_size 350 --num_units 256 --latent_to_every_step true \
      --keep_prob 0.75 --embedding_dropout 0.3 --output_dropout 0.3 \
      --learning_rate 1e-3 --lr_scheduler_type cosine --max_steps "$STEPS" --bf16 true \
      --eval_strategy steps --eval_steps 500 --save_strategy no --logging_steps 100 \
      --disable_tqdm true --report_to none --seed 42
  fi
  vaelm-evaluate --model "$RUNS/$name" --data_dir "$PTB_DIR" --split valid --iw_samples 100 --bf16 true --seed 0 \
    --no_progress true --output "results/ablation/$name.valid.json"
done
# The committed results/ablation.md also lists the two full-length runs, as extra RUN_DIR=EVAL_JSON pairs:
#   python benchmarks/ablation_table.py runs/ablation results/ablation \
#     runs/ptb-small=results/ptb-small.valid.json runs/ptb-512=results/ptb-best.valid.json
python benchmarks/ablation_table.py "$RUNS" results/ablation > results/ablation.md
cat results/ablation.md
