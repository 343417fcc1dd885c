"""Training: the `vaelm-train` job and what it is made of.

- `job`: prepare data and tokenizer, build or load the model, train, evaluate, save (`train`).
- `settings`: the job's model and data arguments (`ModelArguments`, `DataArguments`).
- `trainer`: `VAETrainer`, the Trainer whose loss adds the annealed KL term, and its arguments.
- `kl_schedules`: the KL annealing schedules (a registry from name to β(step)).
- `record`: what a run leaves in its model folder: the training record, curves and latent map, then the card.
- `weight_averaging`: an exponential moving average of the weights.
- `interruption`: Ctrl-C and SIGTERM end a run with a checkpoint.
- `progress_log`: the training log (output folder, pace, ETA, resume), bars only on a terminal.
"""
