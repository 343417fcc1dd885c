#!/usr/bin/env bash
# Reproduce the reference PTB model that ships as vaelm/pretrained/ptb and its README figures, end to end (issue 28):
# stage 1, configuration/ptb.yaml (960 hidden units, dropout 0.5, 16,000 steps); stage 2, its continuation with
# weight averaging (configuration/ptb-continue.yaml); stage 3, four cosine cycles with weight averaging
# (configuration/ptb-cyclic.yaml), run three times, each from the last; stage 4, the encoder refitted to the fixed
# decoder (configuration/ptb-refit.yaml); stage 5, the cyclic stage once more, from the refit; stage 6, the refit
# again, from the uniform average of the weights of stages 5 and 4 (--average_with); stages 7 and 8, the same two
# steps once more from stage 6.
# Each stage is scored on valid at K = 50 (seed 0; the selection screen of results/ablation.md); the last is stored in
# float16 as it ships (28 MB; it computes in float32) and scored once on test with the full protocol (K = 500).
# Usage: bash configuration/reproduce_ptb.sh [PTB_DIR] [OUT_DIR]
#   (the later stages go to OUT_DIR-continued, -cyclic, -cyclic2, -cyclic3, -refit, -cyclic4, -average-refit,
#   -cyclic5 and -average-refit2)
#   PTB_DIR defaults to ../shared/data/ptb; without it, use `--dataset ptb` (downloads the standard files).
# Measured with one thread, fp32, beside one other run (results/ablation.md): 5.3 h + 0.85 h + 0.93 h of training on
# a 2-core AVX2 EPYC, then 1.74 h + 0.91 h + 10 min on a 2-core AVX-512 Xeon (the second cyclic run's time includes
# pauses); stages 5 to 8 ran on one NVIDIA H200 (100 s + 50 s + 74 s + 30 s, results/ablation/quality_v3_gpu.sh; for
# stage 6 a one-off script averaged with the same arithmetic before --average_with existed), as did their valid
# screens and the test pass (18 s; an earlier model's took 37 min on two threads of the Xeon).
# Threads: OMP_NUM_THREADS (default 1 here).
set -euo pipefail
PTB_DIR=${1:-../shared/data/ptb}
OUT=${2:-runs/ptb-wide}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
COMMON=(--data_dir "$PTB_DIR" --disable_tqdm true --final_eval_iw_samples 0 --per_device_eval_batch_size 256)

vaelm-train configuration/ptb.yaml "${COMMON[@]}" --output_dir "$OUT" --eval_steps 1000 --save_steps 1000
vaelm-train configuration/ptb-continue.yaml "${COMMON[@]}" --model_name_or_path "$OUT" --output_dir "$OUT-continued"
vaelm-train configuration/ptb-cyclic.yaml "${COMMON[@]}" --model_name_or_path "$OUT-continued" --output_dir "$OUT-cyclic"
vaelm-train configuration/ptb-cyclic.yaml "${COMMON[@]}" --model_name_or_path "$OUT-cyclic" \
  --output_dir "$OUT-cyclic2" --seed 45
vaelm-train configuration/ptb-cyclic.yaml "${COMMON[@]}" --model_name_or_path "$OUT-cyclic2" \
  --output_dir "$OUT-cyclic3" --seed 46
vaelm-train configuration/ptb-refit.yaml "${COMMON[@]}" --model_name_or_path "$OUT-cyclic3" --output_dir "$OUT-refit"
vaelm-train configuration/ptb-cyclic.yaml "${COMMON[@]}" --model_name_or_path "$OUT-refit" \
  --output_dir "$OUT-cyclic4" --seed 47
vaelm-train configuration/ptb-refit.yaml "${COMMON[@]}" --model_name_or_path "$OUT-cyclic4" \
  --average_with "$OUT-refit" --output_dir "$OUT-average-refit"
vaelm-train configuration/ptb-cyclic.yaml "${COMMON[@]}" --model_name_or_path "$OUT-average-refit" \
  --output_dir "$OUT-cyclic5" --seed 48
vaelm-train configuration/ptb-refit.yaml "${COMMON[@]}" --model_name_or_path "$OUT-cyclic5" \
  --average_with "$OUT-average-refit" --output_dir "$OUT-average-refit2"

# The K = 50 and K = 500 passes keep their finished sentences in --progress_file: after a stop, rerun the same
# vaelm-evaluate command to resume it. Selection used the valid split only; the test split is evaluated once.
for stage in "":wide-960 -continued:wide-continued -cyclic:wide-cyclic -cyclic2:wide-cyclic2 -cyclic3:wide-cyclic3 \
  -refit:wide-cyclic3-refit -average-refit:wide-avg34-refit -average-refit2:wide-avg45-refit; do  # suffix:JSON name
  vaelm-evaluate --model "$OUT${stage%%:*}" --data_dir "$PTB_DIR" --split valid --iw_samples 50 --seed 0 \
    --num_threads "$OMP_NUM_THREADS" --output "results/ablation/${stage#*:}.valid.k50.json" \
    --progress_file "$OUT${stage%%:*}.valid.k50.progress"
done

# Stored in float16 as it ships (what `vaelm-push --storage_dtype float16` uploads), then the test pass on that copy.
rm -rf "$OUT-fp16" && mkdir "$OUT-fp16"
find "$OUT-average-refit2" -maxdepth 1 -type f ! -name model.safetensors ! -name config.json -exec cp {} "$OUT-fp16/" \;
python -c "import sys; from vaelm.pretrained.storage import store_weights; store_weights(*sys.argv[1:3], 'float16')" \
  "$OUT-average-refit2" "$OUT-fp16"
vaelm-evaluate --model "$OUT-fp16" --data_dir "$PTB_DIR" --split test --iw_samples 500 --seed 0 \
  --num_threads "$OMP_NUM_THREADS" --output results/ptb-wide-avg45-refit.test.json \
  --progress_file "$OUT-fp16.test.progress"
