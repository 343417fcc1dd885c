"""The model card of a saved model folder: `README.md`, rendered from what the folder holds.

The card is a function of the folder: architecture from `config.json`, training settings from
`training_record.json` (which [`vaelm.training.record`] writes at the end of training, with the training curves and
the latent map), evaluation figures from the JSON that `vaelm-evaluate --output` wrote into the folder, the command
that reproduces the run ([`vaelm.hub.reproduce`]), and a few prior samples and a homotopy decoded by
`vaelm.generation` when it can. It is built with `huggingface_hub.ModelCard`.

`vaelm-train` writes it at the end of training (and its `--push_to_hub` uploads it through the Trainer's
`create_model_card`); `vaelm-push` ([`vaelm.hub.push`]) renders it again for the repository id into what it uploads,
so both produce the same repository files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..configuration_vaelm import VAELMConfig, config_has_latent
from ..evaluation.reconstruction import reconstruction_paragraph
from ..generation.decoding import DecodingConfig
from ..generation.sentence_vae import SentenceVAE
from ..pretrained.loading import check_model_folder, load_model_and_tokenizer
from ..pretrained.model_folder import (
    CARD_FILE,
    EVALUATION_FILES,
    LATENT_MAP_FILE,
    SPACE_APP_FILE,
    SPACE_FRONT_MATTER_KEYS,
    TRAINING_CURVES_FILE,
    TRAINING_RECORD_FILE,
)
from ..pretrained.storage import COMPUTE_DTYPE, stored_dtype
from .reproduce import applied_settings, public_command, public_dataset_flag, training_command
from .tokens import redact_tokens

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerBase

    from ..modeling_vaelm import VAELMModel

logger = logging.getLogger(__name__)

DEFAULT_LICENSE = "apache-2.0"
CARD_TAGS = ["vae", "text-generation"]  # and the cell type (VAELMConfig.cell_type)
EVALUATION_KEYS = (
    "nll",
    "ppl",
    "elbo",
    "elbo_ppl",
    "rec",
    "kl",
    "mi",
    "au",
    "latent_size",
    "sentences",
    "tokens",
    "iw_samples",
)
CARD_SAMPLE_SEED = 0


# ------------------------------------------------------------------------------------------------ what the card says
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


def card_examples(
    model: VAELMModel, tokenizer: PreTrainedTokenizerBase, num_samples: int = 5, steps: int = 3
) -> tuple[list[str], list[str], str | None]:
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
            language_model = not model.config.has_latent
            strategy = "sample" if language_model else "greedy"
            decoding = DecodingConfig(strategy=strategy, suppress_unk=True)
            samples = [item["text"] for item in vae.sample_prior(num_samples, decoding)]
            path = []
            # A plain language model (latent_size 0) has no posterior, so no homotopy.
            if not language_model and len(samples) >= 2 and samples[0].strip() and samples[1].strip():
                path = [
                    item["text"]
                    for item in vae.homotopy(samples[0], samples[1], steps=steps, mode="linear", decoding=decoding)
                ]
        return samples, path, None
    except Exception as error:  # the card must be written even when decoding fails
        logger.warning("Model card: samples could not be generated (%s: %s).", type(error).__name__, error)
        return [], [], f"{type(error).__name__}: {error}"
    finally:
        model.train(was_training)


def card_metadata(
    config: Mapping[str, Any],
    record: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
    license: str,
    extra_datasets: list[str],
    model_name: str | None = None,
) -> ModelCardData:
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
            task_type="text-generation",
            dataset_type=datasets[0],
            dataset_name=datasets[0],
            dataset_split=str(evaluation.get("split", "test")),
        )
        eval_results = [
            EvalResult(
                metric_type="nll",
                metric_name="IW-NLL (nats per sentence)",
                metric_value=float(evaluation["nll"]),
                **common,
            )
        ]
        if "ppl" in evaluation:
            eval_results.append(
                EvalResult(
                    metric_type="perplexity",
                    metric_name="IW perplexity",
                    metric_value=float(evaluation["ppl"]),
                    **common,
                )
            )
    return ModelCardData(
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=[*CARD_TAGS[:1], str(config.get("cell_type") or VAELMConfig.cell_type), *CARD_TAGS[1:]],
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
    averaged = started.get("averaged_with") or []
    if averaged:
        names = ", ".join(str(entry.get("model")) for entry in averaged)
        trained += f", its weights averaged with those of {names} (`--average_with`)"
    return (
        f"This run {how} {started.get('model')} (`--{started.get('flag')}`){trained}. The table gives this stage; "
        "the command after it repeats every recorded stage."
    )


def _table(rows: list[tuple[str, Any]]) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


# The last section of every card.
CITATION_SECTION = [
    "## Citation",
    """```bibtex
@inproceedings{bowman2016generating,
  title     = {Generating Sentences from a Continuous Space},
  author    = {Bowman, Samuel R. and Vilnis, Luke and Vinyals, Oriol and Dai, Andrew M. and Jozefowicz, Rafal and Bengio, Samy},
  booktitle = {Proceedings of the 20th SIGNLL Conference on Computational Natural Language Learning},
  year      = {2016}
}
```""",
]


def render_card_body(
    name: str,
    repo_id: str,
    config: Mapping[str, Any],
    record: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
    examples: tuple[list[str], list[str], str | None],
    has_curves: bool,
    num_parameters: int | None,
    has_latent_map: bool = False,
    weights_dtype: str | None = None,
) -> str:
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
        weights_dtype (`str`, *optional*): the dtype the weights are stored in (from [`stored_dtype`]).
    """
    language_model = not config_has_latent(config)
    cell = str(config.get("cell_type") or VAELMConfig.cell_type).upper()
    parts = [
        f"# {name}",
        _about(cell, language_model),
        *_model_section(config, cell, language_model, num_parameters, weights_dtype),
        *_training_section(config, record, language_model, has_curves, has_latent_map),
        *_evaluation_section(evaluation, repo_id, record),
        *_samples_section(examples, repo_id, language_model),
        *_usage_section(repo_id, language_model),
        *CITATION_SECTION,
    ]
    return "\n\n".join(parts) + "\n"


