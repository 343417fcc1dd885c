"""VAELM: a sentence-level variational auto-encoder language model (Bowman et al. 2016).

An LSTM encoder reads `<s> w1 … wn </s>` and gives a diagonal Gaussian q(z|x); a reparameterised z sets the
initial (h, c) of an LSTM decoder that predicts `w1 … wn </s>` from `<s> w1 … wn`. Both LSTMs run on packed
sequences and the vocabulary projection is applied to real (non-padding) positions only, so padding costs
nothing and never counts in a loss.

This file imports only torch, transformers and its sibling configuration so that it travels to the Hub as-is
(`trust_remote_code=True`).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from transformers import GenerationMixin, PreTrainedModel
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
    """

    loss: torch.FloatTensor | None = None
    rec_loss: torch.FloatTensor | None = None
    kl: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mu: torch.FloatTensor | None = None
    logvar: torch.FloatTensor | None = None
    z: torch.FloatTensor | None = None
    rec_per_sentence: torch.FloatTensor | None = None


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) per dimension, same shape as `mu` (closed form)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def _pack(tensor: torch.Tensor, lengths_cpu: torch.Tensor) -> PackedSequence:
    return pack_padded_sequence(tensor, lengths_cpu, batch_first=True, enforce_sorted=False)


class VAELMPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading glue shared by VAELM models."""

    config_class = VAELMConfig
    base_model_prefix = "vaelm"
    main_input_name = "input_ids"
    # The loss is a per-sentence mean that the Trainer scales for gradient accumulation itself.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        """Uniform(-r, r) for embeddings, linear and LSTM weights (r = `initializer_range`), zero biases."""
        r = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.uniform_(module.weight, -r, r)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            for name, param in module.named_parameters():
                if "weight" in name:
                    init.uniform_(param, -r, r)
                else:
                    init.zeros_(param)


class VAELMModel(VAELMPreTrainedModel, GenerationMixin):
    """
    The Bowman et al. (2016) LSTM VAE language model.

    Args:
        config ([`VAELMConfig`]): Model configuration; sizes, dropout and special token ids.
    """

    def __init__(self, config: VAELMConfig):
        super().__init__(config)
        directions = 2 if config.bidirectional_encoder else 1
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.encoder = nn.LSTM(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional_encoder,
            batch_first=True,
        )
        self.posterior = nn.Linear(directions * config.hidden_size, 2 * config.latent_size)
        self.latent_to_state = nn.Linear(config.latent_size, 2 * config.num_layers * config.hidden_size)
        decoder_input_size = config.embedding_size + (config.latent_size if config.latent_to_every_step else 0)
        self.decoder = nn.LSTM(decoder_input_size, config.hidden_size, num_layers=config.num_layers, batch_first=True)
        self.output_dropout = nn.Dropout(config.output_dropout)
        # Tied output weights need decoder states of the embedding size.
        tied_projection = config.tie_word_embeddings and config.hidden_size != config.embedding_size
        self.output_projection = nn.Linear(config.hidden_size, config.embedding_size) if tied_projection else None
        head_input = config.embedding_size if config.tie_word_embeddings else config.hidden_size
        self.lm_head = nn.Linear(head_input, config.vocab_size)
        if config.tie_word_embeddings:
            self._tied_weights_keys = {"lm_head.weight": "embed_tokens.weight"}
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
    def encode(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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
        attention_mask = self._attention_mask(input_ids, attention_mask)
        lengths = attention_mask.sum(1).cpu()
        embeddings = self.embedding_dropout(self.embed_tokens(input_ids))
        _, (final_h, _) = self.encoder(_pack(embeddings, lengths))
        if self.config.bidirectional_encoder:
            summary = torch.cat([final_h[-2], final_h[-1]], dim=-1)
        else:
            summary = final_h[-1]
        mu, logvar = self.posterior(summary).chunk(2, dim=-1)
        return mu, logvar

    # ----------------------------------------------------------------------------------------------- decoder
    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Decoder LSTM state computed from z.

        Args:
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): latent codes.

        Returns:
            `(h, c)`, each of shape `(num_layers, batch_size, hidden_size)`.
        """
        layers, hidden = self.config.num_layers, self.config.hidden_size
        state = self.latent_to_state(z).view(z.size(0), 2, layers, hidden).permute(1, 2, 0, 3)
        return state[0].contiguous(), state[1].contiguous()

    def _decoder_inputs(self, input_ids: torch.LongTensor, z: torch.Tensor) -> torch.Tensor:
        embeddings = self.embed_tokens(input_ids)
        if self.config.latent_to_every_step:
            embeddings = torch.cat([embeddings, z.unsqueeze(1).expand(-1, input_ids.size(1), -1)], dim=-1)
        return self.embedding_dropout(embeddings)

    def _project(self, states: torch.Tensor) -> torch.Tensor:
        states = self.output_dropout(states)
        if self.output_projection is not None:
            states = self.output_projection(states)
        return self.lm_head(states)

    def decode_step(
        self,
        input_ids: torch.LongTensor,
        z: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """
        Run the decoder over a few new words (usually one) from a given state; the building block of decoding.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, steps)`): the decoder inputs of these steps.
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): latent codes.
            state (`tuple(torch.Tensor, torch.Tensor)`, *optional*): the LSTM state after the previous steps;
                `initial_state(z)` when omitted.

        Returns:
            `(logits, state)`: logits of shape `(batch_size, steps, vocab_size)` and the new LSTM state.
        """
        if state is None:
            state = self.initial_state(z)
        outputs, state = self.decoder(self._decoder_inputs(input_ids, z), state)
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
        packed_inputs = _pack(self._decoder_inputs(decoder_input_ids, z), steps_cpu)
        packed_outputs, _ = self.decoder(packed_inputs, self.initial_state(z))
        # Project real positions only: the padded [batch, steps, vocab] tensor is never built for the loss.
        logits = self._project(packed_outputs.data)
        packed_targets = _pack(targets, steps_cpu).data
        sentence_of_token = _pack(
            torch.arange(input_ids.size(0), device=input_ids.device).unsqueeze(1).expand_as(targets), steps_cpu
        ).data
        token_nll = F.cross_entropy(logits.float(), packed_targets, reduction="none")
        nll = torch.zeros(input_ids.size(0), device=token_nll.device, dtype=token_nll.dtype)
        nll = nll.index_add(0, sentence_of_token, token_nll)
        padded_logits = None
        if return_logits:
            packed_logits = PackedSequence(
                logits, packed_outputs.batch_sizes, packed_outputs.sorted_indices, packed_outputs.unsorted_indices
            )
            padded_logits, _ = pad_packed_sequence(packed_logits, batch_first=True, total_length=targets.size(1))
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
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return_logits = (not self.training) if return_logits is None else return_logits
        attention_mask = self._attention_mask(input_ids, attention_mask)
        mu, logvar = self.encode(input_ids, attention_mask)
        if z is None:
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample_latent else mu
        rec, logits = self.reconstruction_nll(input_ids, attention_mask, z, return_logits=return_logits)
        rec_loss = rec.mean()
        kl = gaussian_kl(mu, logvar).sum(-1).mean()
        output = VAELMOutput(
            loss=rec_loss + kl, rec_loss=rec_loss, kl=kl, logits=logits, mu=mu, logvar=logvar, z=z, rec_per_sentence=rec
        )
        return output if return_dict else output.to_tuple()

    def _attention_mask(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return (input_ids != self.config.pad_token_id).long()
        return attention_mask


__all__ = ["VAELMModel", "VAELMOutput", "VAELMPreTrainedModel", "gaussian_kl"]
