"""Loading a saved vaelm model and its tokenizer, with errors that say what is wrong and what to do.

Every command, `SentenceVAE.from_pretrained` and the model card load through [`load_model_and_tokenizer`] (the one
loader; `vaelm-train --model_name_or_path` uses its [`load_model`] half): it checks, before
transformers gets a chance to fail with a message about its own internals, that

- the path is an existing folder, or else a valid Hub id (`NAME` or `ORG/NAME`);
- the folder (or Hub repository) holds a `config.json` whose `model_type` is `"vaelm"`, with possible sizes;
- the weights are in `model.safetensors` (or a sharded safetensors index). Pickled weights (`pytorch_model.bin`) are
  **refused**, never unpickled: a pickle can run arbitrary code, and every vaelm model is saved as safetensors.
  Convert an old trusted file once with `torch.load(path, weights_only=True)` and `save_pretrained`;
- every weight of the model is in the file, with the right shape (nothing is silently left at random);
- the tokenizer (`tokenizer.json`) has exactly the model's `vocab_size` entries and the same special ids.

The model class is used directly, so no `trust_remote_code` is needed (or asked for) when vaelm is installed.
Errors are [`ModelLoadError`]s: one paragraph, printed by the CLI without a traceback.
"""

import json
import logging
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import PreTrainedTokenizerFast
from transformers.utils import cached_file

from .checkpoints import checkpoint_step, last_complete_checkpoint, resume_command, run_record
from .model_folder import CONFIG_NAME, RUN_CONFIGURATION_NAME, TOKENIZER_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME
from ..configuration_vaelm import VAELMConfig
from ..modeling_vaelm import VAELMModel
from ..tokenization_vaelm import check_tokenizer_matches
from ..tokenization_vaelm import load_tokenizer as _load_tokenizer

logger = logging.getLogger(__name__)

PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# Keys of `from_pretrained` that also make sense for a tokenizer from another repository than the model's.
_SHARED_HUB_KEYS = ("token", "cache_dir", "local_files_only", "proxies", "force_download")

MODEL_FOLDER_HINT = (
    "A vaelm model folder holds config.json, model.safetensors and tokenizer.json, as `vaelm-train --output_dir` "
    "(or a checkpoint-N folder inside it) writes them."
)


class ModelLoadError(ValueError):
    """A model or tokenizer that cannot be loaded, for a reason the user can fix; the CLI prints it as is."""


# ------------------------------------------------------------------------------------------------ where from
def _sentence(error: BaseException) -> str:
    """An exception's message as one sentence that ends with a full stop."""
    text = " ".join(str(error).split()) or error.__class__.__name__
    return text if text.endswith((".", "!", "?")) else text + "."


