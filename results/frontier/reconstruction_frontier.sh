#!/usr/bin/env bash
# The reconstruction / likelihood frontier on PTB (issue 28, item 4): short runs that differ only in how much
# information the latent code is made to carry (free bits, and whether z feeds every decoder step), each scored on
# the *valid* split with the likelihood protocol (IW-NLL, KL, MI, AU) and with greedy reconstruction from the
# posterior mean (corpus BLEU-4 and exact match, `<unk>` allowed; vaelm/evaluation/reconstruction.py).
#
# Every recipe is trained the same short way as results/ablation/ablation_ptb.sh SET=short (350/256, linear KL schedule with
# pivot 1,000, dropout 0.3, cosine lr 1e-3, 2,000 steps, seed 42): a screen, to be compared with its own fb 0.2 row,
# not with the bundled model's absolute figures. Checkpoints every 500 steps; run the script again after an
# interruption and every recipe resumes (finished trainings and evaluations are skipped).
#
# Writes results/frontier/<recipe>.valid.json, <run>/wall_seconds.txt, then results/frontier.md and
# results/frontier.png (results/frontier/frontier_plot.py).
# Each run is also scored at its half-way checkpoint (results/frontier/<recipe>.step<STEPS/2>.valid.json); HALF_ONLY=1
# stops every training there (a later run without it resumes to the end).
# Usage:  [JOBS=2] [THREADS=1] [STEPS=2000] [K=100] [EVAL_SENTENCES=1000] [RECON_SENTENCES=1000] [HALF_ONLY=1] \
#           [RECIPES_ONLY="fb0.2 fb1"] bash results/frontier/reconstruction_frontier.sh [PTB_DIR] [RUNS_DIR]
# EVAL_SENTENCES: the first N valid sentences scored (IW-NLL, KL, MI, AU; 0 = all 3,370); RECON_SENTENCES: the first
# N of those reconstructed. On a shared 2-core machine, keep JOBS <= 2 (runs are niced).
set -euo pipefail
PTB_DIR=${1:-/work/shared/data/ptb}
RUNS=${2:-runs/frontier}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
STEPS=${STEPS:-2000}
PIVOT=${PIVOT:-$((STEPS / 2))}
HALF=$((STEPS / 2))
K=${K:-100}
EVAL_SENTENCES=${EVAL_SENTENCES:-1000}
RECON_SENTENCES=${RECON_SENTENCES:-1000}
export OMP_NUM_THREADS=$THREADS TOKENIZERS_PARALLELISM=false
BF16=${BF16:-$(grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && echo true || echo false)}
mkdir -p results/frontier "$RUNS"

# name | flags (everything else is COMMON)
RECIPES=(
  "fb0.2|--free_bits 0.2 --latent_to_every_step true"
  "fb1|--free_bits 1.0 --latent_to_every_step true"
  "fb0.5|--free_bits 0.5 --latent_to_every_step true"
  "fb2|--free_bits 2.0 --latent_to_every_step true"
  "fb1-init-only|--free_bits 1.0 --latent_to_every_step false"
  "fb3|--free_bits 3.0 --latent_to_every_step true"
)
COMMON=(--kl_schedule linear --annealing_pivot "$PIVOT" --latent_dim 32
        --embedding_size 350 --num_units 256 --keep_prob 0.75 --embedding_dropout 0.3 --output_dropout 0.3
        --learning_rate 1e-3 --lr_scheduler_type cosine --max_steps "$STEPS" --bf16 "$BF16"
        --eval_strategy steps --eval_steps "$STEPS" --per_device_eval_batch_size 32
        --save_steps "$HALF" --save_total_limit 2
        --resume_from_checkpoint true --logging_steps 100 --disable_tqdm true --report_to none --seed 42
        --num_threads "$THREADS")
EVAL_LIMIT=()
[ "$EVAL_SENTENCES" -gt 0 ] && EVAL_LIMIT=(--max_sentences "$EVAL_SENTENCES")

evaluate() {  # evaluate MODEL_DIR OUTPUT_JSON: the likelihood protocol and reconstruction on valid (resumable)
  [ -f "$2" ] && return 0
  nice -n 10 python -m vaelm.cli.evaluate --model "$1" --data_dir "$PTB_DIR" --split valid --iw_samples "$K" \
    --seed 0 --num_threads "$THREADS" --no_progress true "${EVAL_LIMIT[@]}" \
    --reconstruction_sentences "$RECON_SENTENCES" --output "$2" \
    --progress_file "$RUNS/$(basename "$2").progress" > /dev/null
}

run_recipe() {  # run_recipe NAME FLAGS: train (resumable), then score on valid, half-way and at the end
  local name=$1 flags=$2 out=$RUNS/$1
  local half_done=false
  [ -n "${HALF_ONLY:-}" ] && [ -f "$out/checkpoint-$HALF/trainer_state.json" ] && half_done=true
  if [ ! -f "$out/model.safetensors" ] && [ "$half_done" = false ]; then
    local started=$SECONDS status=0
    # shellcheck disable=SC2086  # flags are word lists
    nice -n 10 vaelm-train --data_dir "$PTB_DIR" --output_dir "$out" $flags "${COMMON[@]}" &
    local trainer=$!
    if [ -n "${HALF_ONLY:-}" ]; then  # stop (SIGTERM: a checkpoint; a rerun resumes) once the half-way one is complete
      while kill -0 "$trainer" 2>/dev/null && [ ! -f "$out/checkpoint-$HALF/trainer_state.json" ]; do sleep 10; done
      kill -TERM "$trainer" 2>/dev/null || true
    fi
    wait "$trainer" || status=$?
    mkdir -p "$out"
    echo $((SECONDS - started)) >> "$out/wall_seconds.txt"
    [ "$status" -eq 0 ] || [ -n "${HALF_ONLY:-}" ] || return "$status"
  fi
  # The half-way screen: every run's checkpoint at STEPS / 2 (the same schedule so far), kept by --save_total_limit 2.
  [ -d "$out/checkpoint-$HALF" ] && evaluate "$out/checkpoint-$HALF" "results/frontier/$name.step$HALF.valid.json"
  [ -f "$out/model.safetensors" ] && evaluate "$out" "results/frontier/$name.valid.json"
  return 0
}

for recipe in "${RECIPES[@]}"; do
  name=${recipe%%|*}
  flags=${recipe#*|}
  if [ -n "${RECIPES_ONLY:-}" ] && [[ " $RECIPES_ONLY " != *" $name "* ]]; then
    continue
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done  # a failed recipe does not stop the others
  run_recipe "$name" "$flags" > >(sed -u "s/^/[$name] /") 2>&1 &
done
wait

python results/frontier/frontier_plot.py "$RUNS" results/frontier results/frontier.md results/frontier.png
cat results/frontier.md
