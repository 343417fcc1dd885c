#!/usr/bin/env bash
# Issue 28's screens (quality v3), run in the background from a fixed clone of the repository, one torch thread
# each and niced, so that development on the same machine keeps priority. Every run is resumable: SIGTERM (or Ctrl-C)
# to vaelm-train first saves a checkpoint, and running the same command again resumes from the newest complete one.
# A finished run is scored once on *valid* (K = 50, seed 0, paired with results/ablation/swa.valid.k50.json, the
# bundled model scored the same way); the test split is evaluated once per model that is reported.
#
#   git clone -q . ../quality && cd ../quality
#   nohup nice -n 19 bash results/ablation/quality_v3.sh cont-cyclic PTB_DIR > runs/cont-cyclic.log 2>&1 &
#   nohup nice -n 19 bash results/ablation/quality_v3.sh wd-ema PTB_DIR > runs/wd-ema.log 2>&1 &
#
# cont-cyclic: the bundled model continued for 4,000 steps: β = 1, free bits 0.2, 4 cosine cycles of the learning
#   rate (5e-4 down to 0 each), an EMA of the weights (0.9995) across the cycles, the best of 9 evaluations kept.
# wd-ema: the bundled recipe's first stage (configuration/ptb.yaml, 16,000 steps) with DropConnect 0.3 on the
#   decoder's recurrent weights and an EMA of the weights (0.999) from the start.
# li: Li et al. (2019) on our architecture: an autoencoder (β = 0) for 4,000 steps (runs/li-ae, not scored), then a
#   new model from its encoder (`--init_from`, the decoder starts afresh) with free bits 0.5 and the recipe's linear
#   annealing for 16,000 steps (runs/li-fb0.5).
# wide-960: the bundled recipe's first stage with 960 hidden units (14.2 M parameters: 28 MB in fp16) and dropout 0.5.
# refit-bundled, refit-cc-fb0.16: the encoder refit (`--freeze_decoder`): the encoder alone trained on the ELBO of
#   the fixed decoder of the bundled model (free bits 0; the screen ran with --max_steps 2000, was stopped on its
#   plateau at step 973 and checkpoint-973 was scored) and of cont-cyclic
#   (free bits 0.16, which keeps KL at 5 nats, 750 steps), at a constant 3e-4; the decoder and p(x) stay as they were.
set -uo pipefail
RECIPE=${1:?usage: quality_v3.sh cont-cyclic|wd-ema|li|wide-960|refit-bundled|refit-cc-fb0.16 [PTB_DIR]}
PTB=${2:-../shared/data/ptb}
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
mkdir -p runs
COMMON=(--data_dir "$PTB" --num_threads 1 --disable_tqdm true --report_to none --resume_from_checkpoint true
        --logging_steps 100 --per_device_eval_batch_size 512 --save_total_limit 2
        --load_best_model_at_end true --metric_for_best_model eval_loss --greater_is_better false)
run() {  # run NAME FLAGS...: train (resumable; wall seconds of each segment in runs/NAME/wall_seconds.txt), then
         # score on valid unless SCORE=0
  local name=$1 started=$SECONDS
  shift
  [ -f "runs/$name/model.safetensors" ] || vaelm-train "$@" "${COMMON[@]}" --output_dir "runs/$name"
  mkdir -p "runs/$name" && echo $((SECONDS - started)) >> "runs/$name/wall_seconds.txt"
  if [ -f "runs/$name/model.safetensors" ] && [ "${SCORE:-1}" = 1 ] && [ ! -f "runs/$name.valid.k50.json" ]; then
    vaelm-evaluate --model "runs/$name" --data_dir "$PTB" --split valid --iw_samples 50 --seed 0 --num_threads 1 \
      --no_progress true --output "runs/$name.valid.k50.json" --progress_file "runs/$name.valid.k50.progress"
  fi
}
REFIT=(--freeze_decoder true --kl_schedule constant --kl_weight 1 --learning_rate 3e-4 --lr_scheduler_type constant
       --batch_size 64 --eval_strategy steps --eval_steps 250 --eval_on_start true --save_steps 250 --seed 45)
case "$RECIPE" in
  cont-cyclic)
    run cont-cyclic --model_name_or_path vaelm/pretrained/ptb --kl_schedule constant --kl_weight 1.0 --free_bits 0.2 \
      --learning_rate 5e-4 --lr_scheduler_type cosine_with_restarts --lr_scheduler_kwargs '{"num_cycles": 4}' \
      --max_steps 4000 --ema_decay 0.9995 --batch_size 64 --eval_strategy steps --eval_steps 500 --eval_on_start true \
      --save_steps 500 --seed 44 ;;
  wd-ema)
    run wd-ema configuration/ptb.yaml --weight_drop 0.3 --ema_decay 0.999 --eval_steps 1000 --save_steps 1000 \
      --final_eval_iw_samples 0 ;;
  li)
    SCORE=0 run li-ae configuration/ptb.yaml --kl_schedule constant --kl_weight 0 --free_bits 0 --max_steps 4000 \
      --eval_steps 1000 --save_steps 1000 --final_eval_iw_samples 0 --load_best_model_at_end false
    [ -f runs/li-ae/model.safetensors ] && run li-fb0.5 configuration/ptb.yaml --init_from runs/li-ae --free_bits 0.5 \
      --eval_steps 1000 --save_steps 1000 --final_eval_iw_samples 0 ;;
  wide-960)
    run wide-960 configuration/ptb.yaml --num_units 960 --embedding_dropout 0.5 --output_dropout 0.5 \
      --eval_steps 1000 --save_steps 1000 --final_eval_iw_samples 0 --per_device_eval_batch_size 256 ;;
  refit-bundled)
    run refit-bundled --model_name_or_path vaelm/pretrained/ptb "${REFIT[@]}" --free_bits 0 --max_steps 973 ;;
  refit-cc-fb0.16)
    run refit-cc-fb0.16 --model_name_or_path runs/cont-cyclic "${REFIT[@]}" --free_bits 0.16 --max_steps 750 ;;
  *) echo "unknown recipe $RECIPE (cont-cyclic, wd-ema, li, wide-960, refit-bundled or refit-cc-fb0.16)" >&2; exit 2 ;;
esac
