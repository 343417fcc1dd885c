"""vaelm: sentence-level variational auto-encoder language models (Bowman et al. 2016), native to transformers.

`import vaelm` is light: it imports no torch, so that a command's `--help` answers at once (`benchmarks/startup.py`
measures it). The public names below therefore load on first use, and vaelm registers with transformers' Auto classes
and pipelines as soon as those are loaded (`vaelm.registration`).
"""

import importlib

from . import registration
from .version import __version__ as __version__

# public name -> the module that defines it, imported on first use (PEP 562): importing them here would load torch.
_PUBLIC = {
    "DEFAULT_MODEL": ".pretrained",
    "DecodingConfig": ".generation.decoding",
    "SentenceVAE": ".generation.sentence_vae",
    "SentenceVAEPipeline": ".pipeline_vaelm",
    "VAELMCache": ".modeling_vaelm",
    "VAELMConfig": ".configuration_vaelm",
    "VAELMModel": ".modeling_vaelm",
    "VAELMOutput": ".modeling_vaelm",
    "VAELMPreTrainedModel": ".modeling_vaelm",
    "build_tokenizer": ".corpora.vocabulary",
    "gaussian_kl": ".modeling_vaelm",
    "interpolate": ".generation.sentence_vae",
    "load_model_and_tokenizer": ".pretrained.loading",  # the checked loader, not the raw one
    "load_tokenizer": ".pretrained.loading",
    "segment": ".tokenization_vaelm",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


registration.install()
