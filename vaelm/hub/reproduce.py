"""The `vaelm-train` command that repeats a recorded run, as the model card shows it, and the settings of a run that
shaped it (the card's training table).

Read from a model folder's `config.json` and training record ([`vaelm.training.record`] writes it); a run started
from another recorded model gives one command per stage. The Hub ids of a run's datasets (the card's `datasets`) are
named here too.
"""

import dataclasses
import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..configuration_vaelm import VAELMConfig, config_has_latent
from ..corpora.sources import DATASET_ALIASES
from ..pretrained.model_folder import BEST_MODEL_ARGUMENT_NAMES, KL_ARGUMENT_NAMES

# Dataset names of `vaelm-train --dataset` and the Hub dataset ids they stand for (one table, in vaelm.corpora.sources).
KNOWN_DATASETS = DATASET_ALIASES

# The VAELMConfig fields that `vaelm-train`'s model flags set, in --help order (the fields of
# vaelm.training.settings.ModelArguments, a layer above; tests/test_settings.py keeps the two equal).
MODEL_FLAGS = (
    "embedding_size",
    "hidden_size",
    "latent_size",
    "num_layers",
    "cell_type",
    "bidirectional_encoder",
    "word_dropout",
    "embedding_dropout",
    "output_dropout",
    "locked_dropout",
    "weight_drop",
    "word_type_dropout",
    "posterior_bn_gamma",
    "latent_to_every_step",
    "bow_loss_weight",
    "num_softmax_experts",
    "tie_word_embeddings",
)
# The original script's model flags: a reproduce command always writes them, the others only away from their default.
ORIGINAL_MODEL_FLAGS = ("embedding_size", "hidden_size", "latent_size", "word_dropout")


def model_flags(config: Mapping[str, Any]) -> dict[str, Any]:
    """
    `vaelm-train`'s model flags that build a model shaped like `config`, in --help order: the original script's
    always, the others where the value differs from the field's default (the model card's reproduce command).

    Args:
        config (`Mapping`): the configuration as a dict (`config.json`).
    """
    defaults = {spec.name: spec.default for spec in dataclasses.fields(VAELMConfig)}
    flags = {}
    for name in MODEL_FLAGS:
        value = defaults[name] if config.get(name) is None else config[name]
        if name in ORIGINAL_MODEL_FLAGS or value != defaults[name]:
            flags[name] = value
    return flags


def applied_settings(arguments: Mapping[str, Any], language_model: bool = False) -> dict[str, Any]:
    """
    The training arguments that shaped the run: no cycle counts under a linear schedule, no epochs under max_steps,
    no KL settings at all for a plain language model (`language_model`: latent size 0, no KL term).
    """
    if language_model:
        arguments = {key: value for key, value in arguments.items() if key not in (*KL_ARGUMENT_NAMES, "free_bits")}
    schedule = arguments.get("kl_schedule")
    unused = {
        "kl_cycles": schedule != "cyclical",
        "kl_cycle_ratio": schedule != "cyclical",
        "annealing_steepness": schedule != "sigmoid_pivot",
        "annealing_rate": schedule != "logistic",
        "annealing_pivot": schedule in ("constant", "cyclical"),
        "kl_weight": schedule != "constant",
        "num_train_epochs": (arguments.get("max_steps") or 0) > 0,
        "bf16": not arguments.get("bf16"),
        "fp16": not arguments.get("fp16"),
        "free_bits": not arguments.get("free_bits"),
        "target_kl": not arguments.get("target_kl"),
        "kl_control_kp": not arguments.get("target_kl"),
        "kl_control_ki": not arguments.get("target_kl"),
        "warmup_steps": not arguments.get("warmup_steps"),
        "weight_decay": not arguments.get("weight_decay"),
        "ema_decay": not arguments.get("ema_decay"),
        "lr_scheduler_kwargs": not arguments.get("lr_scheduler_kwargs"),
        "freeze_decoder": not arguments.get("freeze_decoder"),
        # without load_best_model_at_end the schedule of evaluations does not change the weights
        **{
            key: not arguments.get("load_best_model_at_end") or arguments.get(key) is None
            for key in BEST_MODEL_ARGUMENT_NAMES
        },
    }
    return {key: value for key, value in arguments.items() if not unused.get(key, False)}


def dataset_ids(dataset: str | None) -> list[str]:
    """
    The Hub dataset ids for a `vaelm-train --dataset`/`--data_dir` value, for the card's `datasets` field.

    Args:
        dataset (`str`, *optional*): `ptb`, `bookcorpus`, a Hub dataset id, or a local folder name.

    Returns:
        `list[str]`: one id, or none for a local folder that is not PTB.
    """
    if not dataset:
        return []
    if dataset in KNOWN_DATASETS:
        return [KNOWN_DATASETS[dataset]]
    local = Path(dataset)
    if local.exists() or dataset.startswith((".", "/", "~")):
        return [KNOWN_DATASETS["ptb"]] if (local / "ptb.train.txt").is_file() else []
    return [dataset]


