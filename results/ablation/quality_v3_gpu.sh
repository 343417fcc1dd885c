#!/usr/bin/env bash
# Issue 28 on a lent GPU, in one call of at most BUDGET seconds: the prepared device check first (GPU figures for
# README), then the bundled PTB model's cyclic stage (configuration/ptb-cyclic.yaml) run more times on the GPU, each
# from the last, as many as the time allows (at least one), and the encoder refit (configuration/ptb-refit.yaml) of
# the candidates: the last run alone; the last run averaged with the starting model and the other new runs
# (--average_with); with three runs or more, the new runs' average alone. Each candidate and the starting model are
# scored on *valid* (K = 50, seed 0, paired latent noise); the best of them, if it beats the starting model there, is
# stored in float16 as it would ship and scored once on *test* with the full protocol (K = 500). Never selected on
# test. START_MODEL (default: the bundled model) is where the runs start. What its runs gave: results/ablation.md.
# Evaluation runs with TF32 off (vaelm-evaluate's default; cuDNN's RNNs would use it): the scores are float32's.
#
# Prepare here:  benchmarks/device_check.sh --prepare       (PTB into .ptb/, wheels into .whl/; carry both)
# Run there:     bash results/ablation/quality_v3_gpu.sh     (carry .ptb .whl; into $OUT: results.tgz with the logs and
#                the scores, and the chosen model's folder as model.tgz.part-*, pieces under the tool's 16 MiB)
#                Settings (environment): BUDGET, RESERVE, START_MODEL, SEEDS, SKIP_DEVICE_CHECK=1, TRAIN_SECONDS.
# A CPU smoke test of the logic: SMOKE=1 OUT=/tmp/out PTB=SMALL_PTB_DIR bash results/ablation/quality_v3_gpu.sh (tiny steps;
# the last candidate is taken whatever its score, so that the test pass and the packing run too).
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$SECONDS
BUDGET=${BUDGET:-540}       # seconds for the whole script
RESERVE=${RESERVE:-240}     # kept for the refits, the scores, the test pass and the packing
OUT=${OUT:?set OUT to the folder that receives the results}
PTB=${PTB:-.ptb}
PYTHON=${PYTHON:-python3}
START_MODEL=${START_MODEL:-vaelm/pretrained/ptb}
SEEDS=${SEEDS:-47 48 49 50 51 52}  # of the cyclic runs, one each; the bundled chain used 44-46, then 47
R=runs/gpu/results  # logs and scores; packed into $OUT/results.tgz when the script ends, however it ends
mkdir -p "$OUT" "$R"
trap 'tar -C runs/gpu -czf "$OUT/results.tgz" results' EXIT
log() { echo "[$((SECONDS - START)) s] $*" | tee -a "$R/quality.log" >&2; }
left() { echo $((BUDGET - (SECONDS - START))); }

source benchmarks/gpu_env.sh  # the carried wheels, where the image lacks them
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$PYTHON" -c "import torch, transformers, datasets, huggingface_hub, tokenizers, accelerate, vaelm; \
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', \
'transformers', transformers.__version__, 'datasets', datasets.__version__, 'hub', huggingface_hub.__version__, \
'tokenizers', tokenizers.__version__, 'accelerate', accelerate.__version__)" >> "$R/quality.log" 2>&1 \
    || { cat "$R/quality.log" >&2; log "the environment does not import; stopping"; exit 1; }
log "$(tail -1 "$R/quality.log")"

CYCLIC_FLAGS=() REFIT_FLAGS=() SCORE_FLAGS=() TEST_FLAGS=()
if [ -n "${SMOKE:-}" ]; then  # tiny steps and splits: the logic, on a CPU, in a minute
    CYCLIC_FLAGS=(--max_steps 4 --eval_steps 2 --save_steps 2)
    REFIT_FLAGS=(--max_steps 2 --eval_steps 1 --save_steps 1)
    SCORE_FLAGS=(--max_sentences 8 --iw_samples 2 --reconstruction_sentences 4) TEST_FLAGS=("${SCORE_FLAGS[@]}")
elif [ -z "${SKIP_DEVICE_CHECK:-}" ]; then
    log "device check"
    timeout 170 bash benchmarks/device_check.sh --train_seconds "${TRAIN_SECONDS:-30}" > "$R/device_check.json" \
        2> "$R/device_check.log" || log "device check failed or ran out of time (exit $?)"
    log "device check: $(cat "$R/device_check.json")"
fi

