"""How much of a sentence its latent code carries: greedy reconstruction from the posterior mean, scored with corpus
BLEU-4, the exact-match rate and token accuracy, and the reconstruction term at the posterior mean.

Likelihood alone hides how little a VAE's code may carry (a decoder strong enough to ignore z scores well). This is
the measure beside it that `vaelm-evaluate` reports (`--reconstruction_sentences`), the model card shows and
`results/frontier/reconstruction_frontier.sh` plots against IW-NLL:

- each sentence x is encoded, and its posterior mean μ = E[q(z|x)] is decoded greedily (`model.generate`, the
  model's own length limit `max_sentence_length + 1`), exactly as the demo's Reconstruct tab does;
- `<unk>` is **allowed** (it is not suppressed as `vaelm-sample` does by default): a reference holds `<unk>` where the
  corpus has it, and the hypothesis may reproduce it. The summary says so (`unk_allowed: true`);
- hypotheses and references are compared as the model's tokens (words, or jieba words / characters for Chinese),
  without `<s>` and `</s>`;
- corpus BLEU-4 (Papineni et al. 2002): clipped n-gram matches and n-gram counts summed over the whole corpus for
  n = 1…4, their geometric mean (0 when some order has no match, no smoothing), times the brevity penalty
  exp(1 − r/c) when the hypotheses' length c is at most the references' r; reported on a 0–100 scale;
- exact match: the share of sentences whose hypothesis is the reference, token for token;
- token accuracy: the share of reference positions (words and `</s>`) whose reconstructed token is the same at the
  same position (the hypothesis ends with `</s>` too; a word dropped or inserted shifts everything after it);
- the reconstruction term at the mean: -log p(x|z = μ), nats per sentence over the same sentences (teacher-forced,
  as the ELBO's term, but at μ instead of a sample): the likelihood side of what greedy decoding shows.

A language model (`latent_size` 0) has no posterior, hence no reconstruction: [`reconstruction_summary`] returns
nothing for it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..configuration_vaelm import config_has_latent
from ..generation.decoding import DecodingConfig
from ..generation.sentence_vae import SentenceVAE
from ..modeling_vaelm import VAELMModel
from ..runtime.precision import full_fp32

logger = logging.getLogger(__name__)

BLEU_ORDER = 4
# The decoding this measure uses, stated in every summary.
DECODING = "greedy from the posterior mean, <unk> allowed"


# ------------------------------------------------------------------------------------------------ BLEU
@dataclass
class BleuScore:
    """
    Corpus BLEU and its parts.

    Args:
        bleu (`float`): the score, 0–100.
        precisions (`list[float]`): modified n-gram precision of each order, 0–100.
        brevity_penalty (`float`): 1, or exp(1 − r/c) when the hypotheses are not longer than the references.
        hypothesis_length (`int`): tokens in all hypotheses (c).
        reference_length (`int`): tokens in all references (r).
    """

    bleu: float
    precisions: list[float]
    brevity_penalty: float
    hypothesis_length: int
    reference_length: int


def _ngrams(tokens: Sequence, order: int) -> Counter:
    return Counter(tuple(tokens[start : start + order]) for start in range(len(tokens) - order + 1))


def corpus_bleu(
    hypotheses: Sequence[Sequence], references: Sequence[Sequence], max_order: int = BLEU_ORDER
) -> BleuScore:
    """
    Corpus BLEU with one reference per sentence, no smoothing (Papineni et al. 2002; sacrebleu's `smooth_method="none"`
    on already tokenized text).

    Args:
        hypotheses (`Sequence[Sequence]`): tokens (strings or ids) of each output.
        references (`Sequence[Sequence]`): tokens of each reference, in the same order.
        max_order (`int`, *optional*, defaults to 4): the longest n-gram.

    Returns:
        [`BleuScore`]: BLEU-`max_order` on a 0–100 scale and its parts.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"BLEU needs one reference per hypothesis, got {len(hypotheses)} and {len(references)}.")
    matches, totals = [0] * max_order, [0] * max_order
    hypothesis_length = reference_length = 0
    for hypothesis, reference in zip(hypotheses, references):
        hypothesis, reference = list(hypothesis), list(reference)
        hypothesis_length += len(hypothesis)
        reference_length += len(reference)
        for order in range(1, max_order + 1):
            reference_counts = _ngrams(reference, order)
            hypothesis_counts = _ngrams(hypothesis, order)
            matches[order - 1] += sum(min(count, reference_counts[gram]) for gram, count in hypothesis_counts.items())
            totals[order - 1] += max(len(hypothesis) - order + 1, 0)
    precisions = [100.0 * match / total if total else 0.0 for match, total in zip(matches, totals)]
    if hypothesis_length == 0:
        return BleuScore(0.0, precisions, 0.0, 0, reference_length)
    penalty = 1.0 if hypothesis_length > reference_length else math.exp(1.0 - reference_length / hypothesis_length)
    if min(matches) == 0:
        return BleuScore(0.0, precisions, penalty, hypothesis_length, reference_length)
    log_mean = sum(math.log(match / total) for match, total in zip(matches, totals)) / max_order
    return BleuScore(100.0 * penalty * math.exp(log_mean), precisions, penalty, hypothesis_length, reference_length)