def _about(cell: str, language_model: bool) -> str:
    """The opening paragraph: what kind of model this is."""
    article = "An" if cell == "LSTM" else "A"
    if language_model:
        return (
            f"A plain {cell} language model, trained with vaelm as the baseline that its sentence VAEs (Bowman et al. "
            "2016, *Generating Sentences from a Continuous Space*) have to beat: the VAE's decoder without the latent "
            "variable (`--latent_size 0`), trained the same way. Its NLL is exact; it samples sentences, but has no "
            "posterior, so no reconstruction or homotopy."
        )
    return (
        "A sentence-level variational auto-encoder language model (Bowman et al. 2016, *Generating Sentences from a "
        f"Continuous Space*), trained with vaelm. {article} {cell} encoder maps a sentence to a "
        f"diagonal Gaussian q(z|x); {article.lower()} {cell} decoder whose initial state is computed from z generates the sentence back. "
        "Sampling z from N(0, I) generates new sentences; moving z between two sentences gives a homotopy."
    )


def _model_section(
    config: Mapping[str, Any], cell: str, language_model: bool, num_parameters: int | None, weights_dtype: str | None
) -> list[str]:
    """The "Model" section: the architecture table."""
    architecture = [
        ("vocabulary size", config.get("vocab_size")),
        ("embedding size", config.get("embedding_size")),
        (f"{cell} hidden size", config.get("hidden_size")),
        ("latent size", config.get("latent_size")),
        (f"{cell} layers", config.get("num_layers")),
        ("bidirectional encoder", config.get("bidirectional_encoder")),
        ("word dropout", config.get("word_dropout")),
        ("z fed to every decoder step", config.get("latent_to_every_step")),
        ("tied word embeddings", config.get("tie_word_embeddings")),
        ("language", config.get("lang")),
        ("segmentation", config.get("segmentation")),
        ("longest training sentence (words)", config.get("max_sentence_length")),
    ]
    if language_model:
        architecture = [
            (key, value)
            for key, value in architecture
            if key not in ("bidirectional encoder", "z fed to every decoder step")
        ]
    if num_parameters is not None:
        architecture.append(("parameters", f"{num_parameters:,}"))
    if weights_dtype is not None:  # a half-precision file is widened as it loads: say so, it explains the size
        computed = "" if weights_dtype == COMPUTE_DTYPE else f" (loaded and computed in {COMPUTE_DTYPE})"
        architecture.append(("weights stored in", f"{weights_dtype}{computed}"))
    return ["## Model", _table(architecture)]


def _training_section(
    config: Mapping[str, Any],
    record: Mapping[str, Any],
    language_model: bool,
    has_curves: bool,
    has_latent_map: bool,
) -> list[str]:
    """The "Training" section: where the model started, the settings, the reproduce command, final figures and curves."""
    parts = ["## Training"]
    if record:
        shown_data = (record.get("dataset") or "not recorded").replace("local folder ", "private text files: ")
        facts = [
            ("dataset", ", ".join(record.get("datasets") or []) or shown_data),
            ("steps", record.get("global_step")),
            ("processes", record.get("world_size")),
            ("sentences per step", record.get("total_train_batch_size")),
        ]
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
            parts.append(
                f"Validation figures at the end of training (nats per sentence; {kind}):\n\n"
                + _table([(key, value) for key, value in sorted(final.items())])
            )
    else:
        parts.append("The training run was not recorded with this folder (no `training_record.json`).")
    if has_curves:
        shown = "training and validation NLL" if language_model else "reconstruction, KL, β and validation ELBO"
        parts.append(f"![Training curves: {shown}]({TRAINING_CURVES_FILE})")
    if has_latent_map:
        parts.append(
            f"![Latent map: posterior means of validation sentences, 2-D PCA, coloured by length]({LATENT_MAP_FILE})"
        )
    return parts


