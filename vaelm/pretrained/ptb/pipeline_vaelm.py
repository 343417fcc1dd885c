"""The `sentence-vae` pipeline: encode, reconstruct, sample and interpolate with a VAE language model.

This file travels with every saved model (`custom_pipelines` in `config.json`), so that
`pipeline("sentence-vae", model=folder_or_id, trust_remote_code=True)` works where vaelm is not installed. Like
`modeling_vaelm.py`, it imports only torch and transformers.

    >>> vae = pipeline("sentence-vae", model="runs/ptb", trust_remote_code=True)
    >>> vae("the company said it will buy back shares", mode="encode")       # {"mu": [...], "logvar": [...]}
    >>> vae("the company said it will buy back shares")                      # reconstruct (posterior mean)
    >>> vae(3, mode="sample", seed=0)                                         # 3 sentences, z ~ N(0, I)
    >>> vae(3, mode="sample", seed=0, return_z=True)                          # each with its code: {"text", "z"}
    >>> vae({"start": "i want to talk to you .", "end": "she did n't want to be with him"}, mode="interpolate", steps=5)

Decoding takes `model.generate`'s keyword arguments (`do_sample`, `top_p`, `num_beams`, `max_new_tokens`, …); the
model's `generation_config.json` (greedy, `<unk>` suppressed) applies otherwise. `<unk>` stays visible in the text
when it is not suppressed (`suppress_tokens=None`).
"""

import torch
from transformers import Pipeline

MODES = ("encode", "reconstruct", "sample", "interpolate")
# Equal to vaelm.generation.decoding's, which this file cannot import (it travels without vaelm); a test compares
# them. Decoding itself follows the model's generation_config.json, written from vaelm's DecodingConfig defaults.
UNSPACED_SEGMENTATIONS = ("jieba", "char")
HOMOTOPY_STEPS = 5


