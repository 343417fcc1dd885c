"""The dtype a model's weights are stored in, apart from the one they compute in.

vaelm computes in float32 ([`vaelm.pretrained.loading.load_model`] widens whatever the file holds), so storing the
weights in float16 or bfloat16 halves a model's download and its folder for a rounding error well under a
hundredth of a nat. [`store_weights`] writes such a copy (what `vaelm-push --storage_dtype` uploads), with
`config.json` saying `"dtype": "float32"` so that `AutoModel` and the pipelines, which follow it, compute in float32
too; [`stored_dtype`] reads a folder's weight files to say what they hold (the model card shows it).
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .model_folder import CONFIG_NAME, STORAGE_DTYPES, WEIGHTS_INDEX_NAME, WEIGHTS_NAME

COMPUTE_DTYPE = "float32"  # what every loader computes in; config.json says so whatever the storage
# safetensors' header names of the floating dtypes.
_HEADER_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def weight_files(folder: Path) -> list[str]:
    """
    The weight files of a model folder, relative to it: `model.safetensors`, or the shards its index lists.

    Args:
        folder (`Path`): the model folder.
    """
    index = folder / WEIGHTS_INDEX_NAME
    if index.is_file():
        return sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    return [WEIGHTS_NAME]


def stored_dtype(folder: str | Path) -> str | None:
    """
    The floating dtype of a model folder's weights as stored (e.g. `"float16"`), read from the safetensors headers
    only (no tensor is loaded); several dtypes are joined with `" + "`, and `None` means the folder has no readable
    weights.

    Args:
        folder (`str` or `Path`): the model folder.
    """
    folder = Path(folder)
    found = set()
    for name in weight_files(folder):
        path = folder / name
        if not path.is_file():
            return None
        try:
            with safe_open(path, framework="pt") as file:
                header_dtypes = {file.get_slice(key).get_dtype() for key in file.keys()}  # noqa: SIM118 (not iterable)
        except (OSError, SafetensorError):
            return None
        found |= {_HEADER_DTYPES[dtype] for dtype in header_dtypes if dtype in _HEADER_DTYPES}
    return " + ".join(sorted(found)) or None


def store_weights(source: str | Path, target: str | Path, dtype: str) -> list[str]:
    """
    Write `source`'s weights into `target` with every floating tensor cast to `dtype`, and its `config.json` with
    `"dtype": "float32"` (the dtype loaders compute in). Other files are not copied; `source` is only read.

    Args:
        source (`str` or `Path`): the model folder.
        target (`str` or `Path`): where the weight files and `config.json` go (created when missing; may not be `source`).
        dtype (`str`): one of `STORAGE_DTYPES`: `"float32"`, `"float16"` or `"bfloat16"`.

    Returns:
        `list[str]`: the files written, relative to `target`.

    Raises:
        `ValueError`: an unknown dtype, `target` is `source`, or a weight that float16 cannot hold (it would become
        infinite; store in bfloat16 instead, which has float32's range).
    """
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"Cannot store weights in {dtype!r}: choose one of {', '.join(STORAGE_DTYPES)}.")
    source, target = Path(source), Path(target)
    if target.resolve() == source.resolve():
        raise ValueError(f"{target}: store the weights into another folder than the model's own.")
    target.mkdir(parents=True, exist_ok=True)
    to_dtype = getattr(torch, dtype)
    written, total_size = [], 0
    for name in weight_files(source):
        with safe_open(source / name, framework="pt") as file:  # one read: the metadata and the tensors
            metadata = file.metadata()
            stored = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 (safe_open is not iterable)
        tensors = {}
        for key, tensor in stored.items():
            if tensor.is_floating_point():
                cast = tensor.to(to_dtype)
                if bool(torch.isfinite(tensor).all()) and not bool(torch.isfinite(cast).all()):
                    raise ValueError(
                        f"{source / name}: the weight {key} holds values beyond {dtype}'s range (largest magnitude "
                        f"{tensor.abs().max().item():.4g}); store in bfloat16, which keeps float32's range."
                    )
                tensor = cast
            tensors[key] = tensor.contiguous()
            total_size += tensor.numel() * tensor.element_size()
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, target / name, metadata=metadata)
        written.append(name)
    if (source / WEIGHTS_INDEX_NAME).is_file():
        index = json.loads((source / WEIGHTS_INDEX_NAME).read_text(encoding="utf-8"))
        index.setdefault("metadata", {})["total_size"] = total_size
        (target / WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        written.append(WEIGHTS_INDEX_NAME)
    config = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
    config["dtype"] = COMPUTE_DTYPE
    (target / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written.append(CONFIG_NAME)
    return written


__all__ = ["COMPUTE_DTYPE", "store_weights", "stored_dtype", "weight_files"]
