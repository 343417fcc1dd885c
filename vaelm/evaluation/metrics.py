"""Honest likelihood metrics for VAE language models: ELBO, importance-weighted NLL, PPL, KL, MI and active units.

The protocol is that of He et al. (2019) and Li et al. (2019) (docs/results.md states it with the figures):

- **ELBO** (β = 1): E_q[-log p(x|z)] + KL(q(z|x) ‖ N(0, I)). The reconstruction term is averaged over the same K
  latent samples the IW-NLL uses (a lower-variance estimate than one sample); the KL is exact.
- **IW-NLL**: -log p(x) ≈ -(logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K), z_k ~ q(z|x).
- **PPL**: exp(Σ NLL / Σ (n + 1)); the n words and `</s>` are scored, `<s>` and padding are not.
- **MI**: E_x E_q(z|x)[log q(z|x) - log q(z)], with the aggregate posterior q(z) = mean_j q(z|x_j) estimated over
  all evaluated sentences and one z per sentence.
- **AU**: latent dimensions whose variance (over sentences) of the posterior mean exceeds 0.01.

Speed: the encoder runs once per sentence. The K·B latent samples of a batch are decoded in chunks of at most
`chunk_size` rows by a forward-only LSTM or GRU loop ([`DecoderScorer`]) that reuses each sentence's input projection for
all its samples, shrinks the active rows as sentences end (no padding is ever computed), and scores one time step
at a time, so memory is bounded by `chunk_size × vocab_size` whatever K and the sentence lengths are. Sentences are
sorted by length into batches. Each sentence's latent noise comes from its own generator, seeded by the run's
seed and the sentence's index, so a sentence's figures do not depend on batching, chunking or `max_sentences`.

This module runs the protocol ([`evaluate_sequences`], [`evaluate_dataset`]); the fast decoder is
[`vaelm.evaluation.decoder_scoring`]'s, the densities, the latent noise, MI and AU [`vaelm.evaluation.estimators`]'.
"""

import functools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..corpora.sources import DataError
from ..modeling_vaelm import VAELMModel, gaussian_kl
from ..runtime.precision import full_fp32
from ..tokenization_vaelm import encode_sentences
from .decoder_scoring import DecoderScorer, reference_row_nll
from .estimators import (
    ACTIVE_UNIT_THRESHOLD,
    LOG_2PI,
    mutual_information,
    posterior_mean_variances,
    sentence_noise,
    standard_normal_log_density,
)
from .progress import FIELDS, EvaluationProgress, model_fingerprint, sentences_fingerprint
from .settings import BATCH_SIZE, CHUNK_SIZE, IW_SAMPLES, SEED

logger = logging.getLogger(__name__)

# Largest absolute difference (nats per sentence) tolerated between the fast decoder and the model's own
# `reconstruction_nll` before evaluation falls back to the model's method.
FAST_PATH_TOLERANCE = 1e-3


