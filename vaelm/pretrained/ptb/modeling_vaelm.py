"""VAELM: a sentence-level variational auto-encoder language model (Bowman et al. 2016).

A recurrent encoder reads `<s> w1 … wn </s>` and gives a diagonal Gaussian q(z|x); a reparameterised z sets the
initial state of a recurrent decoder that predicts `w1 … wn </s>` from `<s> w1 … wn`. The cell is an LSTM (state
(h, c), the default) or a GRU (state (h,)), `config.cell_type`; everything cell-specific is in `recurrent_layer`,
`run_recurrent` and `STATE_TENSORS` below. The vocabulary projection is applied to real (non-padding) positions
only, so padding costs nothing and never counts in a loss.

This file imports only torch, transformers and its sibling configuration so that it travels to the Hub as-is
(`trust_remote_code=True`).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_vaelm import VAELMConfig


@dataclass
class VAELMOutput(ModelOutput):
    r"""
    Output of [`VAELMModel.forward`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            Negative ELBO with β = 1: `rec_loss + kl`, nats per sentence.
        rec_loss (`torch.FloatTensor` of shape `()`):
            Reconstruction loss -log p(x|z), summed over the n + 1 scored tokens and averaged over sentences.
        kl (`torch.FloatTensor` of shape `()`):
            KL(q(z|x) ‖ N(0, I)), summed over latent dimensions and averaged over sentences.
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length - 1, vocab_size)`, *optional*):
            Next-word scores for every decoder position (zeros at padding). Only computed when asked for, since
            the loss never needs the padded tensor.
        mu (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
            Posterior means.
        logvar (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
            Posterior log-variances.
        z (`torch.FloatTensor` of shape `(batch_size, latent_size)`):
            The latent code the decoder was run with.
        rec_per_sentence (`torch.FloatTensor` of shape `(batch_size,)`):
            -log p(x|z) of each sentence.
        bow_loss (`torch.FloatTensor` of shape `()`, *optional*):
            The bag-of-words loss from z (`config.bow_loss_weight` > 0, training mode only): -Σ log softmax(W z)[w]
            over the n + 1 scored words, averaged over sentences. A training signal; never part of `loss`.
        cache ([`VAELMCache`], *optional*):
            The decoder's state after a decoding step (`forward(..., use_cache=True)`, as `generate` calls it).
    """

    loss: torch.FloatTensor | None = None
    rec_loss: torch.FloatTensor | None = None
    kl: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mu: torch.FloatTensor | None = None
    logvar: torch.FloatTensor | None = None
    z: torch.FloatTensor | None = None
    rec_per_sentence: torch.FloatTensor | None = None
    bow_loss: torch.FloatTensor | None = None
    cache: "VAELMCache | None" = None


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) per dimension, same shape as `mu` (closed form)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def _pack(tensor: torch.Tensor, lengths_cpu: torch.Tensor) -> PackedSequence:
    return pack_padded_sequence(tensor, lengths_cpu, batch_first=True, enforce_sorted=False)


# ------------------------------------------------------------------------------------------------ recurrent core
RecurrentState = tuple[torch.Tensor, ...]
"""A recurrent state whatever the cell: `(h, c)` for an LSTM, `(h,)` for a GRU; each `(num_layers, batch, hidden)`."""

RECURRENT_MODULES: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}
STATE_TENSORS = {"lstm": 2, "gru": 1}  # tensors in a state, and so the size of z's map to the initial state


def recurrent_layer(
    cell_type: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool = False
) -> nn.RNNBase:
    """The batch-first torch module of `cell_type` (`"lstm"` or `"gru"`), for the encoder or the decoder."""
    module = RECURRENT_MODULES[cell_type]
    return module(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)


def run_recurrent(
    module: nn.RNNBase, inputs: torch.Tensor | PackedSequence, state: RecurrentState | None = None
) -> tuple[torch.Tensor | PackedSequence, RecurrentState]:
    """
    Run an `nn.LSTM` or `nn.GRU` with its state as a tuple, in and out (`(h, c)` or `(h,)`), so callers need not
    know the cell.

    Args:
        module (`nn.LSTM` or `nn.GRU`): the recurrent layers.
        inputs (`torch.Tensor` of shape `(batch_size, steps, input_size)` or `PackedSequence`): the inputs.
        state (`RecurrentState`, *optional*): the initial state; zeros when omitted.

    Returns:
        `(outputs, state)`: the top layer's outputs and the final state.
    """
    if state is not None and not isinstance(module, nn.LSTM):
        (state,) = state
    if _cpu_bf16_recurrence_unsupported(inputs):
        outputs, final = _run_float32(module, inputs, state)
    else:
        try:
            outputs, final = module(inputs, state)
        except RuntimeError as error:
            if "primitive descriptor" not in str(error) or not _is_cpu_autocast(inputs):
                raise
            # oneDNN has no bf16 LSTM/GRU on CPUs without native bf16 (e.g. AVX2 only): remember, run it in fp32.
            _CPU_BF16_RECURRENCE["supported"] = False
            outputs, final = _run_float32(module, inputs, state)
    return outputs, final if isinstance(final, tuple) else (final,)


# Whether this CPU runs recurrent layers under bf16 autocast; learnt from the first attempt (see `run_recurrent`).
_CPU_BF16_RECURRENCE = {"supported": True}


def _is_cpu_autocast(inputs: torch.Tensor | PackedSequence) -> bool:
    data = inputs.data if isinstance(inputs, PackedSequence) else inputs
    return data.device.type == "cpu" and torch.is_autocast_enabled("cpu")


def _cpu_bf16_recurrence_unsupported(inputs: torch.Tensor | PackedSequence) -> bool:
    return not _CPU_BF16_RECURRENCE["supported"] and _is_cpu_autocast(inputs)


def _run_float32(module: nn.RNNBase, inputs: torch.Tensor | PackedSequence, state) -> tuple:
    """The recurrent layers outside autocast, in float32 (the matmuls around them still follow autocast)."""
    if isinstance(inputs, PackedSequence):
        inputs = inputs._replace(data=inputs.data.float())
    else:
        inputs = inputs.float()
    if state is not None:
        state = tuple(part.float() for part in state) if isinstance(state, tuple) else state.float()
    with torch.autocast("cpu", enabled=False):
        return module(inputs, state)


# Below this share of real positions in a batch, the packed LSTM is used; above it, the padded one. On CPU the
# padded LSTM runs as one oneDNN kernel, ≈2.5× faster per position than the packed kernel's per-step matmuls in
# training (forward + backward; ≈1.6× forward only, hence the second, inference threshold), and it skips the sort and
# unsort of `enforce_sorted=False`, so it wins unless padding dominates; length-grouped training batches are ≈98 %
# real (measured with LSTMs; GRUs follow the same rule). Outputs at right padding come after every real position of
# their row, so they never change a real output or gradient: both paths give the same result.
_PADDED_MIN_FILL = 0.4
_PADDED_MIN_FILL_INFERENCE = 0.5


def _padded_is_cheaper(lengths_cpu: torch.Tensor, width: int) -> bool:
    """Whether running an LSTM over the padded batch beats packing it (see `_PADDED_MIN_FILL`)."""
    fill = _PADDED_MIN_FILL if torch.is_grad_enabled() else max(_PADDED_MIN_FILL, _PADDED_MIN_FILL_INFERENCE)
    return int(lengths_cpu.sum()) >= fill * lengths_cpu.numel() * width


def locked_dropout_mask(reference: torch.Tensor, rows: int, probability: float) -> torch.Tensor:
    """One inverted-dropout mask per row (sentence), `(rows, features)`, to share over all of a row's steps."""
    return F.dropout(reference.new_ones(rows, reference.size(-1)), probability, training=True)


def dropped_recurrent_weights(module: nn.RNNBase, probability: float) -> dict[str, torch.Tensor]:
    """
    DropConnect (Merity et al. 2018) on the hidden-to-hidden matrices of `module`: `{name: dropped weight}` for
    `torch.func.functional_call`, so that the fused (oneDNN / cuDNN) kernel runs with the dropped weights and the
    parameters themselves are never modified. One mask per call, shared by every step and row.
    """
    return {
        name: F.dropout(param, probability, training=True)
        for name, param in module.named_parameters()
        if name.startswith("weight_hh")
    }


class VAELMCache:
    """
    The decoder's recurrent state, used as the generation cache: a recurrent decoder needs only its last state
    (`(h, c)` for an LSTM, `(h,)` for a GRU), not the keys and values of every past token, so the cache has a fixed
    size whatever the length decoded so far.

    `generate` stores it under `model_kwargs["cache"]`; beam search reorders it with [`reorder_cache`].

    Args:
        state (`tuple(torch.Tensor)`): the decoder state, each tensor of shape `(num_layers, batch_size, hidden_size)`.
        seen_tokens (`int`, *optional*, defaults to 0): number of decoder inputs already consumed (`<s>` included).
    """

    is_compileable = False
    is_croppable = False

    def __init__(self, state: RecurrentState, seen_tokens: int = 0):
        self.state = tuple(state)
        self.seen_tokens = seen_tokens

    @property
    def h(self) -> torch.Tensor:
        """The hidden states, `(num_layers, batch_size, hidden_size)`."""
        return self.state[0]

    @property
    def is_linear(self) -> list[bool]:
        """Every layer holds a fixed-size recurrent state (what `generate` calls a linear layer: never sliced)."""
        return [True] * self.h.size(0)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Number of decoder inputs consumed so far."""
        return self.seen_tokens

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep, in place, the batch rows `beam_idx` (beam search calls this after choosing the next beams)."""
        beam_idx = beam_idx.to(self.h.device)
        self.state = tuple(part.index_select(1, beam_idx) for part in self.state)

    def __repr__(self) -> str:
        return f"VAELMCache(layers={self.h.size(0)}, batch_size={self.h.size(1)}, seen_tokens={self.seen_tokens})"


class _LinearCrossEntropy(torch.autograd.Function):
    """
    `F.cross_entropy(F.linear(states, weight, bias), targets, reduction="none")`, with less memory traffic.

    The plain composition writes the logits, `log_softmax` reads them and writes a second [tokens, vocab] tensor
    (kept for backward), and backward writes a dense one-hot gradient and reads both again; on CPU each of those
    large temporaries also costs fresh pages. Here the softmax is computed in place in the logits buffer (stored in
    the matmul's dtype, so bf16 under autocast), and backward turns that buffer in place into `softmax − onehot`,
    the gradient of the logits up to each token's weight, which is applied to the small [tokens, hidden] operands
    instead of the [tokens, vocab] buffer. The NLL is −log of the target's probability; the rare tokens whose
    probability is too small for that to be exact in float32 are rescored from their logits. Same values and
    gradients as the composition; backward may run only once (no `retain_graph` reuse).
    """

    # Below this probability, −log p loses precision in float32 (the smallest normal float is ≈1.2e-38).
    _SMALLEST_EXACT_PROBABILITY = 1e-30

    @staticmethod
    def forward(ctx, states, weight, bias, targets):
        # The bias is added to the logits, not carried as an extra input column: an odd inner dimension (hidden + 1)
        # makes all three [tokens, vocab] matmuls about 30 % slower on CPU (MKL), far more than the extra pass costs.
        logits = states @ weight.t()  # autocast, when on, makes this the bf16 matmul
        scores = logits.float()
        if bias is not None:
            scores.add_(bias.to(scores.dtype))
        # In place on CPU (no second [tokens, vocab] buffer); elsewhere the caching allocator makes a copy cheap.
        probabilities = torch.softmax(scores, dim=-1, out=scores if scores.device.type == "cpu" else None)
        target_probabilities = probabilities.gather(1, targets.unsqueeze(1)).squeeze(1)
        nll = -target_probabilities.log()
        tiny = (target_probabilities < _LinearCrossEntropy._SMALLEST_EXACT_PROBABILITY).nonzero().squeeze(1)
        if tiny.numel():  # rare (a token below e^-69): log Σ exp − score, from these rows' logits again
            rows = F.linear(states.index_select(0, tiny), weight, bias).float()
            row_targets = targets.index_select(0, tiny).unsqueeze(1)
            nll = nll.index_copy(0, tiny, torch.logsumexp(rows, dim=-1) - rows.gather(1, row_targets).squeeze(1))
        if any(ctx.needs_input_grad[:3]):
            probabilities = probabilities.to(logits.dtype)
            ctx.save_for_backward(probabilities, states, weight, targets)
            ctx.bias_dtype = None if bias is None else bias.dtype
            ctx.used = False
        return nll

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_nll):
        if ctx.used:
            raise RuntimeError("_LinearCrossEntropy's backward reuses its buffer and can run only once per forward.")
        ctx.used = True
        grad_logits, states, weight, targets = ctx.saved_tensors
        compute = grad_logits.dtype
        # softmax − onehot, in place; each token's weight `grad_nll` scales the small operands, not this buffer.
        grad_logits.scatter_add_(1, targets.unsqueeze(1), grad_logits.new_full((targets.size(0), 1), -1.0))
        token_weight = grad_nll.unsqueeze(1)
        grad_states = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_states = ((grad_logits @ weight.to(compute)).float() * token_weight).to(states.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = (grad_logits.t() @ (states.float() * token_weight).to(compute)).to(weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = (grad_logits.t() @ grad_nll.to(compute)).to(ctx.bias_dtype)
        return grad_states, grad_weight, grad_bias, None


class VAELMPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading glue shared by VAELM models."""

    config_class = VAELMConfig
    base_model_prefix = "vaelm"
    main_input_name = "input_ids"
    # The loss is a per-sentence mean that the Trainer scales for gradient accumulation itself.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        """Uniform(-r, r) for embeddings, linear and recurrent weights (r = `initializer_range`), zero biases."""
        r = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.uniform_(module.weight, -r, r)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            for name, param in module.named_parameters():
                if "weight" in name:
                    init.uniform_(param, -r, r)
                else:
                    init.zeros_(param)


class VAELMModel(VAELMPreTrainedModel, GenerationMixin):
    """
    The Bowman et al. (2016) recurrent VAE language model (LSTM or GRU cells, `config.cell_type`).

    Args:
        config ([`VAELMConfig`]): Model configuration; sizes, dropout and special token ids.
    """

    # The decoder state cannot be rolled back to an earlier length (no assisted generation); see `VAELMCache`.
    _is_stateful = True

    def __init__(self, config: VAELMConfig):
        super().__init__(config)
        directions = 2 if config.bidirectional_encoder else 1
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        # latent_size 0: a plain language model, with neither encoder nor latent map (a zero initial state).
        has_latent = config.has_latent
        self.encoder = (
            recurrent_layer(
                config.cell_type,
                config.embedding_size,
                config.hidden_size,
                config.num_layers,
                config.bidirectional_encoder,
            )
            if has_latent
            else None
        )
        self.posterior = nn.Linear(directions * config.hidden_size, 2 * config.latent_size) if has_latent else None
        # BN-VAE: batch statistics without a learnt scale; γ is fixed (config), the shift is learnt. BatchNorm's usual
        # eps, as in Zhu et al.'s code: while the raw means barely vary (at initialisation) their spread stays below γ.
        bn_vae = has_latent and config.posterior_bn_gamma > 0
        self.posterior_mean_norm = nn.BatchNorm1d(config.latent_size, affine=False) if bn_vae else None
        self.posterior_mean_shift = nn.Parameter(torch.zeros(config.latent_size)) if bn_vae else None
        state_size = STATE_TENSORS[config.cell_type] * config.num_layers * config.hidden_size
        self.latent_to_state = nn.Linear(config.latent_size, state_size) if has_latent else None
        decoder_input_size = config.embedding_size + (config.latent_size if config.latent_to_every_step else 0)
        self.decoder = recurrent_layer(config.cell_type, decoder_input_size, config.hidden_size, config.num_layers)
        self.output_dropout = nn.Dropout(config.output_dropout)
        # Zhao et al. (2017): words from z alone, a training signal that makes the code carry them.
        self.bow_head = nn.Linear(config.latent_size, config.vocab_size) if config.bow_loss_weight > 0 else None
        # Tied output weights need decoder states of the embedding size.
        tied_projection = config.tie_word_embeddings and config.hidden_size != config.embedding_size
        self.output_projection = nn.Linear(config.hidden_size, config.embedding_size) if tied_projection else None
        head_input = config.embedding_size if config.tie_word_embeddings else config.hidden_size
        self.lm_head = nn.Linear(head_input, config.vocab_size)
        if config.tie_word_embeddings:
            self._tied_weights_keys = {"lm_head.weight": "embed_tokens.weight"}
            # Checkpoints hold the embedding once: the Trainer then re-ties on resume instead of warning that
            # lm_head.weight is missing.
            self._keys_to_ignore_on_save = {"lm_head.weight"}
        # save_pretrained records only one auto class per object; keep AutoModel next to AutoModelForCausalLM.
        config.auto_map = {**(getattr(config, "auto_map", None) or {}), "AutoModel": "modeling_vaelm.VAELMModel"}
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    # ----------------------------------------------------------------------------------------------- encoder
    def encode(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Posterior parameters of each sentence.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                `<s> w1 … wn </s>`, right-padded.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real tokens, 0 for padding. Derived from `pad_token_id` when omitted.

        Returns:
            `(mu, logvar)`, each of shape `(batch_size, latent_size)`.
        """
        if self.encoder is None:  # no latent variable: an empty code
            empty = self.embed_tokens.weight.new_zeros(input_ids.size(0), 0)
            return empty, empty.clone()
        attention_mask = self._attention_mask(input_ids, attention_mask)
        lengths = attention_mask.sum(1).cpu()
        embeddings = self._dropout_inputs(self._embed(input_ids))
        if not self.config.bidirectional_encoder and _padded_is_cheaper(lengths, input_ids.size(1)):
            # Right padding: the top layer's output after the last real word is the packed run's final state.
            outputs, _ = run_recurrent(self.encoder, embeddings)
            last = (lengths - 1).to(outputs.device)
            summary = outputs[torch.arange(outputs.size(0), device=outputs.device), last]
        else:
            _, (final_h, *_) = run_recurrent(self.encoder, _pack(embeddings, lengths))
            if self.config.bidirectional_encoder:
                summary = torch.cat([final_h[-2], final_h[-1]], dim=-1)
            else:
                summary = final_h[-1]
        # Outside autocast: a bf16 mu/logvar would make the KL (small, near collapse) wrong and even negative.
        with torch.autocast(summary.device.type, enabled=False):
            mu, logvar = self.posterior(summary.to(self.posterior.weight.dtype)).chunk(2, dim=-1)
            if self.posterior_mean_norm is not None:
                mu = self.config.posterior_bn_gamma * self.posterior_mean_norm(mu) + self.posterior_mean_shift
        return mu, logvar

    def _embed(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """Word embeddings, with whole word types dropped in training (`word_type_dropout`)."""
        p = self.config.word_type_dropout
        if not (self.training and p > 0):
            return self.embed_tokens(input_ids)
        weight = self.embed_tokens.weight
        keep = F.dropout(weight.new_ones(weight.size(0), 1), p, training=True)
        return F.embedding(input_ids, weight * keep, padding_idx=self.embed_tokens.padding_idx)

    def _dropout_inputs(self, embeddings: torch.Tensor) -> torch.Tensor:
        """`embedding_dropout` on `(batch, steps, features)`: one mask per sentence when `locked_dropout`."""
        p = self.config.embedding_dropout
        if self.config.locked_dropout and self.training and p > 0:
            return embeddings * locked_dropout_mask(embeddings, embeddings.size(0), p).unsqueeze(1)
        return self.embedding_dropout(embeddings)

    def _run_decoder(
        self, inputs: torch.Tensor | PackedSequence, state: RecurrentState
    ) -> tuple[torch.Tensor | PackedSequence, RecurrentState]:
        """The decoder's recurrent layers, with DropConnect on their recurrent weights in training (`weight_drop`)."""
        if not (self.training and self.config.weight_drop > 0):
            return run_recurrent(self.decoder, inputs, state)
        dropped = dropped_recurrent_weights(self.decoder, self.config.weight_drop)
        if not isinstance(self.decoder, nn.LSTM):
            (state,) = state
        outputs, final = functional_call(self.decoder, dropped, (inputs, state))
        return outputs, final if isinstance(final, tuple) else (final,)

    # ----------------------------------------------------------------------------------------------- decoder
    def initial_state(self, z: torch.Tensor) -> RecurrentState:
        """
        Decoder state computed from z.

        Args:
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): latent codes.

        Returns:
            `(h, c)` for an LSTM, `(h,)` for a GRU; each of shape `(num_layers, batch_size, hidden_size)`.
        """
        parts, layers, hidden = STATE_TENSORS[self.config.cell_type], self.config.num_layers, self.config.hidden_size
        if self.latent_to_state is None:  # no latent variable: the decoder starts from zeros
            zeros = self.embed_tokens.weight.new_zeros(layers, z.size(0), hidden)
            return tuple(zeros.clone() for _ in range(parts))
        state = self.latent_to_state(z).view(z.size(0), parts, layers, hidden).permute(1, 2, 0, 3)
        return tuple(part.contiguous() for part in state)

    def _decoder_inputs(self, input_ids: torch.LongTensor, z: torch.Tensor) -> torch.Tensor:
        embeddings = self._embed(input_ids)
        if self.config.latent_to_every_step:
            embeddings = torch.cat([embeddings, z.unsqueeze(1).expand(-1, input_ids.size(1), -1)], dim=-1)
        return self._dropout_inputs(embeddings)

    def _project(self, states: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self._head_inputs(states))

    def _head_inputs(self, states: torch.Tensor, sentence_of_state: torch.Tensor | None = None) -> torch.Tensor:
        p = self.config.output_dropout
        if self.config.locked_dropout and self.training and p > 0 and sentence_of_state is not None:
            # Locked: one mask per sentence (`sentence_of_state` maps each state row to its sentence).
            rows = int(sentence_of_state.max()) + 1 if sentence_of_state.numel() else 0
            states = states * locked_dropout_mask(states, rows, p).index_select(0, sentence_of_state)
        else:
            states = self.output_dropout(states)
        if self.output_projection is not None:
            states = self.output_projection(states)
        return states

    def decode_step(
        self,
        input_ids: torch.LongTensor,
        z: torch.Tensor,
        state: RecurrentState | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, RecurrentState]:
        """
        Run the decoder over a few new words (usually one) from a given state: the one decoding path, which
        `generate` (through `forward`) and `vaelm.generation` both use.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, steps)`): the decoder inputs of these steps.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): latent codes.
            state (`tuple(torch.Tensor)`, *optional*): the decoder state after the previous steps (`(h, c)` for an
                LSTM, `(h,)` for a GRU); `initial_state(z)` when omitted.
            attention_mask (`torch.Tensor` of shape `(batch_size, steps)`, *optional*): 0 at prompt padding. A masked
                position leaves the state (and the output) as they were, so left- or right-padded prompts decode
                exactly like unpadded ones.

        Returns:
            `(logits, state)`: logits of shape `(batch_size, steps, vocab_size)` and the new decoder state.
        """
        if input_ids.dim() != 2 or input_ids.size(0) != z.size(0):
            raise ValueError(
                f"input_ids of shape {tuple(input_ids.shape)} do not match z of shape {tuple(z.shape)}: one latent "
                "code per row is needed."
            )
        if state is None:
            state = self.initial_state(z)
        inputs = self._decoder_inputs(input_ids, z)
        if attention_mask is None or bool(attention_mask.bool().all()):
            outputs, state = run_recurrent(self.decoder, inputs, state)
        else:
            mask = attention_mask.bool()
            steps = []
            for t in range(input_ids.size(1)):
                output, stepped = run_recurrent(self.decoder, inputs[:, t : t + 1], state)
                keep = mask[:, t].view(1, -1, 1)
                previous_output = state[0][-1].unsqueeze(1)
                state = tuple(torch.where(keep, new, old) for new, old in zip(stepped, state))
                steps.append(torch.where(keep.view(-1, 1, 1), output, previous_output))
            outputs = torch.cat(steps, dim=1)
        return self._project(outputs), state

    def apply_word_dropout(self, decoder_input_ids: torch.LongTensor, decoder_mask: torch.Tensor) -> torch.LongTensor:
        """
        Replace decoder input words by `<unk>` with probability `word_dropout` (Bowman et al. 2016, §3.2).

        Args:
            decoder_input_ids (`torch.LongTensor` of shape `(batch_size, steps)`): `<s> w1 … wn` (padded).
            decoder_mask (`torch.Tensor` of shape `(batch_size, steps)`): 1 where the input is real.

        Returns:
            The inputs with dropped words replaced. Position 0 (BOS) and padding are never replaced.
        """
        if self.config.word_dropout <= 0.0:
            return decoder_input_ids
        drop = torch.rand(decoder_input_ids.shape, device=decoder_input_ids.device) < self.config.word_dropout
        drop &= decoder_mask.bool()
        drop[:, 0] = False
        return decoder_input_ids.masked_fill(drop, self.config.unk_token_id)

    def reconstruction_nll(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None,
        z: torch.Tensor,
        return_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        -log p(x|z) of each sentence, scoring `w1 … wn </s>` given `<s> w1 … wn` and z.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): `<s> w1 … wn </s>`, right-padded.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 for real tokens.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): one latent code per sentence.
            return_logits (`bool`, *optional*, defaults to `False`): also return padded logits.

        Returns:
            `(nll, logits)`: `nll` of shape `(batch_size,)` in nats; `logits` of shape
            `(batch_size, sequence_length - 1, vocab_size)` or `None`.
        """
        attention_mask = self._attention_mask(input_ids, attention_mask)
        decoder_input_ids, targets = input_ids[:, :-1], input_ids[:, 1:]
        decoder_mask = attention_mask[:, 1:]
        if self.training:
            decoder_input_ids = self.apply_word_dropout(decoder_input_ids, decoder_mask)
        steps = decoder_mask.sum(1)
        if bool((steps < 1).any()):
            raise ValueError("Every sentence needs at least `<s>` and `</s>`; found one with fewer than 2 tokens.")
        steps_cpu = steps.cpu()
        batch_size, width = targets.shape
        decoder_inputs = self._decoder_inputs(decoder_input_ids, z)
        if _padded_is_cheaper(steps_cpu, width):
            outputs, _ = self._run_decoder(decoder_inputs, self.initial_state(z))
            # Real positions, sentence by sentence; the outputs at padding are dropped before the projection.
            positions = decoder_mask.reshape(-1).nonzero().squeeze(1)
            states = outputs.reshape(batch_size * width, -1).index_select(0, positions)
            token_targets = targets.reshape(-1).index_select(0, positions)
            sentence_of_token = torch.div(positions, width, rounding_mode="floor")
        else:
            packed_outputs, _ = self._run_decoder(_pack(decoder_inputs, steps_cpu), self.initial_state(z))
            states = packed_outputs.data
            token_targets = _pack(targets, steps_cpu).data
            sentence_of_token = _pack(
                torch.arange(batch_size, device=input_ids.device).unsqueeze(1).expand_as(targets), steps_cpu
            ).data
            positions = (
                sentence_of_token * width
                + _pack(torch.arange(width, device=input_ids.device).expand_as(targets), steps_cpu).data
            )
        # Project real positions only: the padded [batch, steps, vocab] tensor is never built for the loss.
        if return_logits or not torch.is_grad_enabled():
            logits = self.lm_head(self._head_inputs(states, sentence_of_token))
            token_nll = F.cross_entropy(logits.float(), token_targets, reduction="none")
        else:
            token_nll = _LinearCrossEntropy.apply(
                self._head_inputs(states, sentence_of_token), self.lm_head.weight, self.lm_head.bias, token_targets
            )
        nll = torch.zeros(batch_size, device=token_nll.device, dtype=token_nll.dtype)
        nll = nll.index_add(0, sentence_of_token, token_nll)
        padded_logits = None
        if return_logits:
            padded_logits = logits.new_zeros(batch_size * width, logits.size(-1)).index_copy(0, positions, logits)
            padded_logits = padded_logits.view(batch_size, width, -1)
        return nll, padded_logits

    # ----------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        sample_latent: bool = True,
        return_logits: bool | None = None,
        return_loss: bool = True,
        return_dict: bool | None = None,
        cache: VAELMCache | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> VAELMOutput | tuple:
        r"""
        Encode, sample z, decode and score: the negative ELBO of each sentence with β = 1.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                `<s> w1 … wn </s>` token ids, right-padded with `<pad>` (what the tokenizer returns).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real tokens, 0 for padding; derived from `pad_token_id` when omitted.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`, *optional*):
                Decode from this latent code instead of one drawn from q(z|x). The KL is still that of q(z|x).
            sample_latent (`bool`, *optional*, defaults to `True`):
                Draw z ~ q(z|x) (the honest ELBO estimate, also in evaluation mode); `False` uses the posterior mean.
            return_logits (`bool`, *optional*):
                Also return padded logits; defaults to `True` outside training.
            return_loss (`bool`, *optional*, defaults to `True`):
                Kept for the Trainer, which reads its default to know that the model computes its own loss.
            return_dict (`bool`, *optional*):
                Return a [`VAELMOutput`] instead of a tuple.
            cache ([`VAELMCache`], *optional*):
                Decoder state after earlier steps. With `cache` or `use_cache`, `forward` is one [`decode_step`], as
                `generate` calls it (`generate` always calls `forward`): `input_ids` are decoder inputs
                `<s> w1 … wk` (no `</s>`), `z` is required, and the output holds `logits` for every input position
                and no loss.
            use_cache (`bool`, *optional*):
                Selects the decoding step (see `cache`); `True` also returns the new state as `cache`.
        """
        if cache is not None or use_cache is not None:
            return self._generation_step(input_ids, attention_mask, z, cache, bool(use_cache), return_dict)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return_logits = (not self.training) if return_logits is None else return_logits
        attention_mask = self._attention_mask(input_ids, attention_mask)
        mu, logvar = self.encode(input_ids, attention_mask)
        if z is None:
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample_latent else mu
        rec, logits = self.reconstruction_nll(input_ids, attention_mask, z, return_logits=return_logits)
        rec_loss = rec.mean()
        kl = gaussian_kl(mu, logvar).sum(-1).mean()
        bow_loss = None
        if self.training and self.bow_head is not None:
            bow_loss = self.bag_of_words_nll(input_ids, attention_mask, z).mean()
        output = VAELMOutput(
            loss=rec_loss + kl,
            rec_loss=rec_loss,
            kl=kl,
            logits=logits,
            mu=mu,
            logvar=logvar,
            z=z,
            rec_per_sentence=rec,
            bow_loss=bow_loss,
        )
        return output if return_dict else output.to_tuple()

    def bag_of_words_nll(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None, z: torch.Tensor
    ) -> torch.Tensor | None:
        """
        The bag-of-words loss of each sentence (Zhao et al. 2017): -Σ log softmax(W z)[w] over its scored words
        `w1 … wn </s>`, or `None` without a bag-of-words head (`config.bow_loss_weight` 0).

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`): `<s> w1 … wn </s>`, right-padded.
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*): 1 for real tokens.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): one latent code per sentence.
        """
        if self.bow_head is None:
            return None
        attention_mask = self._attention_mask(input_ids, attention_mask)
        log_probs = F.log_softmax(self.bow_head(z).float(), dim=-1)
        targets, scored = input_ids[:, 1:], attention_mask[:, 1:].to(log_probs.dtype)
        return -(log_probs.gather(1, targets) * scored).sum(1)

    def _attention_mask(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return (input_ids != self.config.pad_token_id).long()
        return attention_mask

    # -------------------------------------------------------------------------------------------- generation
    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The decoder makes its own cache (`VAELMCache`) at the first step; a key/value cache means nothing here.
        return False

    def _generation_step(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None,
        z: torch.Tensor | None,
        cache: VAELMCache | None,
        use_cache: bool,
        return_dict: bool | None,
    ) -> VAELMOutput | tuple:
        """`generate`'s call of `forward`: [`decode_step`] from the cached state, wrapped as a `VAELMOutput`."""
        if z is None:
            raise ValueError(
                "A VAELM decoding step needs the latent code z: call model.generate(z=z, ...) (z of shape "
                "(batch_size, latent_size); omit it to draw z from the prior), or use vaelm.generation."
            )
        state = cache.state if cache is not None else None
        seen = cache.seen_tokens if cache is not None else 0
        logits, state = self.decode_step(input_ids, z, state, attention_mask)
        new_cache = VAELMCache(state, seen + input_ids.size(1)) if use_cache else None
        output = VAELMOutput(logits=logits, z=z, cache=new_cache)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        cache: VAELMCache | None = None,
        attention_mask: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        use_cache: bool | None = True,
        **kwargs,
    ) -> dict:
        """
        The inputs of one decoding step: the decoder inputs not yet consumed by `cache` (all of them at the first
        step or without a cache), the matching part of the attention mask, z and the cache.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, length)`): everything decoded so far, `<s>` first.
            cache ([`VAELMCache`], *optional*): the decoder state after the tokens already consumed.
            attention_mask (`torch.Tensor` of shape `(batch_size, length)`, *optional*): 0 at prompt padding.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): one latent code per row.
            use_cache (`bool`, *optional*, defaults to `True`): keep the state between steps; `False` re-reads the
                whole prefix at every step (same result, slower).

        Returns:
            `dict`: keyword arguments of `forward`.
        """
        seen = cache.seen_tokens if cache is not None else 0
        return {
            "input_ids": input_ids[:, seen:],
            "attention_mask": attention_mask[:, seen:] if attention_mask is not None else None,
            "z": z,
            "cache": cache,
            "use_cache": bool(use_cache),
        }

    @staticmethod
    def _reorder_cache(cache: VAELMCache, beam_idx: torch.LongTensor) -> VAELMCache:
        """Beam search: keep the decoder states of the chosen beams."""
        cache.reorder_cache(beam_idx)
        return cache

    @torch.no_grad()
    def generate(
        self,
        inputs: torch.LongTensor | None = None,
        generation_config: GenerationConfig | None = None,
        z: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.LongTensor | ModelOutput:
        r"""
        Decode sentences from latent codes with any of `transformers`' decoding strategies (greedy, sampling with
        temperature / top-k / top-p, beam search, logits processors, stopping criteria, streamers).

        The decoder state is the cache (`VAELMCache`), reordered for beam search, and `z` is a model keyword argument
        that `generate` expands for beams and `num_return_sequences`.

        Args:
            inputs (`torch.LongTensor` of shape `(batch_size, length)`, *optional*):
                A decoder prompt `<s> w1 … wk` (the start of the sentences, left- or right-padded with an
                `attention_mask`); `<s>` alone when omitted. Sentences to *encode* go to `model.encode` instead.
            generation_config ([`~generation.GenerationConfig`], *optional*): as in `GenerationMixin.generate`.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`, *optional*):
                The latent codes to decode, e.g. `model.encode(...)[0]` (posterior means). When omitted, z is drawn
                from the prior N(0, I), one per prompt row.
            kwargs: everything `GenerationMixin.generate` accepts (`max_new_tokens`, `do_sample`, `top_p`,
                `num_beams`, `attention_mask`, …).

        Returns:
            `torch.LongTensor` (or a `GenerateOutput` with `return_dict_in_generate=True`): `<s>`, the prompt, then
            the generated words, padded with `<pad>` after `</s>`.
        """
        if kwargs.get("inputs_embeds") is not None:
            raise ValueError(
                "VAELMModel.generate takes token ids (a decoder prompt starting with <s>), not inputs_embeds."
            )
        prompt = inputs if inputs is not None else kwargs.pop("input_ids", None)
        if prompt is not None:
            prompt = torch.as_tensor(prompt, device=self.device)
            if prompt.dim() == 1:
                prompt = prompt.unsqueeze(0)
            mask = kwargs.get("attention_mask")
            mask = (
                (prompt != self.config.pad_token_id)
                if mask is None
                else torch.as_tensor(mask, device=prompt.device).bool()
            )
            first = mask.long().argmax(dim=1)
            starts = prompt.gather(1, first.unsqueeze(1)).squeeze(1)
            if not bool((starts == self.config.bos_token_id).all()) or bool(
                ((prompt == self.config.eos_token_id) & mask).any()
            ):
                raise ValueError(
                    "VAELMModel.generate decodes from latent codes: `inputs` is an optional decoder prompt `<s> w1 … wk` "
                    "(starting with <s>, without </s>). To decode a sentence's posterior, encode it first: "
                    "`mu, logvar = model.encode(input_ids)` then `model.generate(z=mu)`, or use "
                    "vaelm.generation (sample_posterior, reconstruct, homotopy, impute)."
                )
        if z is None:
            batch_size = prompt.size(0) if prompt is not None else 1
            z = torch.randn(batch_size, self.config.latent_size, device=self.device, dtype=self.dtype)
        else:
            z = torch.as_tensor(z, device=self.device, dtype=self.dtype)
            if z.dim() == 1:
                z = z.unsqueeze(0)
            if z.dim() != 2 or z.size(1) != self.config.latent_size:
                raise ValueError(f"z must have shape (batch_size, {self.config.latent_size}), got {tuple(z.shape)}.")
        if prompt is None:
            prompt = torch.full((z.size(0), 1), self.config.bos_token_id, dtype=torch.long, device=self.device)
        elif prompt.size(0) != z.size(0):
            raise ValueError(f"{prompt.size(0)} prompts but {z.size(0)} latent codes: give one z per prompt row.")
        return super().generate(prompt, generation_config=generation_config, z=z, **kwargs)


__all__ = [
    "RECURRENT_MODULES",
    "VAELMCache",
    "VAELMModel",
    "VAELMOutput",
    "VAELMPreTrainedModel",
    "gaussian_kl",
    "recurrent_layer",
    "run_recurrent",
]
