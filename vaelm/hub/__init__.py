"""The model card and the Hub: a model folder's card rendered from what the folder holds, and pushing the folder.

- `model_card`: the card (settings, results, samples, how to use the model), rendered and written.
- `reproduce`: the `vaelm-train` command that repeats a recorded run, and the settings that shaped it.
- `push`: one commit of a model folder to the Hub, with the card rendered for the repository id.
- `tokens`: a Hub token is never printed, written into a card or uploaded.
- `job`: the `vaelm-push` job.

The file names of a model folder live in `vaelm.pretrained.model_folder`; the training record and curves, which a
training run writes, in `vaelm.training.record`.
"""

from ..compat import lazy_exports

_EXPORTS = {
    "CARD_FILE": "..pretrained.model_folder",
    "REPO_IGNORE_PATTERNS": "..pretrained.model_folder",
    "TRAINING_RECORD_FILE": "..pretrained.model_folder",
    "card_examples": ".model_card",
    "check_model_folder": "..pretrained.loading",
    "dataset_ids": ".model_card",
    "find_evaluation_results": ".model_card",
    # an old name of this package: the curves are drawn by the training run (a higher layer), imported on first use
    "plot_training_curves": "vaelm.training.record",
    "push_model_folder": ".push",
    "redact_tokens": ".tokens",
    "render_model_card": ".model_card",
    "write_model_card": ".model_card",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
