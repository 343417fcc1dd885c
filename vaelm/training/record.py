"""What a training run leaves in its model folder besides the model: the training record (`training_record.json`:
the settings and figures the model card shows), the training curves (`training_curves.png`), the validation
sentences' latent map (`latent_map.png`), and then the model card itself ([`vaelm.hub.model_card`]).

`vaelm-train` calls [`write_training_card`] at the end of a run, and [`VAETrainer.create_model_card`] for
`--push_to_hub`; [`starting_model`] records what a continued run started from, so that the card gives every stage.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evaluation.latent_map import draw_training_map
from ..hub.model_card import write_model_card
from ..hub.reproduce import dataset_ids
from ..pretrained import DEFAULT_MODEL
from ..pretrained.loading import model_file
from ..pretrained.model_folder import (
    BEST_MODEL_ARGUMENT_NAMES,
    KL_ARGUMENT_NAMES,
    LATENT_MAP_FILE,
    TRAINING_CURVES_FILE,
    TRAINING_RECORD_FILE,
)
from ..version import __version__

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import Trainer

logger = logging.getLogger(__name__)

# The training arguments a record keeps (never tokens or paths).
TRAINING_ARGUMENT_KEYS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "optim",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "weight_decay",
    "max_grad_norm",
    "seed",
    *KL_ARGUMENT_NAMES,
    "bf16",
    "fp16",
    "ema_decay",
    "freeze_decoder",
    # which checkpoint the saved weights are, when the best one is kept
    *BEST_MODEL_ARGUMENT_NAMES,
)


def training_record(trainer: Trainer, dataset: str | None = None) -> dict[str, Any]:
    """
    The facts about a finished training run that the card shows (and `training_record.json` keeps).

    Args:
        trainer (`Trainer`): the trainer after `train()` (and usually `evaluate()`).
        dataset (`str`, *optional*): the `--dataset` or `--data_dir` the run used; local paths keep their name only.

    Returns:
        `dict`: `dataset`, `datasets`, `global_step`, `world_size`, the chosen training arguments (never tokens or
        paths) and the last logged validation and final metrics.
    """
    args = trainer.args
    arguments = {key: getattr(args, key) for key in TRAINING_ARGUMENT_KEYS if hasattr(args, key)}
    arguments = {key: (value.value if hasattr(value, "value") else value) for key, value in arguments.items()}
    metrics: dict[str, float] = {}
    for entry in trainer.state.log_history:
        metrics.update(
            {
                key: value
                for key, value in entry.items()
                if key.startswith(("eval_", "final_"))
                and isinstance(value, (int, float))
                and "runtime" not in key
                and "per_second" not in key
            }
        )
    shown_dataset = dataset
    if dataset and (Path(dataset).exists() or dataset.startswith((".", "/", "~"))):
        shown_dataset = f"local folder {Path(dataset).name}"
    record = {
        "vaelm_version": __version__,
        "dataset": shown_dataset,
        "datasets": dataset_ids(dataset),
        "global_step": trainer.state.global_step,
        "world_size": args.world_size,
        "total_train_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        "hub_model_id": args.hub_model_id,
        "training_arguments": arguments,
        "final_metrics": metrics,
    }
    if args.load_best_model_at_end and getattr(trainer.state, "best_global_step", None):
        record["best_step"] = trainer.state.best_global_step  # the saved weights are that checkpoint's
    if getattr(trainer, "started_from", None):
        record["started_from"] = trainer.started_from
    return record


def starting_model(flag: str, source: str, **hub_kwargs: Any) -> dict[str, Any]:
    """
    What a run started from, for its training record: the flag (`model_name_or_path`: the whole model continued;
    `init_from`: its encoder copied), the model's name, and that model's own config and training record when it
    has them, so that the card can give every stage of the recipe.

    Args:
        flag (`str`): `"model_name_or_path"` or `"init_from"`.
        source (`str`): the folder or Hub id given to the flag.
        hub_kwargs: `revision`, `token`, … (for a Hub id).
    """
    if Path(source).expanduser().exists():
        bundled = Path(source).expanduser().resolve() == Path(DEFAULT_MODEL).resolve()
        name = (
            f"vaelm.DEFAULT_MODEL of vaelm {__version__}" if bundled else f"a private model folder, {Path(source).name}"
        )
    else:
        name = source
    found = {}
    for key, filename in (("config", "config.json"), ("training_record", TRAINING_RECORD_FILE)):
        path = model_file(source, filename, **hub_kwargs)
        found[key] = json.loads(path.read_text(encoding="utf-8")) if path else None
    return {"flag": flag, "model": name, "hub_model": None if name != source else source, **found}


def write_training_card(model_dir: str | Path, trainer: Trainer, dataset: str | None = None) -> Path:
    """
    Write a finished run's training record, training curves and latent map into its model folder, then its model
    card; the model and tokenizer come from the trainer (the folder may not hold them yet).

    Args:
        model_dir (`str` or `Path`): the run's output folder.
        trainer (`Trainer`): the trainer after `train()` (and usually `evaluate()`).
        dataset (`str`, *optional*): the run's `--dataset` or `--data_dir` (kept from an earlier record when omitted).

    Returns:
        `Path`: the card's path.
    """
    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record_path = folder / TRAINING_RECORD_FILE
    previous = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    record = training_record(trainer, dataset)
    if dataset is None and previous:
        record["dataset"], record["datasets"] = previous.get("dataset"), previous.get("datasets", [])
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    plot_training_curves(
        trainer.state.log_history, folder / TRAINING_CURVES_FILE, language_model=not trainer.model.config.has_latent
    )
    _draw_latent_map(trainer, folder)
    # Written before save_model, so the weights' dtype is the model's own (save_pretrained keeps it).
    weights_dtype = str(trainer.model.dtype).removeprefix("torch.")
    return write_model_card(
        folder, model=trainer.model, tokenizer=trainer.processing_class, weights_dtype=weights_dtype
    )


# ------------------------------------------------------------------------------------------------ plot
def plot_training_curves(log_history: list[dict], path: str | Path, language_model: bool = False) -> Path | None:
    """
    Draw rec, KL and β (training) and the valid ELBO against the step into a PNG; for a plain language model, its
    training and validation NLL alone (it has no KL and no β).

    Args:
        log_history (`list[dict]`): `trainer.state.log_history`.
        path (`str` or `Path`): where to write the PNG.
        language_model (`bool`, *optional*, defaults to `False`): the model has no latent variable.

    Returns:
        The path, or `None` when nothing was logged.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(key):
        points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
        return ([s for s, _ in points], [v for _, v in points])

    train_rec, train_kl, beta, valid_elbo = series("rec_loss"), series("kl"), series("beta"), series("eval_elbo")
    if not train_rec[0] and not valid_elbo[0]:
        return None
    figure, axes = plt.subplots(
        1, 1 if language_model else 3, figsize=(5, 3.8) if language_model else (14, 3.8), squeeze=False
    )
    axes = axes[0]
    axes[0].plot(*train_rec, label="train NLL" if language_model else "train rec")
    if valid_elbo[0]:
        axes[0].plot(*valid_elbo, "o-", label="valid NLL (exact)" if language_model else "valid −ELBO")
    axes[0].set_ylabel("nats per sentence")
    axes[0].legend()
    if language_model:
        return _finish_plot(figure, axes, path)
    axes[1].plot(*train_kl, color="tab:orange", label="train KL")
    eval_kl = series("eval_kl")
    if eval_kl[0]:
        axes[1].plot(*eval_kl, "o-", color="tab:red", label="valid KL")
    axes[1].set_ylabel("KL (nats per sentence)")
    axes[1].legend()
    axes[2].plot(*beta, color="tab:green")
    axes[2].set_ylabel("β (KL weight)")
    axes[2].set_ylim(-0.05, max([1.05] + [b + 0.05 for b in beta[1]]))
    return _finish_plot(figure, axes, path)


def _finish_plot(figure, axes, path: str | Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.set_xlabel("step")
        axis.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # 5-digit steps must not run together
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def _draw_latent_map(trainer: Trainer, folder: Path) -> None:
    """Draw the validation sentences' latent map for the card; a failure costs the picture, never the card."""
    if trainer.eval_dataset is None:
        return
    try:
        draw_training_map(trainer.model, trainer.processing_class, trainer.eval_dataset, folder / LATENT_MAP_FILE)
    except Exception as error:
        logger.warning("The model card shows no latent map: %s", error)


__all__ = ["TRAINING_ARGUMENT_KEYS", "plot_training_curves", "starting_model", "training_record", "write_training_card"]
