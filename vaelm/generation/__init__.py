"""Generation: sentences from latent codes (prior and posterior samples, homotopies, imputation).

- `decoding`: [`DecodingConfig`], the decoding settings and their defaults (one home for the commands, `SentenceVAE`,
  both pipelines and the demo); imports no torch.
- `sentence_vae`: [`SentenceVAE`], a model and its tokenizer speaking sentences (text in, text out).
"""
