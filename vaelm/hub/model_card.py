"""Model cards and Hub pushes for saved vaelm model folders.

A saved model folder (what `vaelm-train` writes) becomes a Hub repository with one commit: weights, config,
generation config, tokenizer, the custom code (`configuration_vaelm.py`, `modeling_vaelm.py`), the training-curve
plot, the training record and a model card (`README.md`) built with `huggingface_hub.ModelCard`. The card is a
function of the folder: architecture from `config.json`, training settings from `training_record.json` (written
at the end of training), evaluation figures from the JSON that `vaelm-evaluate --output` wrote into the folder,
and a few prior samples and a homotopy decoded by `vaelm.generation` when it can.

`vaelm-push` calls [`push_model_folder`]; `vaelm-train --push_to_hub` goes through the Trainer, whose
`create_model_card` writes the same card, so both produce the same repository files.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCard, ModelCardData, get_token
import torch
from huggingface_hub.errors import HfHubHTTPError

from ..corpora.data import DATASET_ALIASES
from ..generation.sentence_vae import DecodingConfig, SentenceVAE
from ..training.kl_schedules import KL_ARGUMENT_NAMES
from ..evaluation.latent_map import draw_training_map
from ..evaluation.reconstruction import reconstruction_paragraph
from ..pretrained.loading import TOKENIZER_NAME, check_model_source, load_model_and_tokenizer, model_file
from ..pretrained import DEFAULT_MODEL
from ..version import __version__

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerBase, Trainer

    from ..modeling_vaelm import VAELMModel

logger = logging.getLogger(__name__)

CARD_FILE = "README.md"
TRAINING_RECORD_FILE = "training_record.json"
TRAINING_CURVES_FILE = "training_curves.png"  # the name write_model_card draws the curves under
LATENT_MAP_FILE = "latent_map.png"  # the validation sentences' posterior means in 2-D (vaelm.latent_map)
# Front-matter keys that make the folder a Gradio Space too (`vaelm-demo --export`); a rewritten card keeps them.
SPACE_CARD_KEYS = ("sdk", "sdk_version", "app_file")
EVALUATION_FILES = ("eval_results.json", "evaluation.json", "eval.json")
DEFAULT_LICENSE = "apache-2.0"
CARD_TAGS = ["vae", "text-generation"]  # and the cell type ("lstm" or "gru")
# What the Trainer leaves out of its pushes (`_*`, `checkpoint-*`), plus the Trainer's resumable state, which
# `save_state` writes after the Trainer has pushed: `vaelm-push` and `vaelm-train --push_to_hub` upload the same files.
REPO_IGNORE_PATTERNS = ["_*", "checkpoint-*", "trainer_state.json"]
# Dataset names of `vaelm-train --dataset` and the Hub dataset ids they stand for (one table, in vaelm.data).
KNOWN_DATASETS = DATASET_ALIASES
BEST_MODEL_ARGUMENT_NAMES = ("eval_strategy", "eval_steps", "save_strategy", "save_steps", "load_best_model_at_end",
                             "metric_for_best_model", "greater_is_better")
TRAINING_ARGUMENT_KEYS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "num_train_epochs",
    "optim", "lr_scheduler_type", "warmup_steps", "weight_decay", "max_grad_norm", "seed", *KL_ARGUMENT_NAMES,
    "bf16", "fp16", "ema_decay",
    # which checkpoint the saved weights are, when the best one is kept
    *BEST_MODEL_ARGUMENT_NAMES,
)
EVALUATION_KEYS = ("nll", "ppl", "elbo", "elbo_ppl", "rec", "kl", "mi", "au", "latent_size", "sentences", "tokens", "iw_samples")
TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{8,}")
CARD_SAMPLE_SEED = 0


# ------------------------------------------------------------------------------------------------ folder checks
def check_model_folder(model_dir: str | Path) -> Path:
    """
    Make sure a folder holds a loadable vaelm model before anything is written or pushed.

    The model checks are [`vaelm.loading.check_model_source`]'s (a vaelm `config.json`, safetensors weights, never a
    pickle); this adds that the folder is local and holds the tokenizer.

    Args:
        model_dir (`str` or `Path`): a folder saved by `vaelm-train` (or `save_pretrained`).

    Returns:
        `Path`: the folder.

    Raises:
        `FileNotFoundError`: when the folder or the tokenizer is missing. [`~vaelm.loading.ModelLoadError`]: when
        `config.json` or the weights are missing or wrong, naming what.
    """
    folder = Path(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"Model folder {folder} does not exist (give the --output_dir of vaelm-train).")
    check_model_source(folder)
    if not (folder / TOKENIZER_NAME).is_file():
        raise FileNotFoundError(
            f"{folder} is not a saved vaelm model: {TOKENIZER_NAME} missing. Train into it with vaelm-train "
            "(which saves the model at the end), or point --model at the folder that holds config.json."
        )
    return folder


def redact_tokens(text: str, *tokens: str | None) -> str:
    """Replace the given tokens, and anything shaped like a Hugging Face token, by `***`."""
    for token in tokens:
        if token:
            text = text.replace(token, "***")
    return TOKEN_PATTERN.sub("***", text)


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


# ------------------------------------------------------------------------------------------------ what the card says
def is_language_model(config: Mapping[str, Any]) -> bool:
    """A plain language model (`--latent_dim 0`): no encoder, no posterior, no KL; its NLL is exact."""
    return config.get("latent_size") == 0


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
        metrics.update({
            key: value for key, value in entry.items()
            if key.startswith(("eval_", "final_")) and isinstance(value, (int, float)) and "runtime" not in key
            and "per_second" not in key
        })
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
        name = f"vaelm.DEFAULT_MODEL of vaelm {__version__}" if bundled else f"a private model folder, {Path(source).name}"
    else:
        name = source
    found = {}
    for key, filename in (("config", "config.json"), ("training_record", TRAINING_RECORD_FILE)):
        path = model_file(source, filename, **hub_kwargs)
        found[key] = json.loads(path.read_text(encoding="utf-8")) if path else None
    return {"flag": flag, "model": name, "hub_model": None if name != source else source, **found}


def find_evaluation_results(model_dir: str | Path) -> dict[str, Any] | None:
    """
    The JSON object of `vaelm-evaluate --output` saved in the model folder, if any.

    Looks for `eval_results.json`, `evaluation.json`, `eval.json`, then any `*eval*.json` holding an `nll` or
    `elbo` figure.

    Args:
        model_dir (`str` or `Path`): the model folder.
    """
    folder = Path(model_dir)
    candidates = [folder / name for name in EVALUATION_FILES] + sorted(folder.glob("*eval*.json"))
    for path in candidates:
        if not path.is_file():
            continue
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("Skipping %s: not valid JSON.", path)
            continue
        if isinstance(results, dict) and ("nll" in results or "elbo" in results):
            return results
    return None


def card_examples(model: VAELMModel, tokenizer: PreTrainedTokenizerBase, num_samples: int = 5, steps: int = 3) -> tuple[list[str], list[str], str | None]:
    """
    Prior samples and a homotopy between the first two of them, decoded greedily with a fixed seed.

    Generation is optional for the card: any failure is returned as a reason instead of raised, so that the card
    is always written.

    Args:
        model ([`VAELMModel`]): the model.
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer.
        num_samples (`int`, *optional*, defaults to 5): prior samples to show.
        steps (`int`, *optional*, defaults to 3): intermediate homotopy points (the two ends are added).

    Returns:
        `(samples, homotopy, reason)`: two lists of sentences, and `None` or why they are empty.
    """
    was_training = model.training
    try:
        vae = SentenceVAE(model, tokenizer)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(CARD_SAMPLE_SEED)
            # As vaelm-sample and the pipelines decode by default; a language model's greedy "samples" would all
            # be one sentence (there is no z to vary), so it samples its words.
            language_model = is_language_model(model.config.to_dict())
            strategy = "sample" if language_model else "greedy"
            decoding = DecodingConfig(strategy=strategy, no_unk=True)
            samples = [item["text"] for item in vae.sample_prior(num_samples, decoding)]
            path = []
            # A plain language model (latent_size 0) has no posterior, so no homotopy.
            if not language_model and len(samples) >= 2 and samples[0].strip() and samples[1].strip():
                path = [item["text"] for item in vae.homotopy(samples[0], samples[1], steps=steps, mode="linear",
                                                              decoding=decoding)]
        return samples, path, None
    except Exception as error:  # the card must be written even when decoding fails
        logger.warning("Model card: samples could not be generated (%s: %s).", type(error).__name__, error)
        return [], [], f"{type(error).__name__}: {error}"
    finally:
        model.train(was_training)


def card_metadata(config: Mapping[str, Any], record: Mapping[str, Any], evaluation: Mapping[str, Any] | None,
                  license: str, extra_datasets: list[str], model_name: str | None = None) -> ModelCardData:
    """
    The card's front matter.

    Args:
        config (`Mapping`): the model config as a dict.
        record (`Mapping`): the training record (may be empty).
        evaluation (`Mapping`, *optional*): `vaelm-evaluate` results.
        license (`str`): a Hub license id.
        extra_datasets (`list[str]`): dataset ids given at push time.
        model_name (`str`, *optional*): the model-index name (a Hub model-index with results needs one).
    """
    datasets = list(dict.fromkeys([*record.get("datasets", []), *extra_datasets]))
    metrics = []
    eval_results = None
    if evaluation or record.get("final_metrics"):
        metrics = ["perplexity"]
    if evaluation and datasets and "nll" in evaluation:
        common = dict(
            task_type="text-generation", dataset_type=datasets[0], dataset_name=datasets[0],
            dataset_split=str(evaluation.get("split", "test")),
        )
        eval_results = [EvalResult(metric_type="nll", metric_name="IW-NLL (nats per sentence)", metric_value=float(evaluation["nll"]), **common)]
        if "ppl" in evaluation:
            eval_results.append(EvalResult(metric_type="perplexity", metric_name="IW perplexity", metric_value=float(evaluation["ppl"]), **common))
    return ModelCardData(
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=[*CARD_TAGS[:1], str(config.get("cell_type") or "lstm"), *CARD_TAGS[1:]],
        datasets=datasets or None,
        language=[config.get("lang", "en")],
        license=license,
        metrics=metrics or None,
        eval_results=eval_results,
        model_name=model_name or record.get("hub_model_id") or None,
    )


def started_from_sentence(started: Mapping[str, Any]) -> str:
    """One sentence on what the run started from and how long that model had been trained."""
    how = "continued" if started.get("flag") == "model_name_or_path" else "took the encoder of"
    earlier_record = started.get("training_record") or {}
    earlier, best = earlier_record.get("global_step"), earlier_record.get("best_step")
    trained = f", which had been trained for {earlier:,} steps" if earlier else ", whose training is not recorded"
    if earlier and best and best != earlier:
        trained += f" (its weights: step {best:,}, its best validation loss)"
    return (f"This run {how} {started.get('model')} (`--{started.get('flag')}`){trained}. The table gives this stage; "
            "the command after it repeats every recorded stage.")


def _table(rows: list[tuple[str, Any]]) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def render_card_body(name: str, repo_id: str, config: Mapping[str, Any], record: Mapping[str, Any],
                     evaluation: Mapping[str, Any] | None, examples: tuple[list[str], list[str], str | None],
                     has_curves: bool, num_parameters: int | None, has_latent_map: bool = False) -> str:
    """
    The Markdown below the front matter.

    Args:
        name (`str`): the model's name (heading).
        repo_id (`str`): the id shown in the loading examples.
        config (`Mapping`): the model config as a dict.
        record (`Mapping`): the training record (may be empty).
        evaluation (`Mapping`, *optional*): `vaelm-evaluate` results.
        examples (`tuple`): `(samples, homotopy, reason)` from [`card_examples`].
        has_curves (`bool`): whether `training_curves.png` is in the folder.
        num_parameters (`int`, *optional*): the parameter count.
        has_latent_map (`bool`, *optional*, defaults to `False`): whether `latent_map.png` is in the folder.
    """
    cell = str(config.get("cell_type") or "lstm").upper()
    article = "An" if cell == "LSTM" else "A"
    language_model = is_language_model(config)
    if language_model:
        about = (
            f"A plain {cell} language model, trained with vaelm as the baseline that its sentence VAEs (Bowman et al. "
            "2016, *Generating Sentences from a Continuous Space*) have to beat: the VAE's decoder without the latent "
            "variable (`--latent_dim 0`), trained the same way. Its NLL is exact; it samples sentences, but has no "
            "posterior, so no reconstruction or homotopy."
        )
    else:
        about = (
            "A sentence-level variational auto-encoder language model (Bowman et al. 2016, *Generating Sentences from a "
            f"Continuous Space*), trained with vaelm. {article} {cell} encoder maps a sentence to a "
            f"diagonal Gaussian q(z|x); {article.lower()} {cell} decoder whose initial state is computed from z generates the sentence back. "
            "Sampling z from N(0, I) generates new sentences; moving z between two sentences gives a homotopy."
        )
    parts = [f"# {name}", about]
    architecture = [
        ("vocabulary size", config.get("vocab_size")), ("embedding size", config.get("embedding_size")),
        (f"{cell} hidden size", config.get("hidden_size")), ("latent size", config.get("latent_size")),
        (f"{cell} layers", config.get("num_layers")), ("bidirectional encoder", config.get("bidirectional_encoder")),
        ("word dropout", config.get("word_dropout")), ("z fed to every decoder step", config.get("latent_to_every_step")),
        ("tied word embeddings", config.get("tie_word_embeddings")), ("language", config.get("lang")),
        ("segmentation", config.get("segmentation")), ("longest training sentence (words)", config.get("max_sentence_length")),
    ]
    if language_model:
        architecture = [(key, value) for key, value in architecture
                        if key not in ("bidirectional encoder", "z fed to every decoder step")]
    if num_parameters is not None:
        architecture.append(("parameters", f"{num_parameters:,}"))
    parts += ["## Model", _table(architecture)]

    parts.append("## Training")
    if record:
        shown_data = (record.get("dataset") or "not recorded").replace("local folder ", "private text files: ")
        facts = [("dataset", ", ".join(record.get("datasets") or []) or shown_data), ("steps", record.get("global_step")),
                 ("processes", record.get("world_size")), ("sentences per step", record.get("total_train_batch_size"))]
        if record.get("best_step") is not None:
            facts.insert(2, ("weights of step", f"{record['best_step']} (best validation loss)"))
        facts += sorted(applied_settings(record.get("training_arguments", {}), language_model).items())
        started = record.get("started_from")
        if started:
            parts.append(started_from_sentence(started))
        parts.append(_table(facts))
        command = training_command(config, record)
        if command:
            parts.append(f"Reproduce the training with:\n\n```bash\n{command}\n```")
        final = record.get("final_metrics") or {}
        if language_model:  # no KL; its ELBO is its exact NLL
            final = {key: value for key, value in final.items() if "kl" not in key and "elbo" not in key}
        if final:
            kind = "exact NLL" if language_model else "β = 1"
            parts.append(f"Validation figures at the end of training (nats per sentence; {kind}):\n\n"
                         + _table([(key, value) for key, value in sorted(final.items())]))
    else:
        parts.append("The training run was not recorded with this folder (no `training_record.json`).")
    if has_curves:
        shown = "training and validation NLL" if language_model else "reconstruction, KL, β and validation ELBO"
        parts.append(f"![Training curves: {shown}]({TRAINING_CURVES_FILE})")
    if has_latent_map:
        parts.append(f"![Latent map: posterior means of validation sentences, 2-D PCA, coloured by length]({LATENT_MAP_FILE})")

    parts.append("## Evaluation")
    if evaluation:
        rows = [(key, evaluation[key]) for key in EVALUATION_KEYS if key in evaluation]
        rows += [(key, evaluation[key]) for key in ("split", "max_sentences") if evaluation.get(key) is not None]
        parts.append("Importance-weighted NLL and the rest of the protocol of He et al. (2019), in nats per sentence; "
                     "PPL counts the end-of-sentence token.\n\n" + _table(rows))
        if reconstruction_paragraph(evaluation):
            parts.append(reconstruction_paragraph(evaluation))
        if evaluation.get("command"):
            command = public_command(evaluation["command"], repo_id, record.get("datasets", []))
            parts.append(f"Reproduce with:\n\n```bash\n{command}\n```")
    else:
        parts.append(f"No evaluation results yet: run `vaelm-evaluate --model {repo_id} --data_dir DATA --split test "
                     "--output MODEL_DIR/eval_results.json` and push again to add them here.")

    samples, homotopy, reason = examples
    parts.append("## Samples")
    if samples:
        how = ("Sentences drawn by ancestral sampling (seed 0; greedy decoding would give one sentence)" if language_model
               else "Sentences decoded greedily from z ~ N(0, I) (seed 0)")
        parts.append(f"{how}, `<unk>` suppressed as `vaelm-sample` does by default:\n\n" + "\n".join(f"- {s or '*(empty sentence)*'}" for s in samples))
        if homotopy:
            parts.append("A linear homotopy between the first two samples' posterior means:\n\n"
                         + "\n".join(f"{i}. {s or '*(empty sentence)*'}" for i, s in enumerate(homotopy, 1)))
    else:
        parts.append(f"Samples could not be generated when this card was written ({reason}). Generate some with "
                     f"`vaelm-sample --model {repo_id} --num 5`.")

    if language_model:  # no posterior: no homotopy, no encoding, no reconstruction
        commands = f"vaelm-sample --model {repo_id} --num 5 --strategy sample"
        pipelines = f"""from transformers import pipeline

