"""Data path speed: raw text -> sentences -> normalized words -> token ids, in memory and streaming.

Builds a corpus of `--sentences` sentences from ../shared/data/books (repeated and shuffled): pre-split text from
`cased/` (one sentence per line) and running text from `raw/` (paragraphs of the Gutenberg files). Then times
vaelm's own path with `--segmentation words --lowercase`:

- `sentences_per_s`: pre-split text, end to end (read -> vocabulary -> token ids), in memory;
- `sentences_per_s_split`: the same from running text with `--sentence_split`;
- `tokens_per_s`: token ids per second in the pre-split run;
- `peak_rss_mb`: peak memory of a streaming pass (read -> vocabulary sample -> token ids -> length grouping ->
  every batch), measured in a fresh process for the corpus and for one ten times smaller
  (`peak_rss_mb_small`): streaming memory does not grow with the corpus.
- `python_loop_s`: seconds for a fixed 10 M-step Python loop, to judge how busy the machine was
  (≈0.5 s on an idle modern core).

Usage: python benchmarks/data_speed.py [--sentences 2000000] [--threads 1]   (prints one JSON object)
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOKS = Path(os.environ.get("VAELM_SHARED_DATA", REPO.parent / "shared" / "data")) / "books"


def build_corpus(folder: Path, sentences: int, seed: int = 0, shards: int = 8) -> tuple[Path, Path]:
    """Write `sentences` pre-split lines (in `shards` files) and about as many sentences of running text."""
    rng = random.Random(seed)
    lines = (BOOKS / "cased" / "train.txt").read_text(encoding="utf-8").splitlines()
    pre, raw = folder / "presplit", folder / "raw"
    pre.mkdir(parents=True), raw.mkdir(parents=True)
    handles = [open(pre / f"train-{i:05d}.txt", "w", encoding="utf-8") for i in range(shards)]
    for start in range(0, sentences, len(lines)):
        block = rng.sample(lines, len(lines))[: sentences - start]
        for index, line in enumerate(block):
            handles[index % shards].write(line + "\n")
    for handle in handles:
        handle.close()
    paragraphs = []
    for book in sorted((BOOKS / "raw").glob("*.txt")):
        paragraphs += [p for p in book.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    per_copy = 47_966  # sentences that --sentence_split finds in one copy of raw/ (measured)
    with open(raw / "books.txt", "w", encoding="utf-8") as out:
        for _ in range(max(1, round(sentences / per_copy))):
            out.write("\n\n".join(rng.sample(paragraphs, len(paragraphs))) + "\n\n")
    return pre, raw


def in_memory(files: list[Path], sentence_split: bool) -> dict:
    """vaelm's in-memory path: read (and split) -> build the tokenizer -> token ids; timed end to end."""
    from vaelm.data import read_lines
    from vaelm.tokenization_vaelm import encode_sentences
    from vaelm.sentences import sentences_from_lines
    from vaelm.tokenization_vaelm import build_tokenizer

    start = time.perf_counter()
    texts = []
    for path in files:
        lines = read_lines(path)
        if sentence_split:
            texts += sentences_from_lines(lines)
        else:
            texts += [line for line in lines if line.strip()]
    tokenizer = build_tokenizer(texts, vocab_size=10000, segmentation="words", lowercase=True)
    tokens = 0
    for begin in range(0, len(texts), 10_000):
        tokens += sum(len(row) for row in encode_sentences(tokenizer, texts[begin: begin + 10_000]))
    seconds = time.perf_counter() - start
    return {"sentences": len(texts), "seconds": seconds, "tokens": tokens}


def streaming_pass(folder: str, vocab_sample: int) -> None:
    """One streaming pass over a folder (run in a fresh process); prints sentences and peak RSS."""
    from vaelm.data import tokenize_splits
    from vaelm.streaming import group_by_length, stream_text_splits, vocabulary_sample
    from vaelm.tokenization_vaelm import build_tokenizer

    raw = stream_text_splits(folder, ("train", "valid"))
    tokenizer = build_tokenizer(vocabulary_sample(raw["train"], vocab_sample), segmentation="words", lowercase=True)
    grouped = group_by_length(tokenize_splits(raw, tokenizer, "words")["train"], batch_size=64)
    start, count = time.perf_counter(), 0
    for _ in grouped:
        count += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"sentences": count, "seconds": seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def streaming_in_subprocess(folder: Path, vocab_sample: int, threads: int) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads),
                   "RAYON_NUM_THREADS": str(threads)}
    result = subprocess.run([sys.executable, __file__, "--_stream", str(folder), "--vocab_sample", str(vocab_sample)],
                            capture_output=True, text=True, env=environment, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def python_loop_seconds() -> float:
    start, total = time.perf_counter(), 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2_000_000)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (tokenizers' and torch's).")
    parser.add_argument("--vocab_sample", type=int, default=100_000)
    parser.add_argument("--_stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._stream:
        streaming_pass(args._stream, args.vocab_sample)
        return
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # before tokenizers starts its pool
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as scratch:
        pre, raw = build_corpus(Path(scratch), args.sentences)
        small_pre, _ = build_corpus(Path(scratch) / "small", args.sentences // 10)
        loop = python_loop_seconds()
        presplit = in_memory(sorted(pre.glob("*.txt")), sentence_split=False)
        print("pre-split, in memory:", presplit, file=sys.stderr, flush=True)  # stage figures as they come
        split = in_memory(sorted(raw.glob("*.txt")), sentence_split=True)
        print("--sentence_split, in memory:", split, file=sys.stderr, flush=True)
        big = streaming_in_subprocess(pre, args.vocab_sample, args.threads)
        print("streaming:", big, file=sys.stderr, flush=True)
        small = streaming_in_subprocess(small_pre, args.vocab_sample, args.threads)
    print(json.dumps({
        "sentences": presplit["sentences"],
        "sentences_per_s": round(presplit["sentences"] / presplit["seconds"]),
        "sentences_per_s_split": round(split["sentences"] / split["seconds"]),
        "tokens_per_s": round(presplit["tokens"] / presplit["seconds"]),
        "streaming_sentences_per_s": round(big["sentences"] / big["seconds"]),
        "peak_rss_mb": round(big["peak_rss_mb"]),
        "peak_rss_mb_small": round(small["peak_rss_mb"]),
        "small_sentences": small["sentences"],
        "threads": args.threads,
        "python_loop_s": round(loop, 2),
    }))


if __name__ == "__main__":
    main()
