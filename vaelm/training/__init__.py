"""Training: the `vaelm-train` job and what it is made of.

- `job`: prepare data and tokenizer, build or load the model, train, evaluate, save (`train`).
- `trainer`: `VAETrainer`, the Trainer whose loss adds the annealed KL term, and its arguments.
- `kl_schedules`: the KL annealing schedules (a registry from name to β(step)).
- `record`: what a run leaves in its model folder: the training record, curves and latent map, then the card.
- `weight_averaging`: an exponential moving average of the weights.
- `interruption`: Ctrl-C and SIGTERM end a run with a checkpoint.
- `progress_log`: the training log (output folder, pace, ETA, resume), bars only on a terminal.
"""

from ..compat import lazy_exports

# What `from vaelm.training import ...` gave before it became this package (`parse_arguments` and
# `config_file_flags` are the command's: `vaelm.cli.train`, `vaelm.cli`).
_EXPORTS = {
    "DataArguments": ".settings",
    "ModelArguments": ".settings",
    "VAETrainer": ".trainer",
    "VAETrainingArguments": ".trainer",
    "build_model": ".job",
    "final_evaluation": ".job",
    "keep_freed_memory": "..runtime.allocator",
    "prepare_tokenizer": ".job",
    "resolve_resume": "..pretrained.checkpoints",
    "train": ".job",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