COMMON=(--data_dir "$PTB" --disable_tqdm true --report_to none --final_eval_iw_samples 0 --per_device_eval_batch_size 512)
train() { "$PYTHON" scripts/train.py "$@" "${COMMON[@]}" >> "$R/train.log" 2>&1; }
# score FOLDER NAME SPLIT K FLAGS...: IW-NLL and the rest into $R/NAME.SPLIT.kK.json, in float32 (vaelm-evaluate turns
# TF32 off)
score() {
    local folder=$1 name=$2 split=$3 k=$4
    shift 4
    ${TIMEOUT:-} "$PYTHON" scripts/evaluate.py --model "$folder" --data_dir "$PTB" --split "$split" \
        --iw_samples "$k" --seed 0 --chunk_size 16384 --no_progress true --output "$R/$name.$split.k$k.json" \
        "$@" > /dev/null 2>> "$R/evaluate.log" && log "$name $split K=$k: $("$PYTHON" -c "import json,sys; \
r=json.load(open(sys.argv[1])); print(*(f'{k} {r[k]:.4f}' for k in ('nll','ppl','elbo','kl','mi')), 'AU', r['au'], \
'BLEU-4', r.get('reconstruction', {}).get('bleu4'), f\"({r['seconds']:.0f} s)\")" "$R/$name.$split.k$k.json")"
}
nll() { "$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['nll'])" "$1" 2>/dev/null || echo 1e9; }

# The cyclic runs, each from the last, the first from START_MODEL; one seed of SEEDS each.
previous=$START_MODEL runs_done=() run_seconds=0
for seed in $SEEDS; do
    if [ "${#runs_done[@]}" -ge 1 ] && [ "$(left)" -lt $((run_seconds + RESERVE)) ]; then break; fi
    started=$SECONDS
    log "cyclic run seed $seed from $previous"
    train configuration/ptb-cyclic.yaml --model_name_or_path "$previous" --output_dir "runs/gpu/cyclic-$seed" \
        --seed "$seed" "${CYCLIC_FLAGS[@]}" || { log "cyclic run seed $seed failed (train.log)"; break; }
    run_seconds=$((SECONDS - started)) previous=runs/gpu/cyclic-$seed runs_done+=("runs/gpu/cyclic-$seed")
    log "cyclic run seed $seed took $run_seconds s"
    "$PYTHON" -c "import json, sys; state = json.load(open(sys.argv[1])); print('  valid ELBO by step:', \
*(f\"{h['step']}:{h['eval_loss']:.3f}\" for h in state['log_history'] if 'eval_loss' in h), '; kept', \
state['best_model_checkpoint'])" "runs/gpu/cyclic-$seed/trainer_state.json" >> "$R/quality.log" 2>&1
done
[ "${#runs_done[@]}" -ge 1 ] || { log "no cyclic run finished"; exit 1; }

candidates=()
refit() {  # refit NAME FLAGS...: the encoder refit of the last run (with FLAGS) into runs/gpu/NAME
    local name=$1
    shift
    log "refit $name from $previous $*"
    train configuration/ptb-refit.yaml --model_name_or_path "$previous" --output_dir "runs/gpu/$name" "$@" \
        "${REFIT_FLAGS[@]}" && candidates+=("$name") || log "refit $name failed (train.log)"
}
earlier=("${runs_done[@]:0:${#runs_done[@]}-1}")  # the new runs before the last
refit "cyclic-last-refit"
refit "average-refit" --average_with "$START_MODEL" "${earlier[@]}"
if [ "${#earlier[@]}" -ge 2 ]; then refit "average-new-refit" --average_with "${earlier[@]}"; fi

score "$START_MODEL" bundled valid 50 "${SCORE_FLAGS[@]}"
best=bundled best_nll=$(nll "$R/bundled.valid.k50.json")
for name in "${candidates[@]}"; do
    score "runs/gpu/$name" "$name" valid 50 "${SCORE_FLAGS[@]}"
    value=$(nll "$R/$name.valid.k50.json")
    if "$PYTHON" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$value" "$best_nll"; then
        best=$name best_nll=$value
    fi
done
if [ -n "${SMOKE:-}" ] && [ "${#candidates[@]}" -ge 1 ]; then best=${candidates[-1]}; fi  # the rest runs too
log "selected on valid: $best ($best_nll)"

if [ "$best" != bundled ]; then
    shipped=runs/gpu/$best-fp16
    rm -rf "$shipped" && mkdir -p "$shipped"
    find "runs/gpu/$best" -maxdepth 1 -type f ! -name model.safetensors ! -name config.json -exec cp {} "$shipped/" \;
    "$PYTHON" -c "import sys; from vaelm.pretrained.storage import store_weights; store_weights(*sys.argv[1:3], 'float16')" \
        "runs/gpu/$best" "$shipped"
    # The folder comes back in pieces under 16 MiB (the device tool's limit per file), before the test pass: should
    # that pass not finish, it can run elsewhere.
    tar -C runs/gpu -czf - "$best-fp16" | split -b 15m - "$OUT/model.tgz.part-"
    log "test pass of $shipped ($(left) s left)"
    TIMEOUT="timeout $(($(left) > 0 ? $(left) + 30 : 30))" score "$shipped" "$best-fp16" test 500 "${TEST_FLAGS[@]}" \
        || log "the test pass did not finish"
fi
for run in runs/gpu/*/; do  # each run's record and log history, without weights
    [ -f "$run/trainer_state.json" ] && mkdir -p "$R/$(basename "$run")" \
        && cp "$run"/{trainer_state,training_record,report}.json "$R/$(basename "$run")/" 2>/dev/null
done
log "done"