class SentenceVAEPipeline(Pipeline):
    """
    Encode (posterior mean and log-variance), reconstruct, sample from the prior, or interpolate between sentences.

    Call arguments:
        inputs: a sentence (`encode`, `reconstruct`), a number of sentences (`sample`), or
            `{"start": ..., "end": ...}` (`interpolate`).
        mode (`str`, *optional*, defaults to `"reconstruct"`): one of `encode`, `reconstruct`, `sample`, `interpolate`.
        steps (`int`, *optional*, defaults to 5): intermediate points of an interpolation (both ends are added).
        slerp (`bool`, *optional*, defaults to `False`): spherical instead of linear interpolation.
        seed (`int`, *optional*): seed of the prior samples.
        return_z (`bool`, *optional*, defaults to `False`): add each output's latent code (`"z"`, a list of floats)
            to the samples and interpolation points.
        generate_kwargs: passed to `model.generate`.
    """

    def __init__(self, *positional, **keyword):
        super().__init__(*positional, **keyword)
        if getattr(self.model.config, "segmentation", "whitespace") == "jieba":
            jieba_module()  # a Chinese model without jieba fails here, saying so, not at its first sentence

    def _sanitize_parameters(self, mode=None, steps=None, slerp=None, seed=None, return_z=None, **generate_kwargs):
        preprocess = {
            "mode": mode or "reconstruct",
            "steps": HOMOTOPY_STEPS if steps is None else steps,
            "slerp": bool(slerp),
            "seed": seed,
        }
        if preprocess["mode"] not in MODES:
            raise ValueError(f"Unknown mode {preprocess['mode']!r}: choose one of {', '.join(MODES)}.")
        postprocess = {} if return_z is None else {"return_z": bool(return_z)}
        return preprocess, {"generate_kwargs": generate_kwargs}, postprocess

    # ---------------------------------------------------------------------------------------------- text <-> ids
    def _ids(self, sentence) -> list[int]:
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(f"Give a non-empty sentence, got {sentence!r}.")
        if getattr(self.model.config, "segmentation", "whitespace") == "jieba":
            sentence = " ".join(word for word in jieba_module().cut(sentence) if word.strip())
        ids = self.tokenizer(sentence.strip(), verbose=False)["input_ids"]
        eos = self.model.config.eos_token_id
        return ids if ids[-1] == eos else [*ids, eos]  # a whole sentence ends with </s>

    def _text(self, ids: list[int]) -> str:
        config = self.model.config
        if config.eos_token_id in ids:
            ids = ids[: ids.index(config.eos_token_id)]
        hidden = {config.bos_token_id, config.eos_token_id, config.pad_token_id}
        tokens = self.tokenizer.convert_ids_to_tokens([i for i in ids if i not in hidden])  # <unk> kept, no holes
        unspaced = getattr(config, "segmentation", "whitespace") in UNSPACED_SEGMENTATIONS
        return ("" if unspaced else " ").join(tokens)

    # ---------------------------------------------------------------------------------------------- pipeline steps
    def preprocess(self, inputs, mode="reconstruct", steps=HOMOTOPY_STEPS, slerp=False, seed=None):
        if mode == "sample":
            if not isinstance(inputs, int) or inputs < 1:
                raise ValueError(f"mode='sample' takes the number of sentences (a positive int), got {inputs!r}.")
            return {"mode": mode, "num": inputs, "seed": seed}
        if mode == "interpolate":
            if not isinstance(inputs, dict) or set(inputs) != {"start", "end"}:
                raise ValueError("mode='interpolate' takes {'start': sentence, 'end': sentence}.")
            sentences = [inputs["start"], inputs["end"]]
        else:
            sentences = [inputs]
        rows = [self._ids(sentence) for sentence in sentences]
        batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt")
        return {"mode": mode, "steps": steps, "slerp": slerp, **batch}

    def _forward(self, model_inputs, generate_kwargs=None):
        mode, model = model_inputs["mode"], self.model
        if mode == "sample":
            generator = (
                torch.Generator().manual_seed(model_inputs["seed"]) if model_inputs["seed"] is not None else None
            )
            z = torch.randn(model_inputs["num"], model.config.latent_size, generator=generator)
        else:
            mu, logvar = model.encode(model_inputs["input_ids"], model_inputs["attention_mask"])
            if mode == "encode":
                return {"mode": mode, "mu": mu[0], "logvar": logvar[0]}
            z = mu if mode == "reconstruct" else interpolate(mu[0], mu[1], model_inputs["steps"], model_inputs["slerp"])
        z = z.to(device=model.device, dtype=model.dtype)
        sequences = model.generate(z=z, **(generate_kwargs or {}))
        return {"mode": mode, "sequences": sequences[:, 1:], "z": z}

    def postprocess(self, model_outputs, return_z=False):
        if model_outputs["mode"] == "encode":
            return {"mu": model_outputs["mu"].tolist(), "logvar": model_outputs["logvar"].tolist()}
        texts = [self._text(row) for row in model_outputs["sequences"].tolist()]
        if model_outputs["mode"] == "reconstruct":
            return {"text": texts[0]}
        if not return_z:
            return [{"text": text} for text in texts]
        return [{"text": text, "z": code} for text, code in zip(texts, model_outputs["z"].tolist())]


def jieba_module():
    """
    jieba, which Chinese models (`segmentation="jieba"`) cut their input into words with, as at training.

    The import sits inside `try`: transformers' check of a remote-code file's imports skips such imports, so
    `pipeline("sentence-vae", ..., trust_remote_code=True)` of any other model works where jieba is not installed.

    Raises:
        `ImportError`: jieba is not installed (saying how to install it).
    """
    try:
        import jieba  # Chinese models only
    except ImportError:
        raise ImportError(
            "This model cuts Chinese text into words with jieba (its config.json has segmentation 'jieba'), and jieba "
            "is not installed. Install it with: pip install jieba"
        ) from None
    jieba.setLogLevel(60)
    return jieba


def interpolate(start: torch.Tensor, end: torch.Tensor, steps: int, slerp: bool = False) -> torch.Tensor:
    """`steps + 2` evenly spaced codes from `start` to `end`, both included (linear, or spherical with `slerp`)."""
    weights = torch.linspace(0.0, 1.0, steps + 2, dtype=start.dtype).unsqueeze(1)
    if not slerp:
        return (1 - weights) * start + weights * end
    angle = torch.arccos(torch.clamp(torch.nn.functional.cosine_similarity(start, end, dim=0), -1.0, 1.0))
    if float(angle) < 1e-6:
        return (1 - weights) * start + weights * end
    return (torch.sin((1 - weights) * angle) * start + torch.sin(weights * angle) * end) / torch.sin(angle)


CUSTOM_PIPELINES = {
    "sentence-vae": {"impl": "pipeline_vaelm.SentenceVAEPipeline", "pt": ["AutoModel"], "tf": [], "type": "text"}
}

__all__ = ["CUSTOM_PIPELINES", "SentenceVAEPipeline"]