def _evaluation_section(evaluation: Mapping[str, Any] | None, repo_id: str, record: Mapping[str, Any]) -> list[str]:
    """The "Evaluation" section: the protocol's figures, reconstruction, and the command that reproduces them."""
    parts = ["## Evaluation"]
    if evaluation:
        rows = [(key, evaluation[key]) for key in EVALUATION_KEYS if key in evaluation]
        rows += [(key, evaluation[key]) for key in ("split", "max_sentences") if evaluation.get(key) is not None]
        parts.append(
            "Importance-weighted NLL and the rest of the protocol of He et al. (2019), in nats per sentence; "
            "PPL counts the end-of-sentence token.\n\n" + _table(rows)
        )
        if reconstruction_paragraph(evaluation):
            parts.append(reconstruction_paragraph(evaluation))
        if evaluation.get("command"):
            command = public_command(evaluation["command"], repo_id, record.get("datasets", []))
            parts.append(f"Reproduce with:\n\n```bash\n{command}\n```")
    else:
        parts.append(
            f"No evaluation results yet: run `vaelm-evaluate --model {repo_id} --data_dir DATA --split test "
            "--output MODEL_DIR/eval_results.json` and push again to add them here."
        )
    return parts


def _samples_section(
    examples: tuple[list[str], list[str], str | None], repo_id: str, language_model: bool
) -> list[str]:
    """The "Samples" section: prior samples and a homotopy, or why there are none."""
    samples, homotopy, reason = examples
    parts = ["## Samples"]
    if samples:
        how = (
            "Sentences drawn by ancestral sampling (seed 0; greedy decoding would give one sentence)"
            if language_model
            else "Sentences decoded greedily from z ~ N(0, I) (seed 0)"
        )
        parts.append(
            f"{how}, `<unk>` suppressed as `vaelm-sample` does by default:\n\n"
            + "\n".join(f"- {s or '*(empty sentence)*'}" for s in samples)
        )
        if homotopy:
            parts.append(
                "A linear homotopy between the first two samples' posterior means:\n\n"
                + "\n".join(f"{i}. {s or '*(empty sentence)*'}" for i, s in enumerate(homotopy, 1))
            )
    else:
        parts.append(
            f"Samples could not be generated when this card was written ({reason}). Generate some with "
            f"`vaelm-sample --model {repo_id} --num 5`."
        )
    return parts


def _usage_section(repo_id: str, language_model: bool) -> list[str]:
    """The "How to use" section: with vaelm, with transformers' pipelines alone, and the model's forward pass."""
    if language_model:  # no posterior: no homotopy, no encoding, no reconstruction
        commands = f"vaelm-sample --model {repo_id} --num 5 --strategy sample"
        pipelines = f"""from transformers import pipeline

generator = pipeline("text-generation", model="{repo_id}", trust_remote_code=True)
print(generator("the company said")[0]["generated_text"])"""
        forward = "output = model(**batch)  # loss = exact NLL per sentence\nprint(output.loss.item())"
    else:
        commands = (
            f"vaelm-sample --model {repo_id} --num 5\n"
            f'vaelm-homotopy --model {repo_id} --start "SENTENCE ONE" --end "SENTENCE TWO" --steps 3'
        )
        pipelines = f"""from transformers import pipeline, set_seed

generator = pipeline("text-generation", model="{repo_id}", trust_remote_code=True)
set_seed(0)                                        # z is drawn from the prior; or pass z=... (1, latent size)
print(generator("the company said")[0]["generated_text"])

vae = pipeline("sentence-vae", model="{repo_id}", trust_remote_code=True)
vae("the company said it will buy shares", mode="encode")   # posterior mean and log-variance
vae("the company said it will buy shares")                  # reconstruction from the posterior mean
vae(3, mode="sample", seed=0)                               # prior samples
vae({{"start": "the company said it will buy shares", "end": "investors are worried"}}, mode="interpolate", steps=3)"""
        forward = (
            "output = model(**batch, sample_latent=False)  # loss = -ELBO; mu, logvar = q(z|x)\n"
            "print(output.loss.item(), output.mu)"
        )
    return [
        "## How to use",
        "With vaelm installed:",
        f"""```python
from vaelm import VAELMModel, load_tokenizer

model = VAELMModel.from_pretrained("{repo_id}")
tokenizer = load_tokenizer("{repo_id}")
```

```bash
{commands}
```""",
        "Without vaelm, with transformers alone (the model and pipeline code come with the model):",
        f"""```python
{pipelines}
```""",
        f"The model itself ({'NLL' if language_model else 'ELBO, posterior'}) with transformers alone:",
        f"""```python
import torch
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)
batch = tokenizer(["the company said it will buy shares </s>"], return_tensors="pt")  # a whole sentence ends with </s>
with torch.no_grad():
    {forward}
```""",
        "Pass `revision=` to `from_pretrained` to load an earlier commit or another branch.",
    ]


