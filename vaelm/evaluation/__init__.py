"""Evaluation: the protocol's likelihood metrics and a look at the latent space.

- `metrics`: the protocol: ELBO, importance-weighted NLL, perplexity, KL, MI, active units.
- `decoder_scoring`: -log p(x|z) of many latent samples at once, the protocol's fast path.
- `estimators`: Gaussian densities, each sentence's latent noise, mutual information, active units.
- `progress`: a long evaluation's finished sentences, kept so that a rerun resumes.
- `reconstruction`: greedy reconstruction from the posterior mean, corpus BLEU-4 and exact match.
- `latent_map`: posterior means in 2-D (PCA or UMAP), as a PNG or an interactive HTML page.
- `settings`: the protocol's defaults and choice lists, and the settings of the `vaelm-evaluate` job (no torch).
- `job`: the `vaelm-evaluate` job (a model and a split in, one result out).
"""

from ..compat import lazy_exports

_EXPORTS = {
    "DecoderScorer": ".decoder_scoring",
    "EvaluationProgress": ".progress",
    "EvaluationResult": ".metrics",
    "LatentMap": ".latent_map",
    "PROJECTIONS": ".settings",
    "Projection": ".latent_map",
    "active_units": ".estimators",
    "build_latent_map": ".latent_map",
    "corpus_bleu": ".reconstruction",
    "draw_training_map": ".latent_map",
    "evaluate_dataset": ".metrics",
    "evaluate_sequences": ".metrics",
    "fit_projection": ".latent_map",
    "length_sorted_batches": ".metrics",
    "model_fingerprint": ".progress",
    "mutual_information": ".estimators",
    "plotly_figure": ".latent_map",
    "posterior_means": ".latent_map",
    "read_labelled": ".latent_map",
    "read_split": ".latent_map",
    "reconstruct_sequences": ".reconstruction",
    "require_plotly": ".latent_map",
    "save_html": ".latent_map",
    "save_map": ".latent_map",
    "save_png": ".latent_map",
    "sentences_fingerprint": ".progress",
    "tokenize_sentences": ".metrics",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
