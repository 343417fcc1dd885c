"""The progress file of a long evaluation pass (`vaelm-evaluate --progress_file`): what a stopped pass resumes from.

A K = 500 pass over PTB's valid or test split takes hours on a CPU. Each sentence's figures depend only on the
model, its token ids, K, the seed and the precision (its latent noise is seeded by its index), so the finished
sentences are kept in a safetensors file after every batch; a rerun of the same command skips them and ends with
the same figures as an uninterrupted pass. The file names what it was computed from, and a rerun that differs in
any of it (another model, split, K, seed, bf16) is refused rather than mixed in.
"""

import hashlib
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

logger = logging.getLogger(__name__)

FORMAT = "vaelm-evaluation-progress/1"
# Per-sentence tensors: the protocol's figures and the posterior statistics that MI and AU are computed from.
FIELDS = ("iw_nll", "rec", "kl", "mu", "logvar", "z")


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, shapes, dtypes, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def sentences_fingerprint(sequences) -> str:
    """SHA-256 of the token ids of every sentence, in order (a changed, added or removed sentence changes it)."""
    digest = hashlib.sha256()
    for sequence in sequences:
        digest.update(torch.as_tensor(list(sequence), dtype=torch.int64).numpy().tobytes())
        digest.update(b";")
    return digest.hexdigest()


class EvaluationProgress:
    """
    The finished sentences of one evaluation pass, kept in a file after every batch.

    Args:
        path (`str` or `os.PathLike`): the progress file (safetensors); read when it exists, written after each batch.
        identity (`dict[str, str]`): what the figures depend on (model and sentence fingerprints, K, seed, bf16);
            a file written for another identity is refused.
        tensors (`dict[str, torch.Tensor]`): the pass's per-sentence tensors ([`FIELDS`]), filled in place from
            the file when it is resumed.
    """

    def __init__(self, path: str | os.PathLike, identity: dict[str, str], tensors: dict[str, torch.Tensor]):
        self.path = Path(path)
        self.identity = {"format": FORMAT, **identity}
        self.tensors = tensors
        count = next(iter(tensors.values())).size(0)
        self.done = torch.zeros(count, dtype=torch.bool)
        self.seconds_before = 0.0
        if self.path.exists():
            self._resume()

    def _resume(self) -> None:
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                header = handle.metadata() or {}
                stored = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(
                f"The progress file {self.path} cannot be read ({error}); it was probably cut off. Delete it to start "
                "the pass again."
            ) from error
        for key, value in self.identity.items():
            if header.get(key) != value:
                raise ValueError(
                    f"The progress file {self.path} belongs to another evaluation: its {key} is "
                    f"{header.get(key)!r}, this pass's is {value!r}. Give another --progress_file, or delete this "
                    "one to start again."
                )
        missing = [
            name for name in (*FIELDS, "done") if name not in stored or stored[name].size(0) != self.done.size(0)
        ]
        if missing:
            raise ValueError(f"The progress file {self.path} lacks {', '.join(missing)}. Delete it to start again.")
        self.done = stored["done"].bool()
        for name in FIELDS:
            self.tensors[name].copy_(stored[name])
        self.seconds_before = float(header.get("seconds", 0.0))
        logger.info(
            "Resuming from %s: %d of %d sentences already evaluated.", self.path, int(self.done.sum()), len(self.done)
        )

    def finished(self, indices: list[int]) -> bool:
        """Whether every sentence of `indices` was evaluated already."""
        return bool(self.done[torch.as_tensor(indices)].all())

    def record(self, indices: list[int], seconds: float) -> None:
        """
        Mark `indices` as evaluated (their tensors hold their figures) and write the file atomically.

        Args:
            indices (`list[int]`): the sentences just evaluated.
            seconds (`float`): time spent by this run so far (added to that of earlier runs).
        """
        self.done[torch.as_tensor(indices)] = True
        metadata = {**self.identity, "seconds": repr(self.seconds_before + seconds)}
        partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {**{name: self.tensors[name].contiguous() for name in FIELDS}, "done": self.done},
            str(partial),
            metadata=metadata,
        )
        os.replace(partial, self.path)  # a pass killed mid-write leaves the previous file whole

    def remove(self) -> None:
        """Delete the file once the pass is complete (its figures are in the result)."""
        self.path.unlink(missing_ok=True)
        logger.info("Evaluation complete; removed the progress file %s.", self.path)


__all__ = ["EvaluationProgress", "model_fingerprint", "sentences_fingerprint"]
