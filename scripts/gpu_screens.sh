#!/usr/bin/env bash
# PTB screens on a lent GPU, in one call of at most BUDGET seconds: each point of POINTS is RECIPE trained with its
# flags, scored on valid (K = VALID_K) and, with TEST_K > 0, once on test (all 3,761 sentences; the first 1,000
# reconstructed), and stored in float16 as it would ship. Points run in the order given while the time left exceeds
# the last point's time plus RESERVE; the JSON files and training states land in $OUT/results.tgz, each model folder
# in $OUT/NAME.tgz.part-* (pieces under 16 MiB). Evaluation runs in float32 with TF32 off (vaelm-evaluate's
# default). A study's own script sets RECIPE and POINTS (results/latent_frontier/gpu.sh, results/decoder/gpu.sh).
#
# Prepare here:  benchmarks/device_check.sh --prepare     (PTB into .ptb/, wheels into .whl/; carry both)
# Run there:     RECIPE=... POINTS=... bash scripts/gpu_screens.sh     (also BUDGET, RESERVE, VALID_K, TEST_K)
# CPU smoke test of the logic: SMOKE=1 OUT=/tmp/out PTB=SMALL_PTB_DIR RECIPE=... POINTS=... bash scripts/gpu_screens.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
BUDGET=${BUDGET:-540}
RESERVE=${RESERVE:-60}
OUT=${OUT:?set OUT to the folder that receives the results}
PTB=${PTB:-.ptb}
PYTHON=${PYTHON:-python3}
RECIPE=${RECIPE:?set RECIPE to a configuration file}
POINTS=${POINTS:?set POINTS to NAME:FLAGS entries, flags joined by commas (kl16:--target_kl,16)}
VALID_K=${VALID_K:-50}
TEST_K=${TEST_K:-500}  # 0: valid only
W=runs/screens
R=$W/results
mkdir -p "$OUT" "$R"
trap 'tar -C "$W" -czf "$OUT/results.tgz" results' EXIT
log() { echo "[$((SECONDS - START)) s] $*" | tee -a "$R/frontier.log" >&2; }
left() { echo $((BUDGET - (SECONDS - START))); }

source benchmarks/gpu_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
TRAIN_FLAGS=() SCORE_FLAGS=() TEST_FLAGS=()
if [ -n "${SMOKE:-}" ]; then  # tiny steps and splits: the logic, on a CPU, in a minute
    TRAIN_FLAGS=(--max_steps 4 --eval_steps 2 --save_steps 2 --bf16 false)
    SCORE_FLAGS=(--max_sentences 8 --iw_samples 2 --reconstruction_sentences 4) TEST_FLAGS=("${SCORE_FLAGS[@]}")
fi

score() {  # score FOLDER NAME SPLIT K FLAGS...
    local folder=$1 name=$2 split=$3 k=$4
    shift 4
    "$PYTHON" scripts/evaluate.py --model "$folder" --data_dir "$PTB" --split "$split" --iw_samples "$k" --seed 0 \
        --chunk_size 16384 --no_progress true --output "$R/$name.$split.json" "$@" > /dev/null 2>> "$R/evaluate.log" \
        && log "$name $split K=$k: $("$PYTHON" -c "import json, sys; r = json.load(open(sys.argv[1])); \
print(*(f'{k} {r[k]:.3f}' for k in ('nll', 'elbo', 'kl', 'mi')), 'BLEU-4', r.get('reconstruction', {}).get('bleu4'))" \
        "$R/$name.$split.json")"
}

point_seconds=0
for point in $POINTS; do
    name=${point%%:*}
    IFS=, read -r -a flags <<< "${point#*:}"
    if [ "$point_seconds" -gt 0 ] && [ "$(left)" -lt $((point_seconds + RESERVE)) ]; then
        log "stopping before $name: $(left) s left"
        break
    fi
    started=$SECONDS
    log "training $name: ${flags[*]}"
    "$PYTHON" scripts/train.py "$RECIPE" --data_dir "$PTB" --output_dir "$W/$name" \
        --disable_tqdm true --report_to none --final_eval_iw_samples 0 "${flags[@]}" "${TRAIN_FLAGS[@]}" \
        >> "$R/train.log" 2>&1 || { log "training $name failed (train.log)"; continue; }
    cp "$W/$name/trainer_state.json" "$R/$name.trainer_state.json"
    shipped=$W/$name-fp16
    rm -rf "$shipped" && mkdir -p "$shipped"
    find "$W/$name" -maxdepth 1 -type f ! -name model.safetensors -exec cp {} "$shipped/" \;
    "$PYTHON" -c "import sys; from vaelm.pretrained.storage import store_weights; store_weights(*sys.argv[1:3], 'float16')" \
        "$W/$name" "$shipped"
    tar -C "$W" -czf - "$name-fp16" | split -b 15m - "$OUT/$name.tgz.part-"
    score "$shipped" "$name" valid "$VALID_K" "${SCORE_FLAGS[@]}"
    [ "$TEST_K" -gt 0 ] && score "$shipped" "$name" test "$TEST_K" "${TEST_FLAGS[@]}"
    point_seconds=$((SECONDS - started))
    log "$name took $point_seconds s"
done
log "done"
