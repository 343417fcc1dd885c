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
