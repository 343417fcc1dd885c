"""What a saved model folder holds: its file names, and the facts of its `config.json` and training record that
both the training run (which writes them) and the model card and push (which read them) rely on.

One home for these names, low enough for every layer: `vaelm.pretrained.loading` checks the model files,
`vaelm.training.record` writes the training record, the curves and the latent map, `vaelm.hub` renders the card
and uploads the folder, and `vaelm.apps.demo` adds the Space files. Plain constants: importing this loads nothing.
"""

import fnmatch
from pathlib import Path

# ------------------------------------------------------------------------------------------------ the model itself
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TOKENIZER_NAME = "tokenizer.json"
# The package's own modules that travel in every model folder, so that `trust_remote_code=True` loads it where vaelm is
# not installed (`save_pretrained` copies them; scripts/refresh_remote_code.py refreshes the bundled models' copies).
REMOTE_CODE_FILES = ("configuration_vaelm.py", "modeling_vaelm.py", "tokenization_vaelm.py", "pipeline_vaelm.py")
# The dtypes weights may be stored in (`vaelm-push --storage_dtype`); every loader computes in float32 whatever the
# file holds, so float16 and bfloat16 only halve the download (vaelm.pretrained.storage).
STORAGE_DTYPES = ("float32", "float16", "bfloat16")

# ------------------------------------------------------------------------------------------------ what a run adds
CARD_FILE = "README.md"  # the model card
TRAINING_RECORD_FILE = "training_record.json"  # written at the end of training; the card's settings come from it
TRAINING_CURVES_FILE = "training_curves.png"  # rec, KL, β and the validation ELBO against the step
# Written by `vaelm-train` into its --output_dir when a run starts: the command, its flags and the model's
# configuration (the log names the file instead of printing it). It also says how to resume an unfinished run. It
# holds local paths: the leading underscore keeps it out of every upload (the Trainer's push leaves out `_*` too).
RUN_CONFIGURATION_NAME = "_run_configuration.json"
LATENT_MAP_FILE = "latent_map.png"  # the validation sentences' posterior means in 2-D (vaelm.evaluation.latent_map)
# Where `vaelm-evaluate --output` results are looked for, in this order (then any `*eval*.json`).
EVALUATION_FILES = ("eval_results.json", "evaluation.json", "eval.json")
# The final metrics of a training run, written (and named by its log) after the model is saved and pushed.
RESULTS_NAME = "all_results.json"
# What the Trainer leaves out of its pushes (`_*`, `checkpoint-*`), plus the Trainer's resumable state and the run's
# metrics, which are written after the Trainer has pushed: `vaelm-push` and `vaelm-train --push_to_hub` upload the
# same files.
REPO_IGNORE_PATTERNS = ["_*", "checkpoint-*", "trainer_state.json", RESULTS_NAME]

# ------------------------------------------------------------------------------------------------ a Gradio Space
SPACE_APP_FILE = "app.py"  # written by `vaelm-demo --export`; a folder that holds it is a Space too
# The card's front matter that makes the folder a Gradio Space (model repositories ignore it), as the export writes
# it; the export adds the installed Gradio's `sdk_version`.
SPACE_FRONT_MATTER = {"sdk": "gradio", "app_file": SPACE_APP_FILE}
# The Space keys that a rewritten card keeps from the current one, in the order they are written back.
SPACE_FRONT_MATTER_KEYS = ("sdk", "sdk_version", "app_file")

# ------------------------------------------------------------------------------------------------ the training record
# The training arguments that the KL schedules (vaelm.training.kl_schedules) read: recorded with the run, shown in
# the card, and left out of a plain language model's card (it has no KL term).
KL_ARGUMENT_NAMES = (
    "kl_schedule", "annealing_pivot", "annealing_steepness", "annealing_rate", "kl_cycles", "kl_cycle_ratio",
    "kl_weight", "free_bits", "target_kl", "kl_control_kp", "kl_control_ki",
)
# How the checkpoint whose weights were saved was chosen, when the best one is kept (`--load_best_model_at_end`).
BEST_MODEL_ARGUMENT_NAMES = ("eval_strategy", "eval_steps", "save_strategy", "save_steps", "load_best_model_at_end",
                             "metric_for_best_model", "greater_is_better")


def pushed_files(folder: Path) -> list[str]:
    """
    The files of a model folder that a push uploads (all but `REPO_IGNORE_PATTERNS`), as sorted relative paths.

    Args:
        folder (`Path`): the model folder.
    """
    relative = (path.relative_to(folder).as_posix() for path in sorted(folder.rglob("*")) if path.is_file())
    return [name for name in relative if not any(fnmatch.fnmatch(name, pattern) for pattern in REPO_IGNORE_PATTERNS)]


__all__ = [
    "BEST_MODEL_ARGUMENT_NAMES",
    "CARD_FILE",
    "CONFIG_NAME",
    "REMOTE_CODE_FILES",
    "EVALUATION_FILES",
    "KL_ARGUMENT_NAMES",
    "LATENT_MAP_FILE",
    "REPO_IGNORE_PATTERNS",
    "SPACE_APP_FILE",
    "SPACE_FRONT_MATTER",
    "SPACE_FRONT_MATTER_KEYS",
    "STORAGE_DTYPES",
    "TOKENIZER_NAME",
    "TRAINING_CURVES_FILE",
    "TRAINING_RECORD_FILE",
    "WEIGHTS_INDEX_NAME",
    "WEIGHTS_NAME",
    "pushed_files",
]
