"""Honest likelihood metrics for VAE language models: ELBO, importance-weighted NLL, PPL, KL, MI and active units.

The protocol is that of He et al. (2019) and Li et al. (2019) (README, "Results", states it with the figures):

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

This module runs the protocol ([`evaluate_sequences`], [`evaluate_dataset`]) and scores the decoder
([`DecoderScorer`]); the densities, the latent noise, MI and AU are [`vaelm.evaluation.estimators`]'.
"""

import functools
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..corpora.data import DataError
from .estimators import (
    ACTIVE_UNIT_THRESHOLD,
    LOG_2PI,
    mutual_information,
    posterior_mean_variances,
    sentence_noise,
    standard_normal_log_density,
)
from .progress import FIELDS, EvaluationProgress, model_fingerprint, sentences_fingerprint
from ..modeling_vaelm import VAELMModel, gaussian_kl
from ..tokenization_vaelm import encode_sentences

logger = logging.getLogger(__name__)

# Largest absolute difference (nats per sentence) tolerated between the fast decoder and the model's own
# `reconstruction_nll` before evaluation falls back to the model's method.
FAST_PATH_TOLERANCE = 1e-3


# ------------------------------------------------------------------------------------------------ decoding
class DecoderScorer:
    """
    Forward-only -log p(x|z) of many (sentence, latent sample) rows, for a [`VAELMModel`] with an LSTM or GRU decoder.

    Equivalent to `model.reconstruction_nll` on rows whose sentences are repeated K times, but cheaper:
    - the first layer's input projection of `<s> w1 … wn` (and its bias) is computed once per sentence and shared by
      that sentence's samples; z's share of it (when z is fed to every step) once per row;
    - rows are ordered by length, and at step t only the rows still running are computed (packed, no padding);
    - the vocabulary projection and its log-softmax run one step at a time, so memory is
      `rows × vocab_size`, independent of sentence length;
    - with `bf16`, the vocabulary projection (the dominant cost) multiplies bfloat16 states and weights; its
      logits, the log-softmax and everything else (the recurrent cell included) stay in float32.

    Args:
        model ([`VAELMModel`]): the model (in evaluation mode).
        bf16 (`bool`, *optional*, defaults to `False`): bfloat16 vocabulary projection.
    """

    def __init__(self, model: VAELMModel, bf16: bool = False):
        decoder = model.decoder
        self.model = model
        self.bf16 = bf16
        self.is_lstm = isinstance(decoder, nn.LSTM)
        self.num_layers = decoder.num_layers
        hidden = decoder.hidden_size
        embedding_size = model.config.embedding_size
        if self.is_lstm:
            # Reorder PyTorch's gate blocks (i, f, g, o) to (i, f, o, g): one sigmoid covers the first three.
            order = torch.cat([torch.arange(0, 2 * hidden), torch.arange(3 * hidden, 4 * hidden), torch.arange(2 * hidden, 3 * hidden)])
        else:
            order = torch.arange(3 * hidden)  # GRU blocks (r, z, n): the first two share one sigmoid as they are
        order = order.to(decoder.weight_ih_l0.device)

        def weight(name: str) -> torch.Tensor:
            return getattr(decoder, name).detach().float().index_select(0, order)

        input_weight = weight("weight_ih_l0")
        self.word_input_weight = input_weight[:, :embedding_size].contiguous()
        self.latent_input_weight = (
            input_weight[:, embedding_size:].contiguous() if model.config.latent_to_every_step else None
        )
        self.input_weights = [None] + [weight(f"weight_ih_l{layer}") for layer in range(1, self.num_layers)]
        self.recurrent_weights_t = [weight(f"weight_hh_l{layer}").t().contiguous() for layer in range(self.num_layers)]
        recurrent_biases = [weight(f"bias_hh_l{layer}") for layer in range(self.num_layers)]
        if self.is_lstm:
            self.biases = [weight(f"bias_ih_l{layer}") + recurrent_biases[layer] for layer in range(self.num_layers)]
        else:
            # A GRU's recurrent bias of n sits inside r ⊙ (W_hn h + b_hn): only those of r and z join the input side.
            self.biases = [weight(f"bias_ih_l{layer}").clone() for layer in range(self.num_layers)]
            for layer, bias in enumerate(recurrent_biases):
                self.biases[layer][: 2 * hidden] += bias[: 2 * hidden]
                bias[: 2 * hidden] = 0.0
        self.recurrent_biases = recurrent_biases
        self.hidden_size = hidden
        self.head_dtype = torch.bfloat16 if bf16 else torch.float32
        self.output_projection = model.output_projection
        # The vocabulary bias rides in the matmul as an extra input row (states get a column of ones): addmm would
        # first copy the bias into the whole rows × vocab output, a memory pass as costly as a fifth of the matmul.
        head_weight = model.lm_head.weight.detach().float()
        head_bias = model.lm_head.bias.detach().float() if model.lm_head.bias is not None else head_weight.new_zeros(head_weight.size(0))
        self.head_weight_with_bias = torch.cat([head_weight.t(), head_bias.unsqueeze(0)]).to(self.head_dtype).contiguous()

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """Whether `model` has the structure this scorer reproduces (an LSTM or GRU decoder without projections)."""
        decoder = getattr(model, "decoder", None)
        return (
            isinstance(decoder, (nn.LSTM, nn.GRU))
            and decoder.batch_first
            and decoder.bias
            and not decoder.bidirectional
            and getattr(decoder, "proj_size", 0) == 0
            and isinstance(getattr(model, "lm_head", None), nn.Linear)
            and isinstance(getattr(model, "embed_tokens", None), nn.Embedding)
            and hasattr(model, "initial_state")
        )

    def sentence_input_gates(self, decoder_input_ids: torch.LongTensor) -> torch.Tensor:
        """
        The first layer's input projection (with its input-side biases) of each sentence's decoder inputs.

        Args:
            decoder_input_ids (`torch.LongTensor` of shape `(batch_size, steps)`): `<s> w1 … wn`, right-padded.

        Returns:
            `torch.Tensor` of shape `(steps, batch_size, gates · hidden_size)`, time-major (4 gates for an LSTM, 3
            for a GRU).
        """
        embeddings = self.model.embed_tokens(decoder_input_ids.t()).float()
        return F.linear(embeddings, self.word_input_weight, self.biases[0])

    def _lstm_cell(self, layer: int, input_gates: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """One LSTM step of `layer` on gates ordered (i, f, o, g), input part given: the new `(h, c)`."""
        hidden, cell = state
        size = self.hidden_size
        gates = torch.addmm(input_gates, hidden, self.recurrent_weights_t[layer])
        sigmoids = torch.sigmoid(gates[:, : 3 * size])
        candidate = torch.tanh(gates[:, 3 * size :])
        cell = torch.addcmul(sigmoids[:, size : 2 * size] * cell, sigmoids[:, :size], candidate)
        return sigmoids[:, 2 * size :] * torch.tanh(cell), cell

    def _gru_cell(self, layer: int, input_gates: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """One GRU step of `layer` (PyTorch's equations, gates (r, z, n)), input part given: the new `(h,)`."""
        (hidden,) = state
        size = self.hidden_size
        recurrent = torch.addmm(self.recurrent_biases[layer], hidden, self.recurrent_weights_t[layer])
        reset_update = torch.sigmoid(input_gates[:, : 2 * size] + recurrent[:, : 2 * size])
        candidate = torch.tanh(torch.addcmul(input_gates[:, 2 * size :], reset_update[:, :size], recurrent[:, 2 * size :]))
        return (torch.lerp(candidate, hidden, reset_update[:, size:]),)  # (1 - z) ⊙ n + z ⊙ h

    def row_nll(
        self,
        input_gates: torch.Tensor,
        targets: torch.LongTensor,
        row_sentence: torch.LongTensor,
        row_steps: torch.LongTensor,
        z: torch.Tensor,
    ) -> torch.Tensor:
        """
        -log p(x|z) of each row.

        Args:
            input_gates (`torch.Tensor` of shape `(steps, batch_size, gates · hidden_size)`): from
                [`~DecoderScorer.sentence_input_gates`].
            targets (`torch.LongTensor` of shape `(steps, batch_size)`): `w1 … wn </s>` of each sentence, time-major.
            row_sentence (`torch.LongTensor` of shape `(rows,)`): the sentence (column of `targets`) of each row.
            row_steps (`torch.LongTensor` of shape `(rows,)`): scored tokens (n + 1) of each row, non-increasing.
            z (`torch.Tensor` of shape `(rows, latent_size)`): the latent code of each row.

        Returns:
            `torch.Tensor` of shape `(rows,)`: NLL in nats (float32).
        """
        rows = row_sentence.size(0)
        steps_list = row_steps.tolist()
        if any(a < b for a, b in zip(steps_list, steps_list[1:])):
            raise ValueError("DecoderScorer.row_nll needs rows ordered by non-increasing length.")
        initial = self.model.initial_state(z)
        # Per layer, the state as a tuple: (h, c) for an LSTM, (h,) for a GRU.
        states = [tuple(part[layer].float() for part in initial) for layer in range(self.num_layers)]
        step_cell = self._lstm_cell if self.is_lstm else self._gru_cell
        latent_gates = F.linear(z.float(), self.latent_input_weight) if self.latent_input_weight is not None else None
        nll = torch.zeros(rows, dtype=torch.float32, device=z.device)
        for step in range(steps_list[0]):
            active = rows if steps_list[-1] > step else _count_greater(steps_list, step)
            if active < states[0][0].size(0):
                states = [tuple(part[:active] for part in state) for state in states]
            sentences = row_sentence[:active]
            below = None
            for layer in range(self.num_layers):
                if layer == 0:
                    gates = input_gates[step].index_select(0, sentences)
                    if latent_gates is not None:
                        gates = gates + latent_gates[:active]
                else:
                    gates = torch.addmm(self.biases[layer], below, self.input_weights[layer].t())
                states[layer] = step_cell(layer, gates, states[layer])
                below = states[layer][0]
            head_inputs = self.output_projection(below) if self.output_projection is not None else below
            head_inputs = torch.cat([head_inputs, head_inputs.new_ones(active, 1)], dim=1).to(self.head_dtype)
            # In bf16 only the matmul is: a bf16 log-softmax would round each token's NLL to 8 bits (≈0.02 nats).
            logits = torch.mm(head_inputs, self.head_weight_with_bias).float()
            nll[:active] += F.cross_entropy(logits, targets[step].index_select(0, sentences), reduction="none")
        return nll


def _count_greater(sorted_descending: list[int], value: int) -> int:
    """How many leading items of a non-increasing list exceed `value` (binary search)."""
    low, high = 0, len(sorted_descending)
    while low < high:
        middle = (low + high) // 2
        if sorted_descending[middle] > value:
            low = middle + 1
        else:
            high = middle
    return low


def reference_row_nll(
    model: VAELMModel,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor,
    row_sentence: torch.LongTensor,
    z: torch.Tensor,
    bf16: bool = False,
) -> torch.Tensor:
    """
    -log p(x|z) of each row with the model's own `reconstruction_nll` (the slower, structure-agnostic path).

    Args:
        model ([`VAELMModel`]): the model.
        input_ids (`torch.LongTensor` of shape `(batch_size, length)`): `<s> w1 … wn </s>`, right-padded.
        attention_mask (`torch.Tensor` of shape `(batch_size, length)`): 1 for real tokens.
        row_sentence (`torch.LongTensor` of shape `(rows,)`): the sentence of each row.
        z (`torch.Tensor` of shape `(rows, latent_size)`): the latent code of each row.
        bf16 (`bool`, *optional*, defaults to `False`): run under bfloat16 autocast.

    Returns:
        `torch.Tensor` of shape `(rows,)`: NLL in nats (float32).
    """
    with torch.autocast(device_type=z.device.type, dtype=torch.bfloat16, enabled=bf16):
        nll, _ = model.reconstruction_nll(input_ids.index_select(0, row_sentence), attention_mask.index_select(0, row_sentence), z)
    return nll.float()


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


def evaluate_sequences(
    model: VAELMModel,
    sequences: Sequence[Sequence[int]],
    iw_samples: int = 500,
    batch_size: int = 64,
    chunk_size: int = 512,
    seed: int = 42,
    bf16: bool = False,
    progress: bool = False,
    fast_path: bool = True,
    progress_file: str | os.PathLike | None = None,
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
            batch and, when it exists, resume from it (see [`vaelm.evaluation_progress`]); the figures equal those
            of an uninterrupted pass, and `seconds` adds up the time of every run. Deleted when the pass completes.

    Returns:
        [`EvaluationResult`]: per-sentence figures, in input order, and `summary()`.
    """
    if iw_samples < 1 or batch_size < 1 or chunk_size < 1:
        raise ValueError(f"iw_samples, batch_size and chunk_size must be positive, got {iw_samples}, {batch_size}, {chunk_size}.")
    if len(sequences) == 0:
        raise DataError("There are no sentences to evaluate.")
    config = model.config
    _check_sequences(sequences, config)
    if config.latent_size == 0 and iw_samples > 1:
        # No latent variable: every sample would score the same exact NLL, so one is enough (reported as K = 1).
        logger.info("The model has no latent variable (latent_size 0): its NLL is exact; importance sampling is skipped.")
        iw_samples = 1
    device = next(model.parameters()).device
    count, latent_size = len(sequences), config.latent_size
    iw_nll, rec, kl = (torch.empty(count, dtype=torch.float64) for _ in range(3))
    mu_all, logvar_all, z_all = (torch.empty(count, latent_size) for _ in range(3))
    tokens = torch.tensor([len(sequence) - 1 for sequence in sequences], dtype=torch.long)
    saved = None
    if progress_file is not None:
        identity = {"model": model_fingerprint(model), "sentences": sentences_fingerprint(sequences),
                    "iw_samples": str(iw_samples), "seed": str(seed), "bf16": str(bf16)}
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
            bar = tqdm(total=count, unit="sent", desc=f"Evaluating (K={iw_samples})", disable=not progress, file=sys.stderr)
            for batch in length_sorted_batches([len(s) for s in sequences], batch_size):
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
                rec_samples = _decode_all_samples(model, scorer if use_fast else None, input_ids, attention_mask, z, chunk_size, bf16)
                log_weights = -rec_samples + log_prior - log_q  # (B, K)
                index = torch.as_tensor(batch)
                iw_nll[index] = (math.log(iw_samples) - torch.logsumexp(log_weights.double(), dim=1)).cpu()
                rec[index] = rec_samples.double().mean(1).cpu()
                kl[index] = gaussian_kl(mu, logvar).double().sum(-1).cpu()
                mu_all[index], logvar_all[index], z_all[index] = mu.cpu(), logvar.cpu(), z[:, 0].cpu()
                if saved is not None:
                    saved.record(batch, time.perf_counter() - started)
                bar.update(len(batch))
            bar.close()
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - started
    if saved is not None:
        seconds += saved.seconds_before
        saved.remove()
    return EvaluationResult(
        iw_nll=iw_nll, rec=rec, kl=kl, tokens=tokens, mu=mu_all, logvar=logvar_all, z=z_all, iw_samples=iw_samples,
        seed=seed, bf16=bf16, seconds=seconds, fast_path=use_fast,
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
    row_sentence = torch.arange(batch, device=device).repeat_interleave(samples)  # sentence-major: lengths non-increasing
    flat_z = z.reshape(batch * samples, latent_size)
    scored = attention_mask[:, 1:].sum(1)
    nll = torch.empty(batch * samples, dtype=torch.float32, device=device)
    if scorer is not None:
        input_gates = scorer.sentence_input_gates(input_ids[:, :-1])
        targets = input_ids[:, 1:].t()
    for start in range(0, batch * samples, chunk_size):
        rows = slice(start, start + chunk_size)
        if scorer is not None:
            nll[rows] = scorer.row_nll(input_gates, targets, row_sentence[rows], scored[row_sentence[rows]], flat_z[rows])
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
            "(slower). The model's structure has probably changed.", difference
        )
        return False
    return True


def evaluate_dataset(
    model: VAELMModel,
    dataset,
    iw_samples: int = 500,
    seed: int = 42,
    batch_size: int = 64,
    chunk_size: int = 512,
    bf16: bool = False,
    progress: bool = False,
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

    Returns:
        `dict`: `nll`, `ppl`, `elbo`, `elbo_ppl`, `rec`, `kl`, `mi`, `au`, `sentences`, `tokens`, ….
    """
    sequences = dataset["input_ids"] if not isinstance(dataset, (list, tuple)) else dataset
    result = evaluate_sequences(
        model, list(sequences), iw_samples=iw_samples, batch_size=batch_size, chunk_size=chunk_size, seed=seed,
        bf16=bf16, progress=progress,
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


__all__ = [
    "EvaluationResult",
    "DecoderScorer",
    "evaluate_dataset",
    "evaluate_sequences",
    "length_sorted_batches",
    "tokenize_sentences",
]
