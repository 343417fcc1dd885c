"""Old import path, kept so that `from vaelm.training import ...` goes on working. New code imports from:

- `vaelm.cli.train`: `ModelArguments`, `DataArguments`, `parse_arguments` (the `vaelm-train` flags);
- `vaelm.cli`: `config_file_flags` (a YAML/JSON file of flags, for every command);
- `vaelm.jobs.train`: `train`, `prepare_tokenizer`, `build_model`, `final_evaluation` (the training job);
- `vaelm.checkpoints`: `resolve_resume`; `vaelm.allocator`: `keep_freed_memory`.

Nothing inside vaelm imports this module (the import-linter contract in setup.cfg keeps it on top).
"""

from .allocator import keep_freed_memory
from .checkpoints import resolve_resume
from .cli import config_file_flags
from .cli.train import DataArguments, ModelArguments, parse_arguments
from .jobs.train import build_model, final_evaluation, prepare_tokenizer, train

__all__ = [
    "DataArguments",
    "ModelArguments",
    "build_model",
    "config_file_flags",
    "final_evaluation",
    "keep_freed_memory",
    "parse_arguments",
    "prepare_tokenizer",
    "resolve_resume",
    "train",
]