# ------------------------------------------------------------------------------------------------ the protocol
@dataclass
class EvaluationResult:
    """
    Per-sentence figures of an evaluation and their summary.

    Args:
        iw_nll (`torch.Tensor` of shape `(N,)`): importance-weighted -log p(x) per sentence, nats.
        rec (`torch.Tensor` of shape `(N,)`): E_q[-log p(x|z)] per sentence (mean over the K samples), nats.
        kl (`torch.Tensor` of shape `(N,)`): KL(q(z|x) ‖ N(0, I)) per sentence, nats.
        tokens (`torch.Tensor` of shape `(N,)`): scored tokens per sentence (words + `</s>`).
        mu (`torch.Tensor` of shape `(N, latent_size)`): posterior means.
        logvar (`torch.Tensor` of shape `(N, latent_size)`): posterior log-variances.
        z (`torch.Tensor` of shape `(N, latent_size)`): the first latent sample of each sentence (used for MI).
        iw_samples (`int`): K.
        seed (`int`): the seed of the latent noise.
        bf16 (`bool`): whether the vocabulary projection ran in bfloat16.
        seconds (`float`): wall time of the pass over the sentences.
        fast_path (`bool`): whether [`DecoderScorer`] was used (else the model's `reconstruction_nll`).
    """

    iw_nll: torch.Tensor
    rec: torch.Tensor
    kl: torch.Tensor
    tokens: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    iw_samples: int
    seed: int
    bf16: bool
    seconds: float
    fast_path: bool

    @property
    def elbo(self) -> torch.Tensor:
        """Negative ELBO (β = 1) per sentence: `rec + kl`, nats."""
        return self.rec + self.kl

    def summary(self) -> dict:
        """
        The reported figures: `nll`, `ppl`, `elbo`, `elbo_ppl`, `rec`, `kl`, `mi`, `au`, `latent_size`,
        `sentences`, `tokens`, `iw_samples`, plus `seed`, `bf16`, timing and the per-dimension posterior-mean
        variances. NLL, ELBO, rec and KL are nats per sentence (sums over tokens, means over sentences); the
        perplexities are exp(Σ nats / Σ tokens).
        """
        return dict(self._summary)

    @functools.cached_property
    def _summary(self) -> dict:
        sentences = int(self.iw_nll.numel())
        tokens = int(self.tokens.sum())
        iw_nll, elbo = self.iw_nll.double(), self.elbo.double()
        variances = posterior_mean_variances(self.mu)
        token_samples = tokens * self.iw_samples
        return {
            "nll": float(iw_nll.mean()),
            "ppl": math.exp(float(iw_nll.sum()) / tokens),
            "elbo": float(elbo.mean()),
            "elbo_ppl": math.exp(float(elbo.sum()) / tokens),
            "rec": float(self.rec.double().mean()),
            "kl": float(self.kl.double().mean()),
            "mi": mutual_information(self.z, self.mu, self.logvar),
            "au": int((variances > ACTIVE_UNIT_THRESHOLD).sum()),
            "latent_size": int(self.mu.size(1)),
            "sentences": sentences,
            "tokens": tokens,
            "words": tokens - sentences,
            "iw_samples": self.iw_samples,
            "seed": self.seed,
            "bf16": self.bf16,
            "posterior_mean_variances": [round(float(v), 6) for v in variances],
            "seconds": round(self.seconds, 3),
            "token_samples_per_second": round(token_samples / self.seconds, 1) if self.seconds > 0 else None,
        }

    def per_sentence(self) -> list[dict]:
        """One record per sentence, in input order: `nll`, `elbo`, `rec`, `kl`, `tokens`."""
        return [
            {"nll": float(n), "elbo": float(e), "rec": float(r), "kl": float(k), "tokens": int(t)}
            for n, e, r, k, t in zip(self.iw_nll, self.elbo, self.rec, self.kl, self.tokens)
        ]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """
    Indices grouped into batches of similar length (longest first), so that batches carry almost no padding.

    Args:
        lengths (`Sequence[int]`): length of each sentence.
        batch_size (`int`): sentences per batch.

    Returns:
        `list[list[int]]`: every index exactly once; within a batch, by non-increasing length.
    """
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _pad(sequences: list[Sequence[int]], pad_token_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(row) for row in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return input_ids.to(device), attention_mask.to(device)


def _check_sequences(sequences: Sequence[Sequence[int]], config) -> None:
    for index, sequence in enumerate(sequences):
        if len(sequence) < 2 or sequence[0] != config.bos_token_id or sequence[-1] != config.eos_token_id:
            raise ValueError(
                f"Sentence {index} is not `<s> … </s>` token ids (got {list(sequence[:5])}…): encode sentences with "
                "the model's own tokenizer, which adds <s> and </s>."
            )


@full_fp32()  # no TF32 on GPUs: the protocol's figures are float32's, as on a CPU
def evaluate_sequences(
    model: VAELMModel,
    sequences: Sequence[Sequence[int]],
    iw_samples: int = IW_SAMPLES,
    batch_size: int = BATCH_SIZE,
    chunk_size: int = CHUNK_SIZE,
    seed: int = SEED,
    bf16: bool = False,
    progress: bool = False,
    fast_path: bool = True,
    progress_file: str | os.PathLike | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """
    Run the evaluation protocol over tokenized sentences: every sentence counts, none is cut.

    Args:
        model ([`VAELMModel`]): the model; evaluated on its own device, in evaluation mode (its mode is restored).
        sequences (`Sequence[Sequence[int]]`): token ids `<s> w1 … wn </s>` of each sentence.
        iw_samples (`int`, *optional*, defaults to 500): importance samples K per sentence (≥ 1).
        batch_size (`int`, *optional*, defaults to 64): sentences encoded together; they are grouped by length.
        chunk_size (`int`, *optional*, defaults to 512): most (sentence, sample) rows decoded at once; bounds
            memory at about `chunk_size × vocab_size` floats whatever K is.
        seed (`int`, *optional*, defaults to 42): seed of the latent noise (see [`sentence_noise`]).
        bf16 (`bool`, *optional*, defaults to `False`): bfloat16 vocabulary projection (faster on hardware with
            bfloat16 matmuls; the summary stays within a few hundredths of a nat).
        progress (`bool`, *optional*, defaults to `False`): show a tqdm bar over sentences on stderr.
        fast_path (`bool`, *optional*, defaults to `True`): use [`DecoderScorer`] (checked against the model's
            `reconstruction_nll` on the first batch); `False` always uses `reconstruction_nll`.
        progress_file (`str` or `os.PathLike`, *optional*): keep the finished sentences in this file after every
            batch and, when it exists, resume from it (see [`vaelm.evaluation.progress`]); the figures equal those
            of an uninterrupted pass, and `seconds` adds up the time of every run. Deleted when the pass completes.
        on_progress (`Callable[[int, int], None]`, *optional*): called after every batch with the sentences done and
            their total (a training log's progress lines, where no bar is drawn).

    Returns:
        [`EvaluationResult`]: per-sentence figures, in input order, and `summary()`.
    """
    if iw_samples < 1 or batch_size < 1 or chunk_size < 1:
        raise ValueError(
            f"iw_samples, batch_size and chunk_size must be positive, got {iw_samples}, {batch_size}, {chunk_size}."
        )
    if len(sequences) == 0:
        raise DataError("There are no sentences to evaluate.")
    config = model.config
    _check_sequences(sequences, config)
    if not config.has_latent and iw_samples > 1:
        # No latent variable: every sample would score the same exact NLL, so one is enough (reported as K = 1).
        logger.info(
            "The model has no latent variable (latent_size 0): its NLL is exact; importance sampling is skipped."
        )
        iw_samples = 1
    device = next(model.parameters()).device
    count, latent_size = len(sequences), config.latent_size
    iw_nll, rec, kl = (torch.empty(count, dtype=torch.float64) for _ in range(3))
    mu_all, logvar_all, z_all = (torch.empty(count, latent_size) for _ in range(3))
    tokens = torch.tensor([len(sequence) - 1 for sequence in sequences], dtype=torch.long)
    saved = None
    if progress_file is not None:
        identity = {
            "model": model_fingerprint(model),
            "sentences": sentences_fingerprint(sequences),
            "iw_samples": str(iw_samples),
            "seed": str(seed),
            "bf16": str(bf16),
        }
        per_sentence = dict(zip(FIELDS, (iw_nll, rec, kl, mu_all, logvar_all, z_all)))
        saved = EvaluationProgress(progress_file, identity, per_sentence)
    was_training = model.training
    model.eval()
    use_fast = fast_path and DecoderScorer.supports(model)
    checked_fast_path = False
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            scorer = DecoderScorer(model, bf16=bf16) if use_fast else None
            bar = tqdm(
                total=count, unit="sent", desc=f"Evaluating (K={iw_samples})", disable=not progress, file=sys.stderr
            )
            done = 0  # sentences finished (tqdm's own count stays 0 while its bar is disabled)
            for batch in length_sorted_batches([len(s) for s in sequences], batch_size):
                done += len(batch)
                if saved is not None and saved.finished(batch):
                    bar.update(len(batch))
                    continue
                input_ids, attention_mask = _pad([sequences[index] for index in batch], config.pad_token_id, device)
                mu, logvar = (tensor.float() for tensor in model.encode(input_ids, attention_mask))
                noise = sentence_noise(batch, iw_samples, latent_size, seed).to(device)
                z = mu.unsqueeze(1) + noise * torch.exp(0.5 * logvar).unsqueeze(1)  # (B, K, D)
                log_q = -0.5 * (noise.pow(2) + logvar.unsqueeze(1) + LOG_2PI).sum(-1)
                log_prior = standard_normal_log_density(z)
                if use_fast and not checked_fast_path:
                    use_fast, checked_fast_path = _fast_path_agrees(model, scorer, input_ids, attention_mask, z), True
                rec_samples = _decode_all_samples(
                    model, scorer if use_fast else None, input_ids, attention_mask, z, chunk_size, bf16
                )
                log_weights = -rec_samples + log_prior - log_q  # (B, K)
                index = torch.as_tensor(batch)
                iw_nll[index] = (math.log(iw_samples) - torch.logsumexp(log_weights.double(), dim=1)).cpu()
                rec[index] = rec_samples.double().mean(1).cpu()
                kl[index] = gaussian_kl(mu, logvar).double().sum(-1).cpu()
                mu_all[index], logvar_all[index], z_all[index] = mu.cpu(), logvar.cpu(), z[:, 0].cpu()
                if saved is not None:
                    saved.record(batch, time.perf_counter() - started)
                bar.update(len(batch))
                if on_progress is not None:
                    on_progress(done, count)
            bar.close()
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - started
    if saved is not None:
        seconds += saved.seconds_before
        saved.remove()
    return EvaluationResult(
        iw_nll=iw_nll,
        rec=rec,
        kl=kl,
        tokens=tokens,
        mu=mu_all,
        logvar=logvar_all,
        z=z_all,
        iw_samples=iw_samples,
        seed=seed,
        bf16=bf16,
        seconds=seconds,
        fast_path=use_fast,
    )


def _decode_all_samples(
    model: VAELMModel,
    scorer: DecoderScorer | None,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor,
    z: torch.Tensor,
    chunk_size: int,
    bf16: bool,
) -> torch.Tensor:
    """-log p(x|z_k) of every (sentence, sample) of a length-sorted batch, `chunk_size` rows at a time: (B, K)."""
    batch, samples, latent_size = z.shape
    device = z.device
    row_sentence = torch.arange(batch, device=device).repeat_interleave(
        samples
    )  # sentence-major: lengths non-increasing
    flat_z = z.reshape(batch * samples, latent_size)
    scored = attention_mask[:, 1:].sum(1)
    nll = torch.empty(batch * samples, dtype=torch.float32, device=device)
    if scorer is not None:
        input_gates = scorer.sentence_input_gates(input_ids[:, :-1])
        targets = input_ids[:, 1:].t()
    for start in range(0, batch * samples, chunk_size):
        rows = slice(start, start + chunk_size)
        if scorer is not None:
            nll[rows] = scorer.row_nll(
                input_gates, targets, row_sentence[rows], scored[row_sentence[rows]], flat_z[rows]
            )
        else:
            nll[rows] = reference_row_nll(model, input_ids, attention_mask, row_sentence[rows], flat_z[rows], bf16)
    return nll.view(batch, samples)


def _fast_path_agrees(
    model: VAELMModel, scorer: DecoderScorer, input_ids: torch.LongTensor, attention_mask: torch.Tensor, z: torch.Tensor
) -> bool:
    """Compare the fast decoder with `model.reconstruction_nll` on a few rows (in float32); warn on a mismatch."""
    rows = min(4, input_ids.size(0))
    reference_scorer = scorer if not scorer.bf16 else DecoderScorer(model, bf16=False)
    row_sentence = torch.arange(rows, device=z.device)
    sample = z[:rows, 0]
    fast = reference_scorer.row_nll(
        reference_scorer.sentence_input_gates(input_ids[:rows, :-1]),
        input_ids[:rows, 1:].t(),
        row_sentence,
        attention_mask[:rows, 1:].sum(1),
        sample,
    )
    reference = reference_row_nll(model, input_ids[:rows], attention_mask[:rows], row_sentence, sample)
    difference = float((fast - reference).abs().max())
    if difference > FAST_PATH_TOLERANCE:
        logger.warning(
            "The fast decoder differs from the model's reconstruction_nll by %.3g nats; using the model's method "
            "(slower). The model's structure has probably changed.",
            difference,
        )
        return False
    return True


def evaluate_dataset(
    model: VAELMModel,
    dataset,
    iw_samples: int = IW_SAMPLES,
    seed: int = SEED,
    batch_size: int = BATCH_SIZE,
    chunk_size: int = CHUNK_SIZE,
    bf16: bool = False,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """
    The evaluation protocol on a tokenized dataset (a `datasets.Dataset` with an `input_ids` column, or a list of
    token-id lists); returns the summary (see [`EvaluationResult.summary`]).

    Args:
        model ([`VAELMModel`]): the model.
        dataset: tokenized sentences `<s> w1 … wn </s>`.
        iw_samples (`int`, *optional*, defaults to 500): importance samples K.
        seed (`int`, *optional*, defaults to 42): seed of the latent noise.
        batch_size (`int`, *optional*, defaults to 64): sentences per encoder batch.
        chunk_size (`int`, *optional*, defaults to 512): rows per decoder call.
        bf16 (`bool`, *optional*, defaults to `False`): bfloat16 vocabulary projection.
        progress (`bool`, *optional*, defaults to `False`): tqdm bar on stderr.
        on_progress (`Callable[[int, int], None]`, *optional*): as in [`evaluate_sequences`].

    Returns:
        `dict`: `nll`, `ppl`, `elbo`, `elbo_ppl`, `rec`, `kl`, `mi`, `au`, `sentences`, `tokens`, ….
    """
    sequences = dataset["input_ids"] if not isinstance(dataset, (list, tuple)) else dataset
    result = evaluate_sequences(
        model,
        list(sequences),
        iw_samples=iw_samples,
        batch_size=batch_size,
        chunk_size=chunk_size,
        seed=seed,
        bf16=bf16,
        progress=progress,
        on_progress=on_progress,
    )
    return result.summary()


# ------------------------------------------------------------------------------------------------ tokenizing
def tokenize_sentences(texts: list[str], tokenizer, segmentation: str) -> list[list[int]]:
    """
    `<s> w1 … wn </s>` ids of each sentence, after the model's segmentation; never truncated.

    Args:
        texts (`list[str]`): raw sentences.
        tokenizer: the model's tokenizer.
        segmentation (`str`): the model's `config.segmentation`.
    """
    return encode_sentences(tokenizer, texts, segmentation)


__all__ = ["EvaluationResult", "evaluate_dataset", "evaluate_sequences", "length_sorted_batches", "tokenize_sentences"]
