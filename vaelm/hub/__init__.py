"""The model card and the Hub: a model folder's card rendered from what the folder holds, and pushing the folder.

- `model_card`: the card (settings, results, samples, how to use the model), rendered and written.
- `reproduce`: the `vaelm-train` command that repeats a recorded run, and the settings that shaped it.
- `push`: one commit of a model folder to the Hub, with the card rendered for the repository id (`vaelm-push`'s job).
- `tokens`: a Hub token is never printed, written into a card or uploaded.

The file names of a model folder live in `vaelm.pretrained.model_folder`; the training record and curves, which a
training run writes, in `vaelm.training.record`.
"""
