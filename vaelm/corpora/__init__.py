"""Corpora in, token ids out: local files, raw books, PTB and Hub datasets, streams, the vocabulary.

- `data`: splits from folders, raw text, PTB (downloaded once) or the Hub, tokenized; the collator.
- `sentences`: running text (books) cut into sentences.
- `streaming`: the same data as a stream, for corpora larger than memory.
- `vocabulary`: the word-level tokenizer trained on a corpus.
- `word_ids`: word counts and ids of whole corpora at Arrow speed.
"""

# The splits of a corpus, in order (their one home; a torch-free import for the commands' choices).
SPLITS = ("train", "valid", "test")