def _local_folder(path_or_id: str | Path) -> Path | None:
    """The folder `path_or_id` names on disk, `None` when it is not on disk (then it may be a Hub id)."""
    path = Path(path_or_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{path} is a file, not a model folder. Give the folder that holds it. {MODEL_FOLDER_HINT}")
    return None


# The folder vaelm's configurations train into (`output_dir: runs/...`): `runs/ptb` is a folder, never a Hub id.
LOCAL_OUTPUT_ROOTS = ("runs",)


def _looks_local(path_or_id: str) -> bool:
    """A path that cannot be meant as a Hub id: `./x`, `../x`, `/x`, `~/x`, `runs/x`, or `DIR/x` where DIR exists."""
    first = path_or_id.split("/", 1)[0]
    return path_or_id.startswith((".", "/", "~")) or first in LOCAL_OUTPUT_ROOTS or Path(first).is_dir()


def _check_hub_id(path_or_id: str) -> None:
    # A bare NAME is taken for a mistyped folder, not looked up on the Hub: vaelm models live under ORG/NAME.
    try:
        validate_repo_id(path_or_id)
        valid = path_or_id.count("/") == 1 and not _looks_local(path_or_id)
    except HFValidationError:
        valid = False
    if not valid:
        raise ModelLoadError(
            f"{path_or_id} does not exist, and it is not a Hugging Face Hub id (ORG/NAME) either. Check the path "
            "(train it first, e.g. vaelm-train configuration/ptb.yaml --dataset ptb writes runs/ptb; or omit --model "
            f"to use the bundled PTB model). {MODEL_FOLDER_HINT}"
        )


def _hub_file(repo_id: str, filename: str, hub_kwargs: dict[str, Any]) -> str | None:
    """Download (or find in the cache) one file of a Hub repository; `None` when the repository lacks it."""
    try:
        return cached_file(repo_id, filename, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    except (OSError, HFValidationError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise ModelLoadError(
            f"Could not get {filename} of {repo_id!r} from the Hugging Face Hub: {first_line} It is not a local folder "
            "either. Check the id (and --revision, or a token for a private model) and your connection; with "
            "HF_HUB_OFFLINE=1 only models already in the local cache are found."
        ) from None


def model_file(path_or_id: str | Path, filename: str, **hub_kwargs: Any) -> Path | None:
    """
    One file of a model folder or Hub repository (downloaded to the cache), `None` when the model has no such file.

    Args:
        path_or_id (`str` or `Path`): a model folder, or a Hub id.
        filename (`str`): the file's name inside the model, e.g. `training_record.json`.
        hub_kwargs: `revision`, `token`, … (used for a Hub id).
    """
    folder = _local_folder(path_or_id)
    if folder is not None:
        path = folder / filename
        return path if path.is_file() else None
    found = _hub_file(str(path_or_id), filename, hub_kwargs)
    return Path(found) if found else None


def _checkpoints_hint(folder: Path) -> str:
    """How to finish the training run writing into `folder`: its own resume command (not the command that failed)."""
    command = resume_command(folder)
    if command is not None:
        finish = f"finish that run first with `{command}`"
        processes = (run_record(folder) or {}).get("world_size") or 1
        if isinstance(processes, int) and processes > 1:
            finish += f" (it ran as {processes} processes: start it the same way, e.g. with accelerate launch)"
    else:
        finish = (f"finish that run first: rerun the vaelm-train command that trains into it (--output_dir {folder}) "
                  "with --resume_from_checkpoint true")
    checkpoint = last_complete_checkpoint(folder)
    if checkpoint is None:
        return f" The training run writing into {folder} has not saved a checkpoint yet: {finish}, then run this again."
    steps = checkpoint_step(checkpoint)
    where = f", at step {steps[0]:,} of {steps[1]:,}" if steps and steps[1] else ""
    return (f" The training run writing into {folder} has not finished (its last complete checkpoint is "
            f"{checkpoint}{where}): {finish}, then run this again; or load that checkpoint as it is.")


def check_model_source(path_or_id: str | Path, **hub_kwargs: Any) -> str:
    """
    Check that `path_or_id` names a vaelm model before anything is loaded from it.

    Args:
        path_or_id (`str` or `Path`): a model folder, or a Hub id.
        hub_kwargs: `revision`, `token`, `cache_dir`, `local_files_only`, … (used for a Hub id).

    Returns:
        `str`: the source to give `from_pretrained` (the folder, or the Hub id).

    Raises:
        [`ModelLoadError`]: the path does not exist and is no Hub id, is no vaelm model, or has no safetensors weights.
    """
    folder = _local_folder(path_or_id)
    if folder is None:
        source = str(path_or_id)
        _check_hub_id(source)
        config_file = _hub_file(source, CONFIG_NAME, hub_kwargs)
        if config_file is None:
            raise ModelLoadError(
                f"{source} is not a local folder, and no {CONFIG_NAME} was found for it on the Hugging Face Hub or in "
                "the local cache: the repository does not exist, is private (pass a token), is not a model, or is not "
                f"cached while offline. Check the path or id. {MODEL_FOLDER_HINT}"
            )
        _check_config_file(Path(config_file), source)
        if _hub_file(source, WEIGHTS_NAME, hub_kwargs) is None and _hub_file(source, WEIGHTS_INDEX_NAME, hub_kwargs) is None:
            raise ModelLoadError(
                f"The Hub repository {source!r} has no {WEIGHTS_NAME}. vaelm loads weights only from safetensors, never "
                "from pickled pytorch_model.bin files (they can run code when loaded)."
            )
        return source

    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        if any(folder.glob("checkpoint-*")) or (folder / RUN_CONFIGURATION_NAME).is_file():  # an unfinished run
            raise ModelLoadError(f"{folder} holds no finished model (no {CONFIG_NAME}).{_checkpoints_hint(folder)}")
        raise ModelLoadError(f"{folder} is not a model folder: it has no {CONFIG_NAME}. {MODEL_FOLDER_HINT}")
    _check_config_file(config_file, str(folder))
    if not (folder / WEIGHTS_NAME).is_file() and not (folder / WEIGHTS_INDEX_NAME).is_file():
        pickles = [name for name in PICKLE_WEIGHTS if (folder / name).is_file()]
        if pickles:
            raise ModelLoadError(
                f"{folder} holds its weights only as {pickles[0]}, a pickle, which vaelm refuses to load: unpickling "
                f"can run arbitrary code. If you trust the file, convert it once: load the state dict with "
                "torch.load(path, weights_only=True), then VAELMModel(config).load_state_dict(...) and "
                "save_pretrained(folder), which writes model.safetensors."
            )
        raise ModelLoadError(f"{folder} has a {CONFIG_NAME} but no weights ({WEIGHTS_NAME}).{_checkpoints_hint(folder)}")
    return str(folder)


def check_model_folder(model_dir: str | Path) -> Path:
    """
    Make sure a local folder holds a loadable vaelm model, tokenizer included, before anything is written or pushed.

    The model checks are [`check_model_source`]'s (a vaelm `config.json`, safetensors weights, never a pickle);
    this adds that the folder is local and holds the tokenizer.

    Args:
        model_dir (`str` or `Path`): a folder saved by `vaelm-train` (or `save_pretrained`).

    Returns:
        `Path`: the folder.

    Raises:
        `FileNotFoundError`: when the folder or the tokenizer is missing. [`ModelLoadError`]: when `config.json` or
        the weights are missing or wrong, naming what.
    """
    folder = Path(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"Model folder {folder} does not exist (give the --output_dir of vaelm-train).")
    check_model_source(folder)
    if not (folder / TOKENIZER_NAME).is_file():
        raise FileNotFoundError(
            f"{folder} is not a saved vaelm model: {TOKENIZER_NAME} missing. Train into it with vaelm-train "
            "(which saves the model at the end), or point --model at the folder that holds config.json."
        )
    return folder


def _check_config_file(path: Path, source: str) -> None:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ModelLoadError(f"{source}: {CONFIG_NAME} cannot be read as JSON ({error}). The file is damaged; copy it "
                             "again from where the model came from.") from None
    model_type = values.get("model_type") if isinstance(values, dict) else None
    if model_type != VAELMConfig.model_type:
        raise ModelLoadError(
            f"{source} is not a vaelm model: its {CONFIG_NAME} has model_type {model_type!r}, expected "
            f"{VAELMConfig.model_type!r}. vaelm commands load only models trained with vaelm-train."
        )


# ------------------------------------------------------------------------------------------------ loading
def load_model(path_or_id: str | Path, **hub_kwargs: Any) -> VAELMModel:
    """
    Load a [`VAELMModel`] (in evaluation mode) from a folder or a Hub id, safetensors only, without remote code.

    The model always comes back in float32, the dtype vaelm computes in, whatever the file stores: weights saved in
    float16 or bfloat16 to halve the download are widened as they load (`--bf16` then runs under autocast). Left
    to themselves, transformers would keep the file's dtype, and the first float32 tensor (the latent noise) would
    meet a half-precision layer.

    Args:
        path_or_id (`str` or `Path`): a model folder, or a Hub id.
        hub_kwargs: `revision`, `token`, `cache_dir`, `local_files_only`, …

    Raises:
        [`ModelLoadError`]: see [`check_model_source`]; also impossible config values, and weights that are
        damaged, missing some tensors or shaped for another configuration.
    """
    source = check_model_source(path_or_id, **hub_kwargs)
    try:
        config = VAELMConfig.from_pretrained(source, **hub_kwargs)
    except ValueError as error:
        raise ModelLoadError(f"{source}: {CONFIG_NAME} holds impossible values: {_sentence(error)} Fix the file, or retrain.") from None
    _check_weight_shapes(source, config, hub_kwargs)
    try:
        model, info = VAELMModel.from_pretrained(
            source, config=config, dtype=torch.float32, use_safetensors=True, output_loading_info=True, **hub_kwargs
        )
    except Exception as error:  # safetensors raises its own SafetensorError for a damaged file
        raise ModelLoadError(
            f"The weights of {source} could not be loaded: {_sentence(error)} The file may be truncated (an "
            "interrupted copy or download) or belong to another model; copy or download it again."
        ) from None
    problems = {kind: sorted(info.get(kind) or []) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {kind: keys for kind, keys in problems.items() if keys}
    if problems:
        described = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(map(str, keys[:5]))}" for kind, keys in problems.items())
        raise ModelLoadError(
            f"The weights of {source} do not fit its {CONFIG_NAME} ({described}). The folder mixes files of different "
            "models; copy the whole folder again, or retrain."
        )
    model.eval()
    return model


# The config fields that set the shapes of weights, in the order a mismatch is explained by them.
SHAPE_FIELDS = ("vocab_size", "hidden_size", "embedding_size", "latent_size", "num_softmax_experts")


def _check_weight_shapes(source: str, config: VAELMConfig, hub_kwargs: dict[str, Any]) -> None:
    """
    Compare the shapes stored in the weights file with those `config` builds, before transformers loads them (it
    would report a mismatch as a table and a sentence about `ignore_mismatched_sizes`).

    Args:
        source (`str`): the model folder or Hub id.
        config ([`VAELMConfig`]): its configuration.
        hub_kwargs (`dict`): as in [`load_model`].

    Raises:
        [`ModelLoadError`]: the config field that does not fit, with its value and the size the weights were
        trained with, when one differs.
    """
    path = model_file(source, WEIGHTS_NAME, **hub_kwargs)
    if path is None:
        return  # sharded or absent: left to from_pretrained and its checks
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            stored = {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}  # noqa: SIM118
    except Exception:  # a damaged file: from_pretrained reports it
        return
    with torch.device("meta"):
        expected = {key: tuple(tensor.shape) for key, tensor in VAELMModel(config).state_dict().items()}
    mismatched = [(key, stored[key], shape) for key, shape in expected.items() if key in stored and stored[key] != shape]
    if not mismatched:
        return
    values = {name: getattr(config, name, None) for name in SHAPE_FIELDS}
    for name, value in values.items():
        for key, in_file, in_config in mismatched:
            if len(in_file) != len(in_config):
                continue
            for file_size, config_size in zip(in_file, in_config):
                if file_size != config_size and config_size == value:
                    raise ModelLoadError(
                        f"{source}: {CONFIG_NAME} sets {name} = {value}, but the weights were trained with {name} = "
                        f"{file_size} ({key} is {list(in_file)} in {WEIGHTS_NAME}, {list(in_config)} for this "
                        f"config). Set {name} to {file_size} in {CONFIG_NAME}, or use the config.json that came with "
                        "these weights."
                    )
    key, in_file, in_config = mismatched[0]
    raise ModelLoadError(
        f"{source}: the weights do not fit {CONFIG_NAME} ({len(mismatched)} tensors differ in shape; {key} is "
        f"{list(in_file)} in {WEIGHTS_NAME}, {list(in_config)} for this config). Use the config.json that came with "
        "these weights, or retrain."
    )


def load_tokenizer(path_or_id: str | Path, **hub_kwargs: Any) -> PreTrainedTokenizerFast:
    """
    Load a vaelm word-level tokenizer (`tokenizer.json`) from a model or tokenizer folder, or a Hub id.

    Args:
        path_or_id (`str` or `Path`): a folder holding `tokenizer.json`, or a Hub id.
        hub_kwargs: `revision`, `token`, `cache_dir`, `local_files_only`, …

    Raises:
        [`ModelLoadError`]: the path does not exist, has no `tokenizer.json`, or the file cannot be read.
    """
    folder = _local_folder(path_or_id)
    if folder is None:
        source = str(path_or_id)
        _check_hub_id(source)
        if _hub_file(source, TOKENIZER_NAME, hub_kwargs) is None:
            raise ModelLoadError(f"The Hub repository {source!r} has no {TOKENIZER_NAME}: it holds no vaelm tokenizer.")
    else:
        source = str(folder)
        if not (folder / TOKENIZER_NAME).is_file():
            raise ModelLoadError(
                f"{folder} has no {TOKENIZER_NAME}, so it holds no vaelm tokenizer. Give the model folder that "
                "vaelm-train wrote (it saves the tokenizer next to the weights)."
            )
    try:
        return _load_tokenizer(source, **hub_kwargs)
    except Exception as error:  # tokenizers raises plain Exceptions for a damaged tokenizer.json
        raise ModelLoadError(
            f"The tokenizer in {source} could not be loaded: {_sentence(error)} {TOKENIZER_NAME} may be damaged; copy it again from the model folder."
        ) from None


def default_device() -> str:
    """Where commands run a model unless told otherwise: `"cuda"` when a GPU is present, else `"cpu"`."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model_and_tokenizer(
    path_or_id: str | Path,
    tokenizer: str | Path | None = None,
    device: str | torch.device | None = None,
    **hub_kwargs: Any,
) -> tuple[VAELMModel, PreTrainedTokenizerFast]:
    """
    Load a model and its tokenizer, and check that they were trained together.

    Args:
        path_or_id (`str` or `Path`): a model folder, or a Hub id.
        tokenizer (`str` or `Path`, *optional*): another folder or Hub id to take the tokenizer from; by default
            the one saved with the model.
        device (`str` or `torch.device`, *optional*): where to put the model (e.g. [`default_device`]); left on the
            CPU when omitted.
        hub_kwargs: `revision`, `token`, `cache_dir`, `local_files_only`, … (for another `tokenizer` source, only
            `token`, `cache_dir`, `local_files_only`, `proxies` and `force_download` are passed on).

    Returns:
        `tuple[VAELMModel, PreTrainedTokenizerFast]`: the model in evaluation mode, and its tokenizer.

    Raises:
        [`ModelLoadError`]: see [`load_model`] and [`load_tokenizer`]; also a tokenizer whose vocabulary size or
        special ids differ from the model's.

    Example:

    ```python
    >>> from vaelm.pretrained.loading import load_model_and_tokenizer

    >>> model, tokenizer = load_model_and_tokenizer("runs/ptb")
    ```
    """
    model = load_model(path_or_id, **hub_kwargs)
    if tokenizer is None:
        loaded = load_tokenizer(path_or_id, **hub_kwargs)
    else:
        loaded = load_tokenizer(tokenizer, **{key: value for key, value in hub_kwargs.items() if key in _SHARED_HUB_KEYS})
    check_fit(loaded, model.config, tokenizer_source=tokenizer or path_or_id, model_source=path_or_id)
    return (model if device is None else model.to(device)), loaded


def check_fit(
    tokenizer: PreTrainedTokenizerFast, config: VAELMConfig, tokenizer_source: str | Path, model_source: str | Path
) -> None:
    """
    Raise a [`ModelLoadError`] naming both sources when `tokenizer` cannot serve the model of `config`.

    Args:
        tokenizer (`PreTrainedTokenizerFast`): the tokenizer.
        config ([`VAELMConfig`]): the model's configuration.
        tokenizer_source, model_source (`str` or `Path`): where each came from, for the message.
    """
    try:
        check_tokenizer_matches(tokenizer, config)
    except ValueError as error:
        raise ModelLoadError(f"The tokenizer of {tokenizer_source} does not fit the model {model_source}: {error}") from None


__all__ = [
    "ModelLoadError",
    "check_fit",
    "check_model_folder",
    "check_model_source",
    "default_device",
    "load_model",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "model_file",
]
