"""Registers vaelm with transformers' Auto classes and pipelines when both sides are loaded, so `import vaelm` stays light.

`import vaelm` imports no torch (a command's `--help` stays fast), yet `import vaelm` followed by
`AutoModel.from_pretrained(folder)`, `AutoConfig.from_pretrained(folder)` or `pipeline("sentence-vae", ...)` must find
vaelm's classes without remote code. Each registration needs one transformers module (the Auto mapping or the pipeline
registry) and one vaelm module, and is made as soon as both have finished loading, whichever comes last: a finder on
`sys.meta_path` notices when a watched module finishes loading. Where one is still loading, its own end triggers it.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# transformers module -> (vaelm module it needs, function that registers)


def _register_config() -> None:
    from transformers import AutoConfig

    from .configuration_vaelm import VAELMConfig

    AutoConfig.register("vaelm", VAELMConfig, exist_ok=True)


def _register_model() -> None:
    from transformers import AutoModel, AutoModelForCausalLM

    from .configuration_vaelm import VAELMConfig
    from .modeling_vaelm import VAELMModel

    AutoModel.register(VAELMConfig, VAELMModel, exist_ok=True)
    AutoModelForCausalLM.register(VAELMConfig, VAELMModel, exist_ok=True)


def _register_tokenizer() -> None:
    # A Chinese model's tokenizer_config.json names VAELMTokenizer (it cuts words with jieba): found without remote code.
    from transformers import AutoTokenizer

    from .configuration_vaelm import VAELMConfig
    from .tokenization_vaelm import VAELMTokenizer

    AutoTokenizer.register(VAELMConfig, fast_tokenizer_class=VAELMTokenizer, exist_ok=True)


def _register_pipeline() -> None:
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    from .pipeline_vaelm import SentenceVAEPipeline

    PIPELINE_REGISTRY.register_pipeline("sentence-vae", pipeline_class=SentenceVAEPipeline, pt_model=AutoModel)


def _save_with_auto_map() -> None:
    # save_pretrained writes auto_map and copies the source files next to the weights (the folder loads elsewhere)
    from .configuration_vaelm import VAELMConfig
    from .modeling_vaelm import VAELMModel

    VAELMConfig.register_for_auto_class()
    VAELMModel.register_for_auto_class("AutoModelForCausalLM")


# (transformers module or None, vaelm modules, registration)
REGISTRATIONS = (
    ("transformers.models.auto.configuration_auto", ("vaelm.configuration_vaelm",), _register_config),
    ("transformers.models.auto.modeling_auto", ("vaelm.configuration_vaelm", "vaelm.modeling_vaelm"), _register_model),
    (
        "transformers.models.auto.tokenization_auto",
        ("vaelm.configuration_vaelm", "vaelm.tokenization_vaelm"),
        _register_tokenizer,
    ),
    ("transformers.pipelines", ("vaelm.pipeline_vaelm",), _register_pipeline),
    (None, ("vaelm.configuration_vaelm", "vaelm.modeling_vaelm"), _save_with_auto_map),
)
WATCHED = {name for library, ours, _ in REGISTRATIONS for name in (library, *ours) if name}
_done: set = set()


def _loaded(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _loading(name: str) -> bool:
    return name in sys.modules and not _loaded(name)


def register_ready() -> None:
    """Make every registration whose transformers side has loaded; import vaelm's side unless it is loading now."""
    for library, ours, register in REGISTRATIONS:
        if register in _done or (library and not _loaded(library)):
            continue
        if library is None and not all(_loaded(name) for name in ours):
            continue
        if any(_loading(name) for name in ours):
            continue  # its own end of loading comes back here
        _done.add(register)
        register()


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.__spec__._initializing = False  # finished: what waited on it may register now
        register_ready()


class _WatchLoads(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Watch the modules above, and register at once what is already loaded (idempotent)."""
    if not any(isinstance(finder, _WatchLoads) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WatchLoads())
    register_ready()