def descriptive_name(config: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """A name for a model without a Hub id: what it was trained on and its sizes, e.g. `vaelm-ptb-350-512-32`."""
    dataset = public_dataset_flag(list(record.get("datasets", [])))
    data = dataset.split()[-1].split("/")[-1] if dataset else "custom-data"
    return f"vaelm-{data}-{config.get('embedding_size')}-{config.get('hidden_size')}-{config.get('latent_size')}"


# ------------------------------------------------------------------------------------------------ the whole card
def render_model_card(
    model_dir: str | Path,
    repo_id: str | None = None,
    license: str = DEFAULT_LICENSE,
    extra_datasets: list[str] | None = None,
    load_path: str | None = None,
    model: VAELMModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    weights_dtype: str | None = None,
) -> ModelCard:
    """
    The model card of a model folder (front matter and Markdown), without writing anything.

    The training record, curves, latent map and evaluation results are read from the folder; the model and
    tokenizer too, unless given (a run that just finished passes its own: the folder may not hold them yet). Sample
    generation failing never stops the card from being rendered.

    Args:
        model_dir (`str` or `Path`): the model folder.
        repo_id (`str`, *optional*): the Hub id to show in the examples (default: `--hub_model_id` or the folder).
        license (`str`, *optional*, defaults to `"apache-2.0"`): the card's license.
        extra_datasets (`list[str]`, *optional*): more Hub dataset ids for the front matter.
        load_path (`str`, *optional*): what the usage snippets load when the model has no Hub id (e.g. the bundled
            model's path in the repository); default: the model's name, i.e. a folder of that name.
        model ([`VAELMModel`], *optional*): the model (default: loaded from the folder).
        tokenizer (`PreTrainedTokenizerBase`, *optional*): its tokenizer (default: loaded from the folder).
        weights_dtype (`str`, *optional*): the dtype the weights are stored in (default: read from the folder's files;
            a push that stores them in another dtype passes it).

    Returns:
        `ModelCard`: the card; `card.save(path)` writes it, `str(card)` is its text.
    """
    folder = Path(model_dir)
    record_path = folder / TRAINING_RECORD_FILE
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    if model is None or tokenizer is None:
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
        name=name,
        repo_id=shown_id,
        config=config,
        record=record,
        evaluation=evaluation,
        examples=card_examples(model, tokenizer),
        has_curves=(folder / TRAINING_CURVES_FILE).is_file(),
        num_parameters=model.num_parameters(),
        has_latent_map=(folder / LATENT_MAP_FILE).is_file(),
        weights_dtype=weights_dtype or stored_dtype(folder),
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{redact_tokens(body)}")


def write_model_card(model_dir: str | Path, **options: Any) -> Path:
    """
    Write `README.md`, the model card that [`render_model_card`] renders, into a model folder.

    A training run writes its record, curves and card together with [`vaelm.training.record.write_training_card`];
    `vaelm-push` uploads a card rendered for the repository without writing it here.

    Args:
        model_dir (`str` or `Path`): the model folder.
        options: [`render_model_card`]'s keyword arguments: `repo_id`, `license`, `extra_datasets`, `load_path`,
            `model`, `tokenizer`, `weights_dtype`.

    Returns:
        `Path`: the card's path.
    """
    path = Path(model_dir) / CARD_FILE
    render_model_card(model_dir, **options).save(path)
    return path


def _space_keys(folder: Path) -> dict[str, Any]:
    """The Space keys of the current card's front matter, when the folder holds an exported demo (`app.py`)."""
    path = folder / CARD_FILE
    if not (folder / SPACE_APP_FILE).is_file() or not path.is_file():
        return {}
    current = ModelCard.load(path).data.to_dict()
    return {key: current[key] for key in SPACE_FRONT_MATTER_KEYS if key in current}


__all__ = [
    "card_examples",
    "card_metadata",
    "find_evaluation_results",
    "render_card_body",
    "render_model_card",
    "write_model_card",
]