def public_dataset_flag(datasets: list[str]) -> str | None:
    """`--dataset ptb`/`bookcorpus`/`ID` for a run whose data a reader can download, else `None`."""
    if not datasets:
        return None
    names = {hub_id: name for name, hub_id in KNOWN_DATASETS.items()}
    return f"--dataset {names.get(datasets[0], datasets[0])}"


def public_command(command: str, repo_id: str, datasets: list[str]) -> str:
    """A recorded command with this machine's paths replaced: the model's id, the public dataset, no output or
    progress file (both are paths of the machine that ran it)."""
    command = re.sub(r"--model \S+", f"--model {repo_id}", command)
    dataset = public_dataset_flag(datasets)
    if dataset:
        command = re.sub(r"--data_dir \S+", dataset, command)
    return re.sub(r" --(output|per_sentence_output|progress_file) \S+", "", command)


def training_command(config: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
    """
    The `vaelm-train` command(s) that repeat the recorded run on the public dataset (None for private data): one
    line, or, for a run started from another model whose training is recorded, one line per stage, each training
    into `stage-N` from the one before.
    """
    stages, stage = [], (config, record)
    while stage is not None:
        stages.insert(0, stage)
        started = stage[1].get("started_from") or {}
        known = started.get("config") and started.get("training_record")
        stage = (started["config"], started["training_record"]) if known else None
    commands = [_stage_command(*stage) for stage in stages]
    if any(command is None for command in commands):
        return None
    first_start = stages[0][1].get("started_from")
    if first_start:  # where the recorded chain begins: a Hub model, or one the reader has to supply
        commands[0] += f" --{first_start['flag']} {first_start.get('hub_model') or 'STARTING_MODEL'}"
    if len(commands) == 1:
        return commands[0]
    lines = []
    for number, ((_, stage_record), command) in enumerate(zip(stages, commands), 1):
        if number > 1:
            command += f" --{stage_record['started_from']['flag']} stage-{number - 1}"
        averaged = (stage_record.get("started_from") or {}).get("averaged_with") or []
        if averaged:  # an earlier stage of this chain where one is recorded, else a model the reader supplies
            command += " --average_with " + " ".join(_stage_name(entry, stages[: number - 1]) for entry in averaged)
        lines.append(f"{command} --output_dir stage-{number}")
    return "\n".join(lines)


def _stage_name(entry: Mapping[str, Any], earlier: list[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> str:
    """The `stage-N` that an `--average_with` model is (same config and training record), or its Hub id, or a
    placeholder."""
    for number, (config, record) in enumerate(earlier, 1):
        if entry.get("training_record") and (entry.get("config"), entry["training_record"]) == (config, record):
            return f"stage-{number}"
    return entry.get("hub_model") or "AVERAGED_MODEL"


def _stage_command(config: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
    """The `vaelm-train` command of one recorded run, without what it started from."""
    dataset = public_dataset_flag(list(record.get("datasets", [])))
    if not dataset or not record.get("training_arguments"):
        return None
    flags = [dataset, *(f"--{flag} {_flag_value(value)}" for flag, value in model_flags(config).items())]
    arguments = applied_settings(record["training_arguments"], language_model=not config_has_latent(config))
    renamed = {"per_device_train_batch_size": "batch_size"}
    skipped = {"optim", "gradient_accumulation_steps", "max_grad_norm", "seed", *BEST_MODEL_ARGUMENT_NAMES}
    for key, value in sorted(arguments.items()):
        if key in skipped and not (key == "gradient_accumulation_steps" and value != 1):
            continue
        flags.append(f"--{renamed.get(key, key)} {_flag_value(value)}")
    # Kept together and in this order: how the checkpoint whose weights were saved was chosen.
    flags += [f"--{key} {_flag_value(arguments[key])}" for key in BEST_MODEL_ARGUMENT_NAMES if key in arguments]
    flags.append(f"--seed {arguments.get('seed', 42)}")
    return "vaelm-train " + " ".join(flags)


def _flag_value(value: Any) -> str:
    if isinstance(value, (dict, list)):  # e.g. --lr_scheduler_kwargs '{"num_cycles": 4}', quoted for the shell
        return shlex.quote(json.dumps(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


__all__ = [
    "KNOWN_DATASETS",
    "MODEL_FLAGS",
    "ORIGINAL_MODEL_FLAGS",
    "applied_settings",
    "dataset_ids",
    "model_flags",
    "public_command",
    "public_dataset_flag",
    "training_command",
]
