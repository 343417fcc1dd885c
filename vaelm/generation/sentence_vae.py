"""Generation with a VAELM: prior and posterior samples, decoding strategies, homotopies and imputation.

Everything decodes through `VAELMModel.generate` (transformers' `GenerationMixin`, with the LSTM state as the cache
and z as a model keyword argument), so greedy search, temperature / top-k / top-p sampling and beam search are the
library's own, and any logits processor works too. This module adds what a sentence VAE needs around it:

- [`DecodingConfig`]: the decoding strategy, validated, turned into `generate` keyword arguments;
- [`interpolate`]: evenly spaced latent points between two codes (linear or spherical), both ends included;
- [`SentenceVAE`]: a model and its tokenizer, speaking sentences (text in, text out), with Chinese segmentation
  applied on the way in and words joined without spaces on the way out.

Example:

```python
>>> import torch
>>> from vaelm.generation import DecodingConfig, SentenceVAE

>>> vae = SentenceVAE.from_pretrained("path/to/model")
>>> torch.manual_seed(0)
>>> vae.sample_prior(3)                                        # z ~ N(0, I), greedy decoding
>>> vae.sample_posterior("the company said it will buy shares", 2, decoding=DecodingConfig("sample", top_p=0.9))
>>> vae.homotopy("the market fell", "investors bought stock", steps=3, mode="slerp")
>>> vae.impute("the company said it will ___")
```
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.nn import functional as F

from ..modeling_vaelm import VAELMModel, gaussian_kl
from ..pretrained.loading import default_device, load_model_and_tokenizer
from ..tokenization_vaelm import BOS, EOS, PAD, encode_sentences
from .decoding import (
    HOMOTOPY_STEPS,
    IMPUTE_STEPS,
    INTERPOLATIONS,
    MASK_PATTERN,
    UNSPACED_SEGMENTATIONS,
    DecodingConfig,
)


def interpolate(start: torch.Tensor, end: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """
    Evenly spaced points from `start` to `end`, both included: `steps` points strictly between them.

    Args:
        start (`torch.Tensor` of shape `(latent_size,)`): the first point.
        end (`torch.Tensor` of shape `(latent_size,)`): the last point.
        steps (`int`): number of intermediate points (0 gives just the two ends).
        mode (`str`, *optional*, defaults to `"linear"`): `"linear"` (equal Euclidean steps on the segment) or
            `"slerp"` (spherical interpolation: equal angular steps on the great circle through both points, so
            that points between two codes of equal norm keep that norm instead of shrinking towards the origin,
            where prior samples never lie). Nearly parallel or opposite codes fall back to linear.

    Returns:
        `torch.Tensor` of shape `(steps + 2, latent_size)`.
    """
    if mode not in INTERPOLATIONS:
        raise ValueError(f"Unknown interpolation {mode!r}: choose one of {', '.join(INTERPOLATIONS)}.")
    if steps < 0:
        raise ValueError(f"The number of intermediate steps must be 0 or more, got {steps}.")
    if start.shape != end.shape or start.dim() != 1:
        raise ValueError(
            f"Interpolation needs two vectors of the same size, got {tuple(start.shape)} and {tuple(end.shape)}."
        )
    t = torch.linspace(0.0, 1.0, steps + 2, dtype=torch.float64).unsqueeze(1)
    a, b = start.double(), end.double()
    points = (1 - t) * a + t * b
    if mode == "slerp":
        norms = a.norm() * b.norm()
        if norms > 0:
            cos = torch.clamp(torch.dot(a, b) / norms, -1.0, 1.0)
            omega = torch.arccos(cos)
            sin = torch.sin(omega)
            if sin > 1e-6:
                points = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    points[0], points[-1] = a, b
    return points.to(start.dtype)


@contextmanager
def _evaluation_mode(model: torch.nn.Module):
    """No dropout, whatever mode the model was in; the mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class SentenceVAE:
    """
    A VAELM model with its tokenizer: encode sentences, sample from the prior or a posterior, interpolate, impute.

    Randomness comes from torch's global generator: `torch.manual_seed` (or `transformers.set_seed`) before a call
    makes it reproducible.

    Args:
        model ([`VAELMModel`]): the model (put in evaluation mode while decoding).
        tokenizer (`PreTrainedTokenizerFast`): its tokenizer (`load_tokenizer(model_folder)`).
    """

    def __init__(self, model: VAELMModel, tokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config
        self.segmentation = getattr(model.config, "segmentation", "whitespace")
        self._hidden_ids = {model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id}

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device | None = None, **hub_kwargs) -> SentenceVAE:
        """
        Load a model and its tokenizer from a folder written by `vaelm-train` or from a Hub id.

        Args:
            path (`str` or `Path`): the model folder or Hub id.
            device (`str` or `torch.device`, *optional*): where to run; a GPU when there is one, else the CPU.
            hub_kwargs: passed to `from_pretrained` (`revision`, `token`, …).
        """
        if not str(path).strip():
            raise ValueError("No model given: pass a model folder written by vaelm-train, or a Hub id (--model).")
        model, tokenizer = load_model_and_tokenizer(path, device=device or default_device(), **hub_kwargs)
        return cls(model, tokenizer)

    # ---------------------------------------------------------------------------------------------- text <-> ids
    @property
    def device(self) -> torch.device:
        return self.model.device

    def tokenize(self, sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        """
        Segment (as at training) and tokenize sentences into `<s> w1 … wn </s>` batches.

        Raises:
            `ValueError`: when a sentence is empty.
        """
        sentences = list(sentences)
        for sentence in sentences:
            if not isinstance(sentence, str) or not sentence.strip():
                raise ValueError("Empty sentence: give at least one word to encode.")
        ids = encode_sentences(self.tokenizer, [s.strip() for s in sentences], self.segmentation)
        batch = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        return {
            "input_ids": batch["input_ids"].to(self.device),
            "attention_mask": batch["attention_mask"].to(self.device),
        }

    def to_text(self, ids: Sequence[int]) -> str:
        """
        Words of a decoded sequence, up to its first `</s>`; `<s>`/`</s>`/`<pad>` dropped, `<unk>` kept (PTB shows
        it). Chinese words (jieba or character segmentation) are joined without spaces.
        """
        ids = list(ids)
        if self.config.eos_token_id in ids:
            ids = ids[: ids.index(self.config.eos_token_id)]
        tokens = self.tokenizer.convert_ids_to_tokens([i for i in ids if i not in self._hidden_ids])
        tokens = [t for t in tokens if t not in (BOS, EOS, PAD)]
        decoder = self.tokenizer.backend_tokenizer.decoder
        if self.segmentation == "words" and decoder is not None:
            return decoder.decode(tokens)  # tokenizer.json's decoder: no space before punctuation, as the text read
        return ("" if self.segmentation in UNSPACED_SEGMENTATIONS else " ").join(tokens)

    # ---------------------------------------------------------------------------------------------- latent codes
    @torch.no_grad()
    def encode(self, sentences: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Posterior parameters q(z|x) of sentences.

        Args:
            sentences (`Sequence[str]`): raw sentences (segmented here for Chinese models).

        Returns:
            `(mu, logvar)`, each of shape `(len(sentences), latent_size)`.

        Raises:
            `ValueError`: for a model without a latent variable (`--latent_size 0`), which has no posterior.
        """
        if not self.config.has_latent:
            raise ValueError(
                "This model has no latent variable (it was trained with --latent_size 0, a plain language model), so "
                "sentences have no posterior to sample, reconstruct or interpolate. Sample it without --sentence, or "
                "complete a sentence's start with --impute."
            )
        with _evaluation_mode(self.model):
            return self.model.encode(**self.tokenize(sentences))

    def prior(self, num: int) -> torch.Tensor:
        """`num` latent codes z ~ N(0, I), shape `(num, latent_size)`."""
        if num < 1:
            raise ValueError(f"The number of samples must be a positive integer, got {num}.")
        return torch.randn(num, self.config.latent_size).to(device=self.device, dtype=self.model.dtype)

    @staticmethod
    def posterior(mu: torch.Tensor, logvar: torch.Tensor, num: int, mean: bool = False) -> torch.Tensor:
        """
        `num` codes from N(mu, exp(logvar)) (one sentence's posterior), or `num` copies of `mu` with `mean=True`.

        Args:
            mu (`torch.Tensor` of shape `(latent_size,)`): posterior mean.
            logvar (`torch.Tensor` of shape `(latent_size,)`): posterior log-variance.
            num (`int`): number of codes.
            mean (`bool`, *optional*, defaults to `False`): return the mean instead of samples.
        """
        if num < 1:
            raise ValueError(f"The number of samples must be a positive integer, got {num}.")
        mu, logvar = mu.reshape(1, -1).expand(num, -1), logvar.reshape(1, -1).expand(num, -1)
        if mean:
            return mu.clone()
        return mu + torch.randn(mu.shape).to(mu) * (0.5 * logvar).exp()

    # ---------------------------------------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode_ids(
        self,
        z: torch.Tensor,
        decoding: DecodingConfig | None = None,
        prompt_ids: Sequence[int] | None = None,
    ) -> list[list[int]]:
        """
        Decode latent codes into word ids with `model.generate`.

        Args:
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): latent codes.
            decoding ([`DecodingConfig`], *optional*): the strategy; greedy by default.
            prompt_ids (`Sequence[int]`, *optional*): the start of every sentence, `<s>` first; `<s>` alone by
                default. The returned ids continue it.

        Returns:
            `list[list[int]]`: the generated ids of each row, `</s>` and padding removed.
        """
        decoding = decoding or DecodingConfig()
        z = torch.as_tensor(z).to(device=self.device, dtype=self.model.dtype)
        if z.dim() == 1:
            z = z.unsqueeze(0)
        prompt = list(prompt_ids) if prompt_ids is not None else [self.config.bos_token_id]
        prompt_tensor = torch.tensor([prompt], dtype=torch.long, device=self.device).expand(z.size(0), -1)
        max_new_tokens = decoding.max_new_tokens or self.config.max_sentence_length + 1
        with _evaluation_mode(self.model):
            sequences = self.model.generate(
                prompt_tensor,
                z=z,
                max_new_tokens=max_new_tokens,
                **decoding.generate_kwargs(self.config.unk_token_id),
            )
        results = []
        for row in sequences[:, len(prompt) :].tolist():
            if self.config.eos_token_id in row:
                row = row[: row.index(self.config.eos_token_id)]
            results.append(row)
        return results

    def decode(self, z: torch.Tensor, decoding: DecodingConfig | None = None) -> list[str]:
        """Decode latent codes of shape `(batch_size, latent_size)` into sentences."""
        return [self.to_text(ids) for ids in self.decode_ids(z, decoding)]

    @torch.no_grad()
    def log_likelihood(self, z: torch.Tensor, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """
        log p(w1 … wn </s> | z) of decoded word ids (as `decode_ids` returns them), one per row of `z`.

        Args:
            z (`torch.Tensor` of shape `(batch_size, latent_size)`): latent codes.
            ids (`Sequence[Sequence[int]]`): words of each sentence, without `<s>` and `</s>`.
        """
        bos, eos, pad = self.config.bos_token_id, self.config.eos_token_id, self.config.pad_token_id
        rows = [[bos, *row, eos] for row in ids]
        width = max(len(row) for row in rows)
        input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows], device=self.device)
        with _evaluation_mode(self.model):
            nll, _ = self.model.reconstruction_nll(
                input_ids, (input_ids != pad).long(), torch.as_tensor(z).to(self.device)
            )
        return -nll

    # ---------------------------------------------------------------------------------------------- use cases
    def sample_prior(self, num: int, decoding: DecodingConfig | None = None) -> list[dict]:
        """
        `num` sentences decoded from z ~ N(0, I).

        Returns:
            `list[dict]`: `{"text": str, "z": list[float]}` per sentence.
        """
        z = self.prior(num)
        return [{"text": text, "z": code} for text, code in zip(self.decode(z, decoding), z.tolist())]

    def sample_posterior(
        self, sentence: str, num: int = 1, mean: bool = False, decoding: DecodingConfig | None = None
    ) -> list[dict]:
        """
        Sentences decoded from q(z|sentence): `num` samples of z, or the posterior mean (a reconstruction).

        Args:
            sentence (`str`): the sentence to encode.
            num (`int`, *optional*, defaults to 1): number of outputs.
            mean (`bool`, *optional*, defaults to `False`): decode the posterior mean `num` times instead of
                samples of z (identical outputs unless the strategy samples).
            decoding ([`DecodingConfig`], *optional*): the strategy; greedy by default.

        Returns:
            `list[dict]`: `{"text": str, "z": list[float]}` per output.
        """
        mu, logvar = self.encode([sentence])
        z = self.posterior(mu[0], logvar[0], num, mean=mean)
        return [{"text": text, "z": code} for text, code in zip(self.decode(z, decoding), z.tolist())]

    def homotopy(
        self,
        start: str,
        end: str,
        steps: int = HOMOTOPY_STEPS,
        mode: str = INTERPOLATIONS[0],
        decoding: DecodingConfig | None = None,
    ) -> list[dict]:
        """
        Sentences along an evenly spaced path between the posterior means of two sentences (Bowman et al. 2016 §5.2).

        Args:
            start (`str`): first sentence.
            end (`str`): last sentence.
            steps (`int`, *optional*, defaults to 5): points strictly between the two ends; `steps + 2` outputs.
            mode (`str`, *optional*, defaults to `"linear"`): `"linear"` or `"slerp"` (see [`interpolate`]).
            decoding ([`DecodingConfig`], *optional*): the strategy; greedy by default.

        Returns:
            `list[dict]`: `{"t": float, "text": str, "z": list[float]}` for each of the `steps + 2` points.
        """
        mu, _ = self.encode([start, end])
        points = interpolate(mu[0], mu[1], steps, mode)
        texts = self.decode(points, decoding)
        ts = torch.linspace(0.0, 1.0, steps + 2).tolist()
        return [{"t": t, "text": text, "z": code} for t, text, code in zip(ts, texts, points.tolist())]

    def impute(
        self,
        text: str,
        num: int = 1,
        mean: bool = True,
        decoding: DecodingConfig | None = None,
        steps: int = IMPUTE_STEPS,
        learning_rate: float = 0.1,
        mc_samples: int = 8,
    ) -> list[dict]:
        """
        Complete a sentence whose end is missing (Bowman et al. 2016 §5.1).

        The posterior of the observed words is fitted by maximising their ELBO, E_q[log p(w1 … wk | z)] − KL(q ‖ p),
        over a Gaussian q (started from the encoder's guess, `steps` Adam steps of reparameterised gradients);
        the decoder then continues `<s> w1 … wk` from q's mean (or from samples of q with `mean=False`).

        Args:
            text (`str`): the observed start, optionally followed by `___`, `_` or `<mask>` marking the missing end.
            num (`int`, *optional*, defaults to 1): number of completions.
            mean (`bool`, *optional*, defaults to `True`): decode from q's mean; `False` draws z ~ q.
            decoding ([`DecodingConfig`], *optional*): the strategy; greedy by default.
            steps (`int`, *optional*, defaults to 50): optimisation steps (0 keeps the encoder's guess).
            learning_rate (`float`, *optional*, defaults to 0.1): Adam step size.
            mc_samples (`int`, *optional*, defaults to 8): z samples per step to estimate the expectation.

        Returns:
            `list[dict]`: `{"text", "observed", "imputed", "z"}` per completion.
        """
        observed = self._observed_part(text)
        ids = self.tokenize([observed])["input_ids"][0]
        words = ids[1:-1]  # w1 … wk, without <s> and </s>
        mu, logvar = self.fit_observed(words, steps=steps, learning_rate=learning_rate, mc_samples=mc_samples)
        z = self.posterior(mu, logvar, num, mean=mean)
        prompt = [self.config.bos_token_id, *words.tolist()]
        observed_text = self.to_text(words.tolist())
        results = []
        for row, code in zip(self.decode_ids(z, decoding, prompt_ids=prompt), z.tolist()):
            imputed = self.to_text(row)
            joiner = "" if self.segmentation in UNSPACED_SEGMENTATIONS or not imputed else " "
            results.append(
                {"text": observed_text + joiner + imputed, "observed": observed_text, "imputed": imputed, "z": code}
            )
        return results

    def fit_observed(
        self, words: torch.Tensor, steps: int = 50, learning_rate: float = 0.1, mc_samples: int = 8
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        A Gaussian q(z) = N(mu, exp(logvar)) maximising the ELBO of a sentence's first words w1 … wk
        (log p(w1 … wk | z) scores the prefix only: no `</s>`, the sentence goes on).

        Args:
            words (`torch.Tensor` of shape `(k,)`): ids of w1 … wk.
            steps (`int`, *optional*, defaults to 50): Adam steps.
            learning_rate (`float`, *optional*, defaults to 0.1): Adam step size.
            mc_samples (`int`, *optional*, defaults to 8): z samples per step.

        Returns:
            `(mu, logvar)`, each of shape `(latent_size,)`, detached.
        """
        bos, eos = self.config.bos_token_id, self.config.eos_token_id
        if not self.config.has_latent:  # a plain language model: nothing to fit, the prefix alone conditions it
            empty = torch.zeros(0, device=self.device, dtype=self.model.dtype)
            return empty, empty.clone()
        words = words.to(self.device)
        with _evaluation_mode(self.model), torch.no_grad():
            encoder_input = torch.cat([words.new_tensor([bos]), words, words.new_tensor([eos])]).unsqueeze(0)
            mu0, logvar0 = self.model.encode(encoder_input)
        mu = mu0[0].detach().clone().requires_grad_(True)
        logvar = logvar0[0].detach().clone().requires_grad_(True)
        if steps <= 0:
            return mu.detach(), logvar.detach()
        inputs = torch.cat([words.new_tensor([bos]), words[:-1]]).unsqueeze(0).expand(mc_samples, -1)
        targets = words.unsqueeze(0).expand(mc_samples, -1)
        optimizer = torch.optim.Adam([mu, logvar], lr=learning_rate)
        with _evaluation_mode(self.model), torch.enable_grad():
            for _ in range(steps):
                z = mu + torch.randn(mc_samples, mu.numel()).to(mu) * (0.5 * logvar).exp()
                logits, _ = self.model.decode_step(inputs, z)
                nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none").sum(1).mean()
                loss = nll + gaussian_kl(mu, logvar).sum()
                # Gradients for q's parameters only: the model's own .grad stays untouched.
                grad_mu, grad_logvar = torch.autograd.grad(loss, [mu, logvar])
                mu.grad, logvar.grad = grad_mu, grad_logvar
                optimizer.step()
                with torch.no_grad():
                    logvar.clamp_(min=-10.0, max=2.0)
        return mu.detach(), logvar.detach()

    @staticmethod
    def _observed_part(text: str) -> str:
        """The text before the mask marking its missing end (all of it when unmarked)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                "Empty sentence: give the first words of the sentence to impute, e.g. 'the company said ___'."
            )
        match = MASK_PATTERN.search(text)
        if match is None:
            return text.strip()
        rest = MASK_PATTERN.sub("", text[match.start() :])
        if rest.strip():
            raise ValueError(
                f"Only the end of a sentence can be imputed, but words follow the missing part in {text!r}. "
                "Put the marker (___, _ or <mask>) last, e.g. 'the company said it will ___'."
            )
        observed = text[: match.start()].strip()
        if not observed:
            raise ValueError(
                "Nothing is observed before the missing part: to generate from nothing, sample from the prior."
            )
        return observed


def load(path: str | Path, device: str | torch.device | None = None, **hub_kwargs) -> SentenceVAE:
    """Shorthand for [`SentenceVAE.from_pretrained`]."""
    return SentenceVAE.from_pretrained(path, device=device, **hub_kwargs)


__all__ = ["SentenceVAE", "interpolate", "load"]