# ------------------------------------------------------------------------------------------------ reconstruction
@dataclass
class ReconstructionResult:
    """
    Greedy reconstructions from the posterior mean and their scores.

    Args:
        hypotheses (`list[list[int]]`): decoded token ids of each sentence, in input order, without `</s>`.
        references (`list[list[int]]`): the sentences' token ids without `<s>` and `</s>`.
        rec_at_mean (`list[float]`): -log p(x|z = μ) of each sentence, in nats.
        eos_token_id (`int`): the id of `</s>`, the last reference position of every sentence.
        seconds (`float`): encoding and decoding time.
    """

    hypotheses: list[list[int]]
    references: list[list[int]]
    rec_at_mean: list[float]
    eos_token_id: int
    seconds: float

    @property
    def token_accuracy(self) -> float:
        """The share of reference positions (words and `</s>`) whose hypothesis token is the same at that position."""
        same = total = 0
        for hypothesis, reference in zip(self.hypotheses, self.references):
            hypothesis, reference = [*hypothesis, self.eos_token_id], [*reference, self.eos_token_id]
            same += sum(h == r for h, r in zip(hypothesis, reference))
            total += len(reference)
        return same / total if total else 0.0

    @property
    def exact_matches(self) -> int:
        """Sentences reconstructed token for token."""
        return sum(hypothesis == reference for hypothesis, reference in zip(self.hypotheses, self.references))

    def summary(self) -> dict:
        """
        `bleu4` (0–100), `exact_match` (a rate, 0–1), `exact_matches`, `token_accuracy` (0–1), `rec_loss_at_mean`
        (nats per sentence), `sentences`, the BLEU parts, `decoding`, `unk_allowed` and `seconds`.
        """
        score = corpus_bleu(self.hypotheses, self.references)
        sentences = len(self.references)
        return {
            "bleu4": round(score.bleu, 4),
            "exact_match": round(self.exact_matches / sentences, 6) if sentences else 0.0,
            "exact_matches": self.exact_matches,
            "token_accuracy": round(self.token_accuracy, 6),
            "rec_loss_at_mean": round(sum(self.rec_at_mean) / sentences, 4) if sentences else 0.0,
            "sentences": sentences,
            "precisions": [round(value, 4) for value in score.precisions],
            "brevity_penalty": round(score.brevity_penalty, 6),
            "hypothesis_length": score.hypothesis_length,
            "reference_length": score.reference_length,
            "decoding": DECODING,
            "unk_allowed": True,
            "seconds": round(self.seconds, 3),
        }


