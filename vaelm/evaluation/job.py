"""The evaluation job of `vaelm-evaluate`: load a model, read and tokenize a split, run the protocol of
[`vaelm.evaluation`], write the `--output` files. Its settings are [`~vaelm.evaluation.settings.EvaluationArguments`];
the command sets up logging and threads before it calls [`run_evaluation`].
"""

import json
import logging
import shlex
from pathlib import Path

from ..corpora.sources import load_text_splits, raw_text_splits, read_sentences, split_files
from ..pretrained import DEFAULT_MODEL
from ..pretrained.loading import default_device, load_model_and_tokenizer
from ..runtime.precision import resolve_bf16
from .metrics import evaluate_sequences, tokenize_sentences
from .reconstruction import reconstruction_line, reconstruction_summary
from .settings import EvaluationArguments

logger = logging.getLogger(__name__)


def load_split_texts(arguments: EvaluationArguments, sentence_split: bool = False, lang: str = "en") -> list[str]:
    """
    The raw sentences of the split, in file order, the first `--max_sentences` of them when given.

    Args:
        arguments ([`EvaluationArguments`]): `data_dir` or `dataset`, `split`, `max_sentences`.
        sentence_split (`bool`, *optional*, defaults to `False`): the model was trained on running text
            (`config.sentence_split`): `data_dir` is cut into sentences the same way.
        lang (`str`, *optional*, defaults to `"en"`): the model's language.
    """
    if arguments.data_dir is not None and sentence_split:
        texts = raw_text_splits(arguments.data_dir, (arguments.split,), lang)[arguments.split]
    elif arguments.data_dir is not None:
        texts = read_sentences(split_files(arguments.data_dir, (arguments.split,))[arguments.split])
    else:
        loaded = load_text_splits(
            dataset=arguments.dataset, text_column=arguments.text_column, splits=(arguments.split,)
        )
        texts = list(loaded[arguments.split]["text"])
    return texts[: arguments.max_sentences] if arguments.max_sentences else texts


def run_evaluation(arguments: EvaluationArguments, command: str | None = None) -> dict:
    """
    Everything `vaelm-evaluate` does except printing: load, tokenize, evaluate, write `--output` files.

    Args:
        arguments ([`EvaluationArguments`]): parsed flags.
        command (`str`, *optional*): the command line, recorded in the result.

    Returns:
        `dict`: the summary, with `model`, `split`, `data` and `command` added.
    """
    model_name = arguments.model or DEFAULT_MODEL
    hub_kwargs = {"revision": arguments.revision} if arguments.revision else {}
    model, tokenizer = load_model_and_tokenizer(model_name, device=arguments.device or default_device(), **hub_kwargs)
    texts = load_split_texts(arguments, getattr(model.config, "sentence_split", False), model.config.lang)
    sequences = tokenize_sentences(texts, tokenizer, model.config.segmentation)
    logger.info(
        "Evaluating %d %s sentences (%d scored tokens) with K=%d on %s.",
        len(sequences),
        arguments.split,
        sum(len(s) - 1 for s in sequences),
        arguments.iw_samples,
        next(model.parameters()).device,
    )
    result = evaluate_sequences(
        model,
        sequences,
        iw_samples=arguments.iw_samples,
        batch_size=arguments.batch_size,
        chunk_size=arguments.chunk_size,
        seed=arguments.seed,
        progress=not arguments.no_progress,
        progress_file=arguments.progress_file,
        bf16=resolve_bf16(arguments.bf16, next(model.parameters()).device, "vaelm-evaluate"),
    )
    summary = result.summary()
    summary.update(
        reconstruction_summary(model, sequences, arguments.reconstruction_sentences, tokenizer, arguments.batch_size)
    )
    summary.update(
        model=model_name,
        split=arguments.split,
        data=arguments.data_dir or arguments.dataset,
        max_sentences=arguments.max_sentences,
        command=command,
    )
    if arguments.output:
        _write(Path(arguments.output), json.dumps(summary, indent=2) + "\n")
    if not arguments.per_dimension:  # 32+ numbers that bury the figures a person looks for; kept in --output
        summary.pop("posterior_mean_variances", None)
    if arguments.per_sentence_output:
        lines = [json.dumps({"text": text, **record}) for text, record in zip(texts, result.per_sentence())]
        _write(Path(arguments.per_sentence_output), "\n".join(lines) + "\n")
    return summary


def human_summary(summary: dict) -> str:
    """
    Three lines a person reads at a glance: the likelihoods, the use of the latent code, and the cost; a fourth on
    reconstruction from the posterior mean when there is one.

    Args:
        summary (`dict`): what [`run_evaluation`] returns.
    """
    return (
        f"{summary['split']}: {summary['sentences']:,} sentences, {summary['tokens']:,} scored tokens, "
        f"K = {summary['iw_samples']}, {summary['seconds']:.1f} s\n"
        f"  NLL {summary['nll']:.2f}  PPL {summary['ppl']:.2f}  ELBO {summary['elbo']:.2f} "
        f"(nats per sentence; ELBO PPL {summary['elbo_ppl']:.2f})\n"
        f"  KL {summary['kl']:.2f}  MI {summary['mi']:.2f}  AU {summary['au']}/{summary['latent_size']}"
        + reconstruction_line(summary)
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def command_line(program: str, argv: list[str]) -> str:
    """
    The command as a user would retype it in a shell.

    Args:
        program (`str`): the command name.
        argv (`list[str]`): its arguments.
    """
    return shlex.join([program, *argv])


__all__ = ["command_line", "load_split_texts", "run_evaluation"]
