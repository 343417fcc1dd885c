#!/usr/bin/env bash
# Issue 40's decoder-regularisation screens on a lent GPU in one call (scripts/gpu_screens.sh): the bundled model's
# first stage (configuration/ptb.yaml) as a plain LSTM-LM (--latent_size 0: exact NLL) for 4,000 steps, against the
# same run with each regulariser; scored on valid (exact, K = 1), never on test. Then the winners go on the VAE.
# usage: OUT=... bash results/decoder/gpu.sh      (after benchmarks/device_check.sh --prepare; carry .ptb .whl)
export RECIPE=configuration/ptb.yaml VALID_K=1 TEST_K=0
short=--latent_size,0,--max_steps,4000,--eval_steps,1000,--save_steps,1000
export POINTS=${POINTS:-"lm-ref:$short lm-wd3:$short,--weight_drop,0.3 lm-wd5:$short,--weight_drop,0.5 \
lm-locked:$short,--locked_dropout,true lm-wtd:$short,--word_type_dropout,0.1 lm-mos3:$short,--num_softmax_experts,3"}
exec bash "$(dirname "$0")/../../scripts/gpu_screens.sh"
