#!/usr/bin/env bash
# The frontier on a lent GPU, in one call of at most BUDGET seconds: each point of POINTS is
# configuration/ptb-latent.yaml trained with its flags, scored on valid (K = 50) and, once, on test (K = 500, all
# 3,761 sentences; the first 1,000 reconstructed), and stored in float16 as it would ship. Points run in the order
# given while the time left exceeds the last point's time plus RESERVE; the JSON files land in $OUT/results.tgz
# (unpack them beside this script, then `python results/latent_frontier/table.py`), each model folder as
# $OUT/NAME.tgz.part-* (pieces under 16 MiB). Evaluation runs in float32 with TF32 off (vaelm-evaluate's default).
#
# Prepare here:  benchmarks/device_check.sh --prepare     (PTB into .ptb/, wheels into .whl/; carry both)
# Run there:     bash results/latent_frontier/gpu.sh     (settings: BUDGET, RESERVE, POINTS)
# CPU smoke test of the logic: SMOKE=1 OUT=/tmp/out PTB=SMALL_PTB_DIR bash results/latent_frontier/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$SECONDS
BUDGET=${BUDGET:-540}
RESERVE=${RESERVE:-60}
OUT=${OUT:?set OUT to the folder that receives the results}
PTB=${PTB:-.ptb}
PYTHON=${PYTHON:-python3}
# NAME:FLAGS, flags joined by commas.
POINTS=${POINTS:-kl32:--target_kl,32 kl16:--target_kl,16 kl48:--target_kl,48 kl8:--target_kl,8}
R=runs/latent_frontier/results
mkdir -p "$OUT" "$R"
trap 'tar -C runs/latent_frontier -czf "$OUT/results.tgz" results' EXIT
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
print(*(f'{k} {r[k]:.3f}' for k in ('nll', 'elbo', 'kl', 'mi')), 'BLEU-4', r['reconstruction']['bleu4'])" \
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
    "$PYTHON" scripts/train.py configuration/ptb-latent.yaml --data_dir "$PTB" --output_dir "runs/latent_frontier/$name" \
        --disable_tqdm true --report_to none --final_eval_iw_samples 0 "${flags[@]}" "${TRAIN_FLAGS[@]}" \
        >> "$R/train.log" 2>&1 || { log "training $name failed (train.log)"; continue; }
    cp "runs/latent_frontier/$name/trainer_state.json" "$R/$name.trainer_state.json"
    shipped=runs/latent_frontier/$name-fp16
    rm -rf "$shipped" && mkdir -p "$shipped"
    find "runs/latent_frontier/$name" -maxdepth 1 -type f ! -name model.safetensors -exec cp {} "$shipped/" \;
    "$PYTHON" -c "import sys; from vaelm.pretrained.storage import store_weights; store_weights(*sys.argv[1:3], 'float16')" \
        "runs/latent_frontier/$name" "$shipped"
    tar -C runs/latent_frontier -czf - "$name-fp16" | split -b 15m - "$OUT/$name.tgz.part-"
    score "$shipped" "$name" valid 50 "${SCORE_FLAGS[@]}"
    score "$shipped" "$name" test 500 "${TEST_FLAGS[@]}"
    point_seconds=$((SECONDS - started))
    log "$name took $point_seconds s"
done
log "done"
