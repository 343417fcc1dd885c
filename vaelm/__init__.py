"""vaelm: sentence-level variational auto-encoder language models (Bowman et al. 2016), native to transformers."""

import os

# Idle OpenMP threads sleep instead of spinning: a spinning thread steals the core that its partner shares with a busy
# process, and training with 2 threads then ran at a third of the 1-thread speed (README "Speed"). libgomp reads this
# once, when torch loads it, so it is set before the first torch import; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM  # noqa: E402 (after the OpenMP setting)
from transformers.pipelines import PIPELINE_REGISTRY  # noqa: E402

from .configuration_vaelm import VAELMConfig
from .generation import DecodingConfig, SentenceVAE, interpolate
from .loading import load_model_and_tokenizer, load_tokenizer  # the checked loader, not the raw one
from .modeling_vaelm import VAELMCache, VAELMModel, VAELMOutput, VAELMPreTrainedModel, gaussian_kl
from .pipeline_vaelm import SentenceVAEPipeline
from .pretrained import DEFAULT_MODEL
from .tokenization_vaelm import build_tokenizer, segment

from .version import __version__ as __version__

# Local registration: AutoConfig/AutoModel resolve "vaelm" without remote code when the package is installed.
AutoConfig.register("vaelm", VAELMConfig, exist_ok=True)
AutoModel.register(VAELMConfig, VAELMModel, exist_ok=True)
AutoModelForCausalLM.register(VAELMConfig, VAELMModel, exist_ok=True)
# Hub registration: save_pretrained writes auto_map and copies the two source files next to the weights.
VAELMConfig.register_for_auto_class()
VAELMModel.register_for_auto_class("AutoModelForCausalLM")
# pipeline("sentence-vae", model=...) here; saved folders carry the pipeline file for trust_remote_code elsewhere.
PIPELINE_REGISTRY.register_pipeline("sentence-vae", pipeline_class=SentenceVAEPipeline, pt_model=AutoModel)

__all__ = [
    "DEFAULT_MODEL",
    "DecodingConfig",
    "SentenceVAE",
    "SentenceVAEPipeline",
    "VAELMCache",
    "VAELMConfig",
    "VAELMModel",
    "VAELMOutput",
    "VAELMPreTrainedModel",
    "build_tokenizer",
    "gaussian_kl",
    "interpolate",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "segment",
]