generator = pipeline("text-generation", model="{repo_id}", trust_remote_code=True)
print(generator("the company said")[0]["generated_text"])"""
        forward = "output = model(**batch)  # loss = exact NLL per sentence\nprint(output.loss.item())"
    else:
        commands = (f"vaelm-sample --model {repo_id} --num 5\n"
                    f'vaelm-homotopy --model {repo_id} --start "SENTENCE ONE" --end "SENTENCE TWO" --steps 3')
        pipelines = f"""from transformers import pipeline, set_seed

generator = pipeline("text-generation", model="{repo_id}", trust_remote_code=True)
set_seed(0)                                        # z is drawn from the prior; or pass z=... (1, latent size)
print(generator("the company said")[0]["generated_text"])

vae = pipeline("sentence-vae", model="{repo_id}", trust_remote_code=True)
vae("the company said it will buy shares", mode="encode")   # posterior mean and log-variance
vae("the company said it will buy shares")                  # reconstruction from the posterior mean
vae(3, mode="sample", seed=0)                               # prior samples
vae({{"start": "the company said it will buy shares", "end": "investors are worried"}}, mode="interpolate", steps=3)"""
        forward = ("output = model(**batch, sample_latent=False)  # loss = -ELBO; mu, logvar = q(z|x)\n"
                   "print(output.loss.item(), output.mu)")
    parts += ["## How to use", "With vaelm installed:", f"""```python
from vaelm import VAELMModel, load_tokenizer

model = VAELMModel.from_pretrained("{repo_id}")
tokenizer = load_tokenizer("{repo_id}")
```