@full_fp32()  # as the likelihoods: a GPU decodes what a CPU decodes
def reconstruct_sequences(
    model: VAELMModel, sequences: Sequence[Sequence[int]], tokenizer=None, batch_size: int = 64
) -> ReconstructionResult:
    """
    Decode each sentence greedily from its posterior mean (`<unk>` allowed), batching sentences of similar length.

    Args:
        model ([`VAELMModel`]): a model with a latent variable (`latent_size` > 0); its mode is restored afterwards.
        sequences (`Sequence[Sequence[int]]`): token ids `<s> w1 … wn </s>` of each sentence.
        tokenizer (*optional*): the model's tokenizer (not needed to decode ids).
        batch_size (`int`, *optional*, defaults to 64): sentences encoded and decoded together.

    Returns:
        [`ReconstructionResult`]: hypotheses and references in input order.
    """
    config = model.config
    if not config.has_latent:
        raise ValueError("A language model (latent_size 0) has no posterior, so there is nothing to reconstruct from.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    vae = SentenceVAE(model, tokenizer)
    decoding = DecodingConfig(strategy="greedy", suppress_unk=False)
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda index: (-len(sequences[index]), index))
    hypotheses: list[list[int]] = [[] for _ in sequences]
    rec_at_mean = [0.0 for _ in sequences]
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            longest = len(sequences[batch[0]])
            input_ids = torch.full((len(batch), longest), config.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, index in enumerate(batch):
                input_ids[row, : len(sequences[index])] = torch.as_tensor(list(sequences[index]), dtype=torch.long)
                attention_mask[row, : len(sequences[index])] = 1
            input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
            with torch.inference_mode():
                mu, _ = model.encode(input_ids, attention_mask)
                nll, _ = model.reconstruction_nll(input_ids, attention_mask, mu)
            for index, value in zip(batch, nll.tolist()):
                rec_at_mean[index] = value
            for index, ids in zip(batch, vae.decode_ids(mu, decoding)):
                hypotheses[index] = ids
    finally:
        model.train(was_training)
    references = [list(sequence[1:-1]) for sequence in sequences]
    return ReconstructionResult(hypotheses, references, rec_at_mean, config.eos_token_id, time.perf_counter() - started)


def reconstruction_summary(
    model: VAELMModel, sequences: Sequence[Sequence[int]], max_sentences: int, tokenizer=None, batch_size: int = 64
) -> dict:
    """
    The `reconstruction` entry of `vaelm-evaluate`'s summary, for the first `max_sentences` of the evaluated
    sentences; empty for a language model (no latent code) or when `max_sentences` is 0.

    Args:
        model ([`VAELMModel`]): the evaluated model.
        sequences (`Sequence[Sequence[int]]`): the evaluated sentences' ids, `<s> … </s>`.
        max_sentences (`int`): how many of them to reconstruct (0: none; more than there are: all).
        tokenizer (*optional*): the model's tokenizer.
        batch_size (`int`, *optional*, defaults to 64): sentences decoded together.

    Returns:
        `dict`: `{"reconstruction": {...}}` (see [`ReconstructionResult.summary`]), or `{}`.
    """
    if max_sentences <= 0:
        return {}
    if not model.config.has_latent:
        logger.info("The model has no latent variable (latent_size 0): no reconstruction to score.")
        return {}
    chosen = list(sequences[:max_sentences])
    logger.info("Reconstructing %d sentences greedily from their posterior means (<unk> allowed).", len(chosen))
    return {"reconstruction": reconstruct_sequences(model, chosen, tokenizer, batch_size).summary()}


def reconstruction_line(summary: Mapping) -> str:
    """
    The human summary's line on reconstruction (with its leading newline), or `""` when there is nothing to say.

    Args:
        summary (`Mapping`): `vaelm-evaluate`'s summary.
    """
    found = summary.get("reconstruction")
    if found:
        return (
            f"\n  reconstruction from μ ({found['sentences']:,} sentences, greedy, <unk> allowed): "
            f"BLEU-4 {found['bleu4']:.2f}  exact match {100 * found['exact_match']:.1f}%"
            + (
                f"  token accuracy {100 * found['token_accuracy']:.1f}%  rec at μ {found['rec_loss_at_mean']:.2f}"
                if "token_accuracy" in found
                else ""
            )
        )
    if not config_has_latent(summary):
        return "\n  reconstruction: none (a language model has no latent code)"
    return ""


def reconstruction_paragraph(evaluation: Mapping | None) -> str | None:
    """
    The model card's paragraph on reconstruction, when the evaluation results have it.

    Args:
        evaluation (`Mapping`, *optional*): `vaelm-evaluate` results.
    """
    found = (evaluation or {}).get("reconstruction")
    if not found:
        return None
    matches = found["exact_matches"]
    return (
        f"Reconstruction: the first {found['sentences']:,} of these sentences, decoded greedily from their posterior "
        f"mean (`<unk>` allowed), give corpus BLEU-4 **{found['bleu4']:.2f}** and an exact-match rate of "
        f"**{100 * found['exact_match']:.1f}%** ({matches:,} sentence{'' if matches == 1 else 's'})"
        + (
            f", token accuracy {100 * found['token_accuracy']:.1f}% and a reconstruction term of "
            f"{found['rec_loss_at_mean']:.2f} nats at the mean"
            if "token_accuracy" in found
            else ""
        )
        + ": how much of a sentence its latent code carries, which likelihood alone does not show."
    )


__all__ = [
    "BleuScore",
    "ReconstructionResult",
    "corpus_bleu",
    "reconstruct_sequences",
    "reconstruction_line",
    "reconstruction_paragraph",
    "reconstruction_summary",
]
