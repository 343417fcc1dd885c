"""Generation: sentences from latent codes (prior and posterior samples, homotopies, imputation).

- `decoding`: [`DecodingConfig`], the decoding settings and their defaults (one home for the commands, `SentenceVAE`,
  both pipelines and the demo); imports no torch.
- `sentence_vae`: [`SentenceVAE`], a model and its tokenizer speaking sentences (text in, text out).
"""

from ..compat import lazy_exports

_EXPORTS = {
    "DecodingConfig": ".decoding",
    "INTERPOLATIONS": ".decoding",
    "MASK_PATTERN": ".decoding",
    "STRATEGIES": ".decoding",
    "SentenceVAE": ".sentence_vae",
    "UNSPACED_SEGMENTATIONS": ".decoding",
    "interpolate": ".sentence_vae",
    "load": ".sentence_vae",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