```bash
{commands}
```""", "Without vaelm, with transformers alone (the model and pipeline code come with the model):", f"""```python
{pipelines}
```""", f"The model itself ({'NLL' if language_model else 'ELBO, posterior'}) with transformers alone:", f"""```python
import torch
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)
batch = tokenizer(["the company said it will buy shares </s>"], return_tensors="pt")  # a whole sentence ends with </s>
with torch.no_grad():
    {forward}
```""", "Pass `revision=` to `from_pretrained` to load an earlier commit or another branch."]
    parts += ["## Citation", """```bibtex
@inproceedings{bowman2016generating,
  title     = {Generating Sentences from a Continuous Space},
  author    = {Bowman, Samuel R. and Vilnis, Luke and Vinyals, Oriol and Dai, Andrew M. and Jozefowicz, Rafal and Bengio, Samy},
  booktitle = {Proceedings of the 20th SIGNLL Conference on Computational Natural Language Learning},
  year      = {2016}
}
```"""]
    return "\n\n".join(parts) + "\n"


def applied_settings(arguments: Mapping[str, Any], language_model: bool = False) -> dict[str, Any]:
    """
    The training arguments that shaped the run: no cycle counts under a linear schedule, no epochs under max_steps,
    no KL settings at all for a plain language model (`language_model`: latent size 0, no KL term).
    """
    if language_model:
        arguments = {key: value for key, value in arguments.items() if key not in (*KL_ARGUMENT_NAMES, "free_bits")}
    schedule = arguments.get("kl_schedule")
    unused = {
        "kl_cycles": schedule != "cyclical", "kl_cycle_ratio": schedule != "cyclical",
        "annealing_steepness": schedule != "sigmoid_pivot", "annealing_rate": schedule != "logistic",
        "annealing_pivot": schedule in ("constant", "cyclical"), "kl_weight": schedule != "constant",
        "num_train_epochs": (arguments.get("max_steps") or 0) > 0, "bf16": not arguments.get("bf16"),
        "fp16": not arguments.get("fp16"), "free_bits": not arguments.get("free_bits"),
        "warmup_steps": not arguments.get("warmup_steps"), "weight_decay": not arguments.get("weight_decay"),
        "ema_decay": not arguments.get("ema_decay"),
        # without load_best_model_at_end the schedule of evaluations does not change the weights
        **{key: not arguments.get("load_best_model_at_end") or arguments.get(key) is None
           for key in BEST_MODEL_ARGUMENT_NAMES},
    }
    return {key: value for key, value in arguments.items() if not unused.get(key, False)}


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
        lines.append(f"{command} --output_dir stage-{number}")
    return "\n".join(lines)


def _stage_command(config: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
    """The `vaelm-train` command of one recorded run, without what it started from."""
    dataset = public_dataset_flag(list(record.get("datasets", [])))
    if not dataset or not record.get("training_arguments"):
        return None
    flags = [dataset, f"--embedding_size {config.get('embedding_size')}", f"--num_units {config.get('hidden_size')}",
             f"--latent_dim {config.get('latent_size')}", f"--keep_prob {round(1 - float(config.get('word_dropout', 0)), 6)}"]
    if (config.get("cell_type") or "lstm") != "lstm":
        flags.append(f"--cell_type {config['cell_type']}")
    for key in ("embedding_dropout", "output_dropout", "weight_drop", "word_type_dropout", "posterior_bn_gamma"):
        if config.get(key):
            flags.append(f"--{key} {config[key]}")
    for key in ("latent_to_every_step", "tie_word_embeddings", "bidirectional_encoder", "locked_dropout"):
        if config.get(key):
            flags.append(f"--{key} true")
    if (config.get("num_layers") or 1) > 1:
        flags.append(f"--num_layers {config['num_layers']}")
    arguments = applied_settings(record["training_arguments"], language_model=is_language_model(config))
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
    return str(value).lower() if isinstance(value, bool) else str(value)


def descriptive_name(config: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """A name for a model without a Hub id: what it was trained on and its sizes, e.g. `vaelm-ptb-350-512-32`."""
    dataset = public_dataset_flag(list(record.get("datasets", [])))
    data = dataset.split()[-1].split("/")[-1] if dataset else "custom-data"
    return f"vaelm-{data}-{config.get('embedding_size')}-{config.get('hidden_size')}-{config.get('latent_size')}"


def write_model_card(
    model_dir: str | Path,
    trainer: Trainer | None = None,
    dataset: str | None = None,
    repo_id: str | None = None,
    license: str = DEFAULT_LICENSE,
    extra_datasets: list[str] | None = None,
    load_path: str | None = None,
) -> Path:
    """
    Write `README.md` (the model card) into a model folder; with a trainer, also the training record and curves.

    With `trainer`, the model, tokenizer and config come from it (the folder may not hold them yet), and
    `training_record.json` and `training_curves.png` are (re)written. Without it, they are read from the folder,
    and an existing training record is kept. Sample generation failing never stops the card from being written.

    Args:
        model_dir (`str` or `Path`): the model folder.
        trainer (`Trainer`, *optional*): the trainer of a run that just finished.
        dataset (`str`, *optional*): the run's `--dataset` or `--data_dir` (kept from the record when omitted).
        repo_id (`str`, *optional*): the Hub id to show in the examples (default: `--hub_model_id` or the folder).
        license (`str`, *optional*, defaults to `"apache-2.0"`): the card's license.
        extra_datasets (`list[str]`, *optional*): more Hub dataset ids for the front matter.
        load_path (`str`, *optional*): what the usage snippets load when the model has no Hub id (e.g. the bundled
            model's path in the repository); default: the model's name, i.e. a folder of that name.

    Returns:
        `Path`: the card's path.
    """
    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record_path = folder / TRAINING_RECORD_FILE
    previous = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    if trainer is not None:
        record = training_record(trainer, dataset)
        if dataset is None and previous:
            record["dataset"], record["datasets"] = previous.get("dataset"), previous.get("datasets", [])
        record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        plot_training_curves(trainer.state.log_history, folder / TRAINING_CURVES_FILE,
                             language_model=is_language_model(trainer.model.config.to_dict()))
        _draw_latent_map(trainer, folder)
        model, tokenizer = trainer.model, trainer.processing_class
    else:
        record = previous
        check_model_folder(folder)
        model, tokenizer = load_model_and_tokenizer(folder)
    config = model.config.to_dict()
    evaluation = find_evaluation_results(folder)
    name = (repo_id or record.get("hub_model_id") or "").split("/")[-1] or descriptive_name(config, record)
    # Without a Hub id, the snippets load the folder by its name (after vaelm-push, its id replaces it).
    shown_id = repo_id or record.get("hub_model_id") or load_path or name
    data = card_metadata(config, record, evaluation, license, extra_datasets or [], model_name=name)
    for key, value in _space_keys(folder).items():
        setattr(data, key, value)
    body = render_card_body(
        name=name, repo_id=shown_id, config=config, record=record, evaluation=evaluation,
        examples=card_examples(model, tokenizer), has_curves=(folder / TRAINING_CURVES_FILE).is_file(),
        num_parameters=model.num_parameters(), has_latent_map=(folder / LATENT_MAP_FILE).is_file(),
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{redact_tokens(body)}")
    path = folder / CARD_FILE
    card.save(path)
    return path


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
    figure, axes = plt.subplots(1, 1 if language_model else 3, figsize=(5, 3.8) if language_model else (14, 3.8), squeeze=False)
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
    except Exception as error:  # noqa: BLE001 - the card matters more than one of its pictures
        logger.warning("The model card shows no latent map: %s", error)


def _space_keys(folder: Path) -> dict[str, Any]:
    """The Space keys of the current card's front matter, when the folder holds an exported demo (`app.py`)."""
    path = folder / CARD_FILE
    if not (folder / "app.py").is_file() or not path.is_file():
        return {}
    current = ModelCard.load(path).data.to_dict()
    return {key: current[key] for key in SPACE_CARD_KEYS if key in current}


# ------------------------------------------------------------------------------------------------ pushing
def _is_connection_error(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError) or type(error).__name__ in ("ConnectError", "ConnectTimeout", "ProxyError"):
            return True
        error = error.__cause__ or error.__context__
    return False


def _refuse_files_with_token(folder: Path, token: str | None) -> None:
    """Raise if any file to be uploaded contains the token (e.g. `training_args.bin` of a run given --hub_token)."""
    if not token:
        return
    needle = token.encode()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or any(fnmatch.fnmatch(relative, pattern) for pattern in REPO_IGNORE_PATTERNS):
            continue
        if needle in path.read_bytes():
            raise PermissionError(
                f"{relative} contains your Hub token, so it is not pushed (a run given --hub_token pickles it into "
                "training_args.bin). Delete that file, or train with HF_TOKEN / `hf auth login` instead."
            )


def push_model_folder(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    refresh_card: bool = True,
    license: str = DEFAULT_LICENSE,
    extra_datasets: list[str] | None = None,
) -> CommitInfo:
    """
    Push a saved model folder (model, tokenizer, custom code, card, plot) to the Hub in one commit.

    Args:
        model_dir (`str` or `Path`): the folder `vaelm-train` wrote.
        repo_id (`str`): `ORG/NAME`; the repository is created when missing.
        private (`bool`, *optional*, defaults to `False`): create the repository as private.
        revision (`str`, *optional*): a branch to push to (created from `main` when missing).
        commit_message (`str`, *optional*): the commit title.
        token (`str`, *optional*): a write token; default `HF_TOKEN` or the token of `hf auth login`. Never logged.
        refresh_card (`bool`, *optional*, defaults to `True`): rewrite `README.md` first, so that it shows the repo
            id and any evaluation results added since training.
        license (`str`, *optional*, defaults to `"apache-2.0"`): the card's license.
        extra_datasets (`list[str]`, *optional*): Hub dataset ids to list in the card.

    Returns:
        `CommitInfo`: the commit (`oid`, `commit_url`).

    Raises:
        `FileNotFoundError`: the folder is not a saved model. `ConnectionError`: the Hub endpoint cannot be
        reached. `PermissionError`: the token was refused, or a file to upload contains it.
    """
    folder = check_model_folder(model_dir)
    resolved_token = token or get_token()
    _refuse_files_with_token(folder, resolved_token)
    if refresh_card:
        write_model_card(folder, repo_id=repo_id, license=license, extra_datasets=extra_datasets)
    api = HfApi(token=token, library_name="vaelm", library_version=__version__)
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_url.repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_url.repo_id,
            revision=revision,
            commit_message=commit_message or f"Upload {folder.resolve().name} with vaelm",
            ignore_patterns=list(REPO_IGNORE_PATTERNS),
        )
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise PermissionError(
                f"The Hub at {api.endpoint} refused to let this token write to {repo_id} (HTTP {status}). Log in with "
                "`hf auth login`, or set HF_TOKEN (or --token) to a token with write access."
            ) from None
        raise RuntimeError(redact_tokens(f"Pushing to {repo_id} at {api.endpoint} failed: {error}", resolved_token)) from None
    except Exception as error:
        if _is_connection_error(error):
            raise ConnectionError(
                f"Cannot reach the Hub at {api.endpoint} ({type(error).__name__}: {redact_tokens(str(error), resolved_token)}). "
                "Check your network, or HF_ENDPOINT if you set it."
            ) from None
        raise
    logger.info("Pushed %s to %s (commit %s).", folder, repo_url.repo_id, commit.oid)
    return commit


__all__ = [
    "CARD_FILE",
    "REPO_IGNORE_PATTERNS",
    "TRAINING_RECORD_FILE",
    "card_examples",
    "check_model_folder",
    "dataset_ids",
    "find_evaluation_results",
    "plot_training_curves",
    "push_model_folder",
    "redact_tokens",
    "write_model_card",
]
