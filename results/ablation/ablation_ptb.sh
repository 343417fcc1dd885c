#!/usr/bin/env bash
# PTB ablations, every recipe scored on the *valid* split only (model selection never sees test).
#
# SET=short (default): KL schedule x free bits x latent size, each trained for the same 2,000 steps with the
#   bundled model's previous small architecture (350/256, z at every step, dropout 0.3, cosine lr 1e-3, bf16), scored
#   with K=100. About 10 min per recipe on one core.
# SET=quality (issue 17): the bundled model's recipe (configuration/reproduce_ptb.sh: 350/512, tied, 16,000 steps) as
#   the reference, our LSTM language model baseline (--latent_dim 0) with the same budget, and the regularisation
#   (weight drop, locked and word-type dropout, weight averaging) and collapse remedies (BN-VAE, auto-encoder
#   pre-training + decoder reset) of issue 17, scored with K=500. 16,000 steps took 70-90 min per recipe on one
#   thread of the AVX-512 BF16 machine of the earlier rounds, and take ≈ 7-9 h per recipe on one thread of a 2-core
#   AVX2 EPYC beside a second run (0.5-0.6 steps/s); there a K=500 valid pass of a VAE takes ≈ 1.6 h on two
#   threads (docs/evaluation.md, "What K = 500 costs"). Checkpoints every 1,000 steps: run the script again after an
#   interruption (Ctrl-C or SIGTERM to vaelm-train first saves one) and every recipe resumes from its newest complete
#   checkpoint (finished ones are skipped).
#
# Writes results/ablation/<recipe>.valid.json, <run>/wall_seconds.txt (one line per training segment) and the table
# (results/ablation.md for SET=short, results/ablation_quality.md for SET=quality).
# Usage:  [SET=quality] [JOBS=2] [THREADS=1] [STEPS=N] bash results/ablation/ablation_ptb.sh [PTB_DIR] [RUNS_DIR]
# THREADS: torch threads of each training and evaluation (default 1; 2 when one recipe is left on a 2-core machine).
# In the background (JOBS runs side by side, THREADS threads each):
#   SET=quality JOBS=2 nohup bash results/ablation/ablation_ptb.sh > runs/ablation_quality.log 2>&1 &
# Only some recipes: RECIPES_ONLY="lm-baseline awd" SET=quality bash results/ablation/ablation_ptb.sh
set -euo pipefail
PTB_DIR=${1:-../shared/data/ptb}
SET=${SET:-short}
JOBS=${JOBS:-1}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS TOKENIZERS_PARALLELISM=false
# bf16 autocast needs a CPU whose oneDNN LSTM has bf16 kernels (avx512_bf16 / AMX); on others (avx2 only) the
# LSTM fails with "could not create a primitive descriptor", so training falls back to fp32 there. BF16=true|false
# overrides. (Evaluation keeps the protocol's bf16 vocabulary projection, which any CPU runs.)
BF16=${BF16:-$(grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && echo true || echo false)}
mkdir -p results/ablation

if [ "$SET" = short ]; then
  RUNS=${2:-runs/ablation}
  STEPS=${STEPS:-2000}
  K=${K:-100}
  # name | flags
  RECIPES=(
    "linear-fb0.2-z32|--kl_schedule linear --annealing_pivot 1000 --free_bits 0.2 --latent_dim 32"
    "linear-fb0-z32|--kl_schedule linear --annealing_pivot 1000 --free_bits 0 --latent_dim 32"
    "cyclical-fb0.2-z32|--kl_schedule cyclical --kl_cycles 4 --free_bits 0.2 --latent_dim 32"
    "linear-fb0.5-z32|--kl_schedule linear --annealing_pivot 1000 --free_bits 0.5 --latent_dim 32"
    "sigmoid_pivot-fb0-z32|--kl_schedule sigmoid_pivot --annealing_pivot 1000 --free_bits 0 --latent_dim 32"
    "linear-fb0.2-z13|--kl_schedule linear --annealing_pivot 1000 --free_bits 0.2 --latent_dim 13"
  )
  COMMON=(--embedding_size 350 --num_units 256 --latent_to_every_step true
          --keep_prob 0.75 --embedding_dropout 0.3 --output_dropout 0.3
          --learning_rate 1e-3 --lr_scheduler_type cosine --max_steps "$STEPS" --bf16 "$BF16"
          --eval_strategy steps --eval_steps 500 --save_strategy no --logging_steps 100
          --disable_tqdm true --report_to none --seed 42)
  TABLE=results/ablation.md
