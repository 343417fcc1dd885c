"""Forward-only -log p(x|z) of many (sentence, latent sample) rows: the evaluation's decoder scoring.

[`DecoderScorer`] decodes the K·B latent samples of a batch for an LSTM or GRU decoder faster than the model's own
`reconstruction_nll` (which [`reference_row_nll`] calls, and which [`vaelm.evaluation.metrics`] checks it against
on the first batch): each sentence's input projection is shared by its samples, the rows still running shrink as
sentences end (no padding is ever computed), and one time step is scored at a time, so memory is bounded by
`rows × vocab_size` whatever K and the sentence lengths are.
"""

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from ..modeling_vaelm import VAELMModel


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
            order = torch.cat(
                [
                    torch.arange(0, 2 * hidden),
                    torch.arange(3 * hidden, 4 * hidden),
                    torch.arange(2 * hidden, 3 * hidden),
                ]
            )
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
        head_bias = (
            model.lm_head.bias.detach().float()
            if model.lm_head.bias is not None
            else head_weight.new_zeros(head_weight.size(0))
        )
        self.head_weight_with_bias = (
            torch.cat([head_weight.t(), head_bias.unsqueeze(0)]).to(self.head_dtype).contiguous()
        )

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

    def _lstm_cell(
        self, layer: int, input_gates: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        """One LSTM step of `layer` on gates ordered (i, f, o, g), input part given: the new `(h, c)`."""
        hidden, cell = state
        size = self.hidden_size
        gates = torch.addmm(input_gates, hidden, self.recurrent_weights_t[layer])
        sigmoids = torch.sigmoid(gates[:, : 3 * size])
        candidate = torch.tanh(gates[:, 3 * size :])
        cell = torch.addcmul(sigmoids[:, size : 2 * size] * cell, sigmoids[:, :size], candidate)
        return sigmoids[:, 2 * size :] * torch.tanh(cell), cell

    def _gru_cell(
        self, layer: int, input_gates: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, ...]:
        """One GRU step of `layer` (PyTorch's equations, gates (r, z, n)), input part given: the new `(h,)`."""
        (hidden,) = state
        size = self.hidden_size
        recurrent = torch.addmm(self.recurrent_biases[layer], hidden, self.recurrent_weights_t[layer])
        reset_update = torch.sigmoid(input_gates[:, : 2 * size] + recurrent[:, : 2 * size])
        candidate = torch.tanh(
            torch.addcmul(input_gates[:, 2 * size :], reset_update[:, :size], recurrent[:, 2 * size :])
        )
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
        if any(a < b for a, b in itertools.pairwise(steps_list)):
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
            if self.model.expert_prior is not None:  # a mixture of softmaxes: the model's own head, in float32
                log_probs = self.model.output_scores(head_inputs)
                nll[:active] -= log_probs.gather(1, targets[step].index_select(0, sentences).unsqueeze(1)).squeeze(1)
                continue
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
        nll, _ = model.reconstruction_nll(
            input_ids.index_select(0, row_sentence), attention_mask.index_select(0, row_sentence), z
        )
    return nll.float()


__all__ = ["DecoderScorer", "reference_row_nll"]
