"""vaelm: sentence-level variational auto-encoder language models (Bowman et al. 2016), native to transformers.

`import vaelm` is light: the public names below load on first use, and vaelm registers with transformers' Auto
classes and pipelines as soon as those are loaded (`vaelm.registration`). Old module paths stay importable
(`vaelm.compat`).
"""

import os

# Idle OpenMP threads sleep instead of spinning: a spinning thread steals the core that its partner shares with a busy
# process, and training with 2 threads then ran at a third of the 1-thread speed (docs "Speed"). libgomp reads this
# once, when torch loads it, so it is set before the first torch import; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import compat, registration
from .version import __version__ as __version__

_EXPORTS = {
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
__getattr__, __dir__ = compat.lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

compat.install()
registration.install()