elif [ "$SET" = quality ]; then
  RUNS=${2:-runs/ablation_quality}
  STEPS=${STEPS:-16000}
  K=${K:-500}
  PIVOT=$((STEPS / 8))
  VAE="--latent_dim 32 --latent_to_every_step true --free_bits 0.2 --kl_schedule linear --annealing_pivot $PIVOT"
  AWD="--weight_drop 0.5 --locked_dropout true --word_type_dropout 0.1 --ema_decay 0.999 --weight_decay 1e-6"
  # name | flags (the bundled model's recipe is "reference"; every other row changes it as its name says)
  RECIPES=(
    "reference|$VAE --keep_prob 0.75"
    "lm-baseline|--latent_dim 0 --keep_prob 0.75"
    "lm-no-word-dropout|--latent_dim 0 --keep_prob 1.0"
    "lm-awd|--latent_dim 0 --keep_prob 1.0 $AWD"
    "awd|$VAE --keep_prob 0.75 $AWD"
    "weight-drop|$VAE --keep_prob 0.75 --weight_drop 0.5"
    "ema|$VAE --keep_prob 0.75 --ema_decay 0.999"
    "awd-bn0.6|$VAE --keep_prob 0.75 $AWD --posterior_bn_gamma 0.6 --free_bits 0"
    "awd-ae-init|$VAE --keep_prob 0.75 $AWD --init_from $RUNS/awd-ae-init.autoencoder"
  )
  COMMON=(--embedding_size 350 --num_units 512 --tie_word_embeddings true
          --embedding_dropout 0.4 --output_dropout 0.4
          --learning_rate 1e-3 --lr_scheduler_type cosine --max_steps "$STEPS" --bf16 "$BF16"
          --eval_strategy steps --eval_steps 1000 --save_steps 1000 --save_total_limit 2
          --load_best_model_at_end true --metric_for_best_model eval_loss --greater_is_better false
          --logging_steps 100 --disable_tqdm true --report_to none --seed 42 --resume_from_checkpoint true)
  TABLE=results/ablation_quality.md
else
  echo "SET must be short or quality, got $SET" >&2
  exit 2
fi

train() {  # train OUTPUT_DIR FLAGS...: resumable; wall seconds of each segment appended to OUTPUT_DIR/wall_seconds.txt
  local out=$1
  shift
  [ -f "$out/model.safetensors" ] && return 0
  local started=$SECONDS status=0
  vaelm-train --data_dir "$PTB_DIR" --output_dir "$out" "$@" || status=$?
  # Also after an interruption (Ctrl-C / SIGTERM end a segment with a checkpoint): every segment's time counts.
  mkdir -p "$out"
  echo $((SECONDS - started)) >> "$out/wall_seconds.txt"
  return $status
}

run_recipe() {  # run_recipe NAME FLAGS: train (after its auto-encoder phase, for --init_from), then score on valid
  local name=$1 flags=$2
  if [[ "$flags" == *"--init_from $RUNS/$name.autoencoder"* ]]; then
    # Li et al. (2019): the same model trained as a plain auto-encoder (β = 0) for a quarter of the budget; its
    # encoder is then copied and the decoder starts afresh. Its time counts in the recipe's (wall_seconds.txt).
    local autoencoder_flags=${flags/--init_from $RUNS\/$name.autoencoder/}
    # shellcheck disable=SC2086  # flags are word lists
    train "$RUNS/$name.autoencoder" $autoencoder_flags "${COMMON[@]}" --max_steps $((STEPS / 4)) \
      --kl_schedule constant --kl_weight 0 --free_bits 0 --load_best_model_at_end false
  fi
  # shellcheck disable=SC2086
  train "$RUNS/$name" $flags "${COMMON[@]}"
  if [ ! -f "results/ablation/$name.valid.json" ]; then
    vaelm-evaluate --model "$RUNS/$name" --data_dir "$PTB_DIR" --split valid --iw_samples "$K" --bf16 true --seed 0 \
      --num_threads "$THREADS" --no_progress true --output "results/ablation/$name.valid.json" \
      --progress_file "$RUNS/$name.valid.progress"  # a K = 500 pass takes hours: a rerun resumes it
  fi
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

# The committed results/ablation.md also lists the two full-length runs, as extra RUN_DIR=EVAL_JSON pairs:
#   python results/ablation/ablation_table.py runs/ablation results/ablation \
#     runs/ptb-small=results/ptb-small.valid.json runs/ptb-512=results/ptb-best.valid.json
python results/ablation/ablation_table.py "$RUNS" results/ablation > "$TABLE"
cat "$TABLE"
