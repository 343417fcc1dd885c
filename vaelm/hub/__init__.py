"""The model card and the Hub: a model folder's card written from its training run, and pushing the folder.

- `model_card`: the card (settings, results, samples, the command that reproduces the model) and pushing.
- `job`: the `vaelm-push` job.
"""

from ..compat import lazy_exports

_EXPORTS = {
    "CARD_FILE": ".model_card",
    "REPO_IGNORE_PATTERNS": ".model_card",
    "TRAINING_RECORD_FILE": ".model_card",
    "card_examples": ".model_card",
    "check_model_folder": ".model_card",
    "dataset_ids": ".model_card",
    "find_evaluation_results": ".model_card",
    "plot_training_curves": ".model_card",
    "push_model_folder": ".model_card",
    "redact_tokens": ".model_card",
    "write_model_card": ".model_card",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
