"""Data path speed: raw text -> sentences -> normalized words -> token ids, in memory and streaming.

Builds a corpus of `--sentences` sentences from ../shared/data/books (repeated and shuffled): pre-split text from
`cased/` (one sentence per line) and running text from `raw/` (paragraphs of the Gutenberg files). Then times
vaelm-train's own data preparation (`vaelm.training.job.prepare_data`, with the flags parsed by vaelm-train's parser)
with `--segmentation words --lowercase`, end to end: files -> sentences -> vocabulary -> token ids in the
`datasets.Dataset` the Trainer reads (train and valid):

- `sentences_per_s`: pre-split text, in memory (the median of `--repeats` runs, all in `sentences_per_s_runs`);
- `sentences_per_s_split`: the same from running text with `--sentence_split`;
- `tokens_per_s`: token ids per second in the pre-split run;
- `peak_rss_mb`: peak memory of a streaming pass (read -> vocabulary sample -> token ids -> length grouping ->
  every batch), measured in a fresh process for the corpus and for one ten times smaller
  (`peak_rss_mb_small`): streaming memory does not grow with the corpus.
- `python_loop_s`: seconds for a fixed 10 M-step Python loop, to judge how busy the machine was
  (≈0.5 s on an idle modern core).

Usage: python benchmarks/data_speed.py [--sentences 2000000] [--threads N]   (prints one JSON object; N defaults to
the cores this process may use, as vaelm-train's --num_threads does)
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
BOOKS = Path(os.environ.get("VAELM_SHARED_DATA", REPO.parent / "shared" / "data")) / "books"


def build_corpus(folder: Path, sentences: int, seed: int = 0, books: int = 16) -> tuple[Path, Path]:
    """
    Write `sentences` pre-split lines (`presplit/train.txt`, with the books' valid/test files) and about as many
    sentences of running text, as `books` files of shuffled Gutenberg paragraphs (`raw/`).
    """
    rng = random.Random(seed)
    lines = (BOOKS / "cased" / "train.txt").read_text(encoding="utf-8").splitlines()
    pre, raw = folder / "presplit", folder / "raw"
    pre.mkdir(parents=True), raw.mkdir(parents=True)
    with open(pre / "train.txt", "w", encoding="utf-8") as out:
        for start in range(0, sentences, len(lines)):
            out.write("\n".join(rng.sample(lines, len(lines))[: sentences - start]) + "\n")
    for split in ("valid", "test"):
        shutil.copy(BOOKS / "cased" / f"{split}.txt", pre / f"{split}.txt")
    from vaelm.corpora.cleaning import gutenberg_body

    paragraphs = []
    for book in sorted((BOOKS / "raw").glob("*.txt")):  # each book's body: no licence, no START/END markers
        text = "\n".join(gutenberg_body(book.read_text(encoding="utf-8").splitlines()))
        paragraphs += [p for p in text.split("\n\n") if p.strip()]
    per_copy = (
        47_976  # sentences that --sentence_split finds in one copy of raw/ (vaelm.corpora.sources.raw_text_splits)
    )
    copies = [rng.sample(paragraphs, len(paragraphs)) for _ in range(max(1, round(sentences / per_copy)))]
    shuffled = [paragraph for copy in copies for paragraph in copy]
    for index in range(books):
        (raw / f"book-{index:03d}.txt").write_text("\n\n".join(shuffled[index::books]) + "\n", encoding="utf-8")
    return pre, raw


def vaelm_train_data(data_dir: Path, threads: int, *flags: str) -> dict:
    """
    vaelm-train's own data preparation (`vaelm.training.job.prepare_data`, after its flags are parsed and its threads
    set): read (and split) -> vocabulary -> token ids as the `datasets.Dataset` the Trainer reads; timed end to end.
    """
    from vaelm.cli.train import parse_arguments
    from vaelm.runtime.threads import configure_threads
    from vaelm.training.job import prepare_data

    model_args, data_args, training_args = parse_arguments(
        [
            "--data_dir",
            str(data_dir),
            "--output_dir",
            str(data_dir / "out"),
            "--segmentation",
            "words",
            "--lowercase",
            "--vocab_size",
            "10000",
            "--num_threads",
            str(threads),
            "--max_steps",
            "1",
            "--report_to",
            "none",
            *flags,
        ]
    )
    configure_threads(training_args.num_threads)
    start = time.perf_counter()
    raw, _, tokenized = prepare_data(model_args, data_args, training_args)
    seconds = time.perf_counter() - start
    sentences = sum(len(split) for split in raw.values())
    tokens = sum(int(pc.sum(split.data.column("length")).as_py()) for split in tokenized.values())
    return {"sentences": sentences, "seconds": seconds, "tokens": tokens}


def streaming_pass(folder: str, vocab_sample: int, threads: int) -> None:
    """One streaming pass of vaelm-train's data (run in a fresh process): every batch of the train split."""
    from vaelm.cli.train import parse_arguments
    from vaelm.runtime.threads import configure_threads
    from vaelm.training.job import prepare_data

    model_args, data_args, training_args = parse_arguments(
        [
            "--data_dir",
            folder,
            "--output_dir",
            str(Path(folder) / "out"),
            "--segmentation",
            "words",
            "--lowercase",
            "--streaming",
            "--vocab_sample",
            str(vocab_sample),
            "--num_threads",
            str(threads),
            "--max_steps",
            "1",
            "--batch_size",
            "64",
            "--report_to",
            "none",
        ]
    )
    configure_threads(training_args.num_threads)
    start, count = time.perf_counter(), 0
    _, _, tokenized = prepare_data(model_args, data_args, training_args)
    for _ in tokenized["train"]:
        count += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"sentences": count, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM): unlike getrusage's ru_maxrss, it does not inherit the RSS of
    the parent that forked it before exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def streaming_in_subprocess(folder: Path, vocab_sample: int, threads: int) -> dict:
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": str(threads),
        "RAYON_NUM_THREADS": str(threads),
    }
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--_stream",
            str(folder),
            "--vocab_sample",
            str(vocab_sample),
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def python_loop_seconds() -> float:
    start, total = time.perf_counter(), 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2_000_000)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="vaelm-train's --num_threads (default: the cores this process may use).",
    )
    parser.add_argument("--vocab_sample", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="Pre-split runs; the median is reported.")
    parser.add_argument("--_stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from vaelm.runtime.threads import choose_num_threads

    threads = choose_num_threads(args.threads)[0]
    if args._stream:
        streaming_pass(args._stream, args.vocab_sample, threads)
        return
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # before tokenizers starts its pool
    with tempfile.TemporaryDirectory() as scratch:
        pre, raw = build_corpus(Path(scratch), args.sentences)
        small_pre, _ = build_corpus(Path(scratch) / "small", args.sentences // 10)
        loop = python_loop_seconds()
        runs = []
        for _ in range(args.repeats):  # other processes on a shared machine make single timings noisy
            runs.append(vaelm_train_data(pre, threads))
            print("pre-split, in memory:", runs[-1], file=sys.stderr, flush=True)  # stage figures as they come
        presplit = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]  # the median run
        split = vaelm_train_data(raw, threads, "--sentence_split")
        print("--sentence_split, in memory:", split, file=sys.stderr, flush=True)
        big = streaming_in_subprocess(pre, args.vocab_sample, threads)
        print("streaming:", big, file=sys.stderr, flush=True)
        small = streaming_in_subprocess(small_pre, args.vocab_sample, threads)
    print(
        json.dumps(
            {
                "sentences": presplit["sentences"],
                "sentences_per_s": round(presplit["sentences"] / presplit["seconds"]),
                "sentences_per_s_runs": [round(run["sentences"] / run["seconds"]) for run in runs],
                "sentences_split": split["sentences"],
                "sentences_per_s_split": round(split["sentences"] / split["seconds"]),
                "tokens_per_s": round(presplit["tokens"] / presplit["seconds"]),
                "streaming_sentences_per_s": round(big["sentences"] / big["seconds"]),
                "peak_rss_mb": round(big["peak_rss_mb"]),
                "peak_rss_mb_small": round(small["peak_rss_mb"]),
                "small_sentences": small["sentences"],
                "threads": threads,
                "python_loop_s": round(loop, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
