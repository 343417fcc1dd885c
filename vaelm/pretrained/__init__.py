"""Models that ship inside the package: `DEFAULT_MODEL` is the reference PTB model (see docs/results.md).

`vaelm-sample`, `vaelm-homotopy` and `vaelm-evaluate` use it when `--model` is omitted; it is an ordinary model
folder, so `VAELMModel.from_pretrained(DEFAULT_MODEL)` and `AutoModel.from_pretrained(DEFAULT_MODEL,
trust_remote_code=True)` load it too.

- `model_folder`: what a saved model folder holds (its file names, its training record's argument groups).
- `loading`: loading a model folder or Hub id, with errors that say what is wrong and what to do.
- `storage`: weights stored in float16 or bfloat16 (half the download) while computing in float32.
- `checkpoints`: the checkpoints of an unfinished run, and which one a resume continues from.
"""

from pathlib import Path

PTB_MODEL = Path(__file__).resolve().parent / "ptb"
DEFAULT_MODEL = str(PTB_MODEL)

__all__ = ["DEFAULT_MODEL", "PTB_MODEL"]
