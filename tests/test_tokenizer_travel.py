"""Tokenizers that travel with a model folder: text decodes as written (elisions, currency, apostrophes), a sentence
decodes without a leading space while a continuation joins its prompt, and a Chinese model cuts words with jieba in
a process without vaelm (or says that jieba is missing), as training did."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import train_tiny

import vaelm
from vaelm.corpora.vocabulary import build_tokenizer
from vaelm.tokenization_vaelm import (
    VAELMTokenizer,
    encode_sentences,
    load_tokenizer,
    segment,
)

AS_WRITTEN = [
    "“Go ’way!” said he.",
    "Tell ’em ’twas I, Mr. Holmes.",
    "It cost £1,000 in all.",
    "He wore a sou’-wester.",
    "I don’t know; it’s late.",
]
MORE = [
    "‘Go,’ he said, ‘it’s Smith’s.’",
    "I don't know; it's 5% off, 'tis true.",
    "“’Tis so,” he said… O’Brien’s.",
    "Suddenly he--the captain, that is--began.",
    "’Gainst the wind, ’mong the trees, ’neath the moon.",
]
CHINESE = ["我在年青时候也曾经做过许多梦。", "后来大半忘却了，但自己也并不以为可惜。"]


def run_bare(script: str, *args: str, cwd: Path, block: tuple[str, ...] = ()) -> dict:
    """Run `script` in a fresh interpreter that cannot import vaelm (`-I`, no PYTHONPATH, cwd outside the repo; the
    editable install's finder is defeated by `sys.modules["vaelm"] = None`), nor the modules in `block`; returns the
    JSON of its last line."""
    prelude = (
        "import sys\n"
        + "".join(f"sys.modules[{name!r}] = None\n" for name in ("vaelm", *block))
        + ("try:\n    import vaelm\n    sys.exit('vaelm is importable')\nexcept ImportError:\n    pass\n")
    )
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONSTARTUP")}
    result = subprocess.run(
        [sys.executable, "-I", "-c", prelude + script, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environment, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "stderr": result.stderr}


def model_folder(tokenizer, target: Path) -> Path:
    """A folder with the bundled model's config and code and `tokenizer` saved in it (AutoTokenizer reads both)."""
    shutil.copytree(vaelm.DEFAULT_MODEL, target, ignore=shutil.ignore_patterns("tokenizer*", "*.png", "*.safetensors"))
    tokenizer.save_pretrained(target)
    return target


ROUND_TRIP = """
import json
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
texts = json.loads(sys.argv[2])
ids = [tok(text)["input_ids"] for text in texts]
print(json.dumps({"class": type(tok).__name__, "tokens": [tok.convert_ids_to_tokens(row) for row in ids],
                  "decoded": [tok.decode(row, skip_special_tokens=True) for row in ids],
                  "continued": [tok.decode(row[2:], skip_special_tokens=True) for row in ids]}))
"""


@pytest.mark.parametrize("lowercase", [False, True])
def test_words_decode_as_written_through_a_bare_auto_tokenizer(tmp_path, lowercase):
    texts = AS_WRITTEN + MORE
    tokenizer = build_tokenizer(texts * 2, segmentation="words", lowercase=lowercase)
    folder = model_folder(tokenizer, tmp_path / "model")
    assert (folder / "tokenization_vaelm.py").is_file()
    output = run_bare(ROUND_TRIP, str(folder), json.dumps(texts), cwd=tmp_path)
    assert output["class"] == "VAELMTokenizer"
    expected = [text.lower() if lowercase else text for text in texts]
    assert output["decoded"] == expected
    assert [tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) for text in texts] == expected
    tokens = output["tokens"][1]
    assert "’em" in tokens and "’twas" in tokens  # one token each, as written
    assert "sou’-wester" in output["tokens"][3] and "£" in output["tokens"][2]
    assert "<unk>" not in [token for row in output["tokens"] for token in row]


def test_whitespace_sentences_decode_without_a_leading_space_and_continuations_join(tmp_path):
    tokenizer = build_tokenizer(["the company said it will buy shares", "investors agreed"])
    folder = model_folder(tokenizer, tmp_path / "model")
    output = run_bare(ROUND_TRIP, str(folder), json.dumps(["the company said it"]), cwd=tmp_path)
    assert output["decoded"] == ["the company said it"]
    assert output["continued"] == [" company said it"]  # what pipeline("text-generation") appends to its prompt
    noisy = [line for line in output["stderr"].splitlines() if "warn" in line.lower() or "custom code" in line]
    assert not noisy, noisy


def test_the_bundled_tokenizer_travels_and_decodes_its_old_spacing_without_a_leading_space():
    # Its tokenizer.json predates vaelm 0.4 (every word decoded with a space before it); its tokenizer_config.json
    # names VAELMTokenizer, which travels with it, as a fresh model folder's does, without loading-time keys.
    bundled = Path(vaelm.DEFAULT_MODEL)
    config = json.loads((bundled / "tokenizer_config.json").read_text())
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_vaelm.VAELMTokenizer"
    assert config["tokenizer_class"] == "TokenizersBackend" and config["segmentation"] == "whitespace"
    assert (bundled / "tokenization_vaelm.py").is_file() and not {"is_local", "local_files_only"} & set(config)
    tokenizer = load_tokenizer(bundled)
    assert isinstance(tokenizer, VAELMTokenizer) and tokenizer.segmentation == "whitespace"
    ids = tokenizer("the company said")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the company said"
    assert tokenizer.decode(ids[2:], skip_special_tokens=True) == " company said"


CHINESE_SCRIPT = """
import json
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
texts = json.loads(sys.argv[2])
try:
    rows = [tok(text)["input_ids"] for text in texts]
    print(json.dumps({"class": type(tok).__name__, "ids": rows,
                      "decoded": [tok.decode(row, skip_special_tokens=True) for row in rows]}))
except ImportError as error:
    print(json.dumps({"error": str(error)}))
"""


@pytest.fixture(scope="module")
def chinese_tokenizer(luxun_dir):
    lines = (luxun_dir / "train.txt").read_text(encoding="utf-8").splitlines()[:1500]
    return build_tokenizer(segment(lines, "jieba"), segmentation="jieba")


def test_a_chinese_tokenizer_cuts_words_without_vaelm_as_training_did(chinese_tokenizer, tmp_path):
    folder = model_folder(chinese_tokenizer, tmp_path / "model")
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "VAELMTokenizer"
    output = run_bare(CHINESE_SCRIPT, str(folder), json.dumps(CHINESE), cwd=tmp_path)
    assert output["class"] == "VAELMTokenizer"
    expected = encode_sentences(chinese_tokenizer, CHINESE, "jieba")  # what training fed the model (with </s>)
    assert [[*row, chinese_tokenizer.eos_token_id] for row in output["ids"]] == expected
    assert sum(i == chinese_tokenizer.unk_token_id for row in output["ids"] for i in row) <= 2  # known words
    assert output["decoded"] == CHINESE


def test_a_chinese_tokenizer_without_jieba_says_so(chinese_tokenizer, tmp_path):
    folder = model_folder(chinese_tokenizer, tmp_path / "model")
    output = run_bare(CHINESE_SCRIPT, str(folder), json.dumps(CHINESE), cwd=tmp_path, block=("jieba",))
    assert "jieba" in output["error"] and "pip install jieba" in output["error"]


def test_vaelm_tokenizes_chinese_once_whichever_path(chinese_tokenizer):
    # encode_sentences cuts the text itself; the tokenizer must not cut it a second time.
    direct = [chinese_tokenizer(text)["input_ids"] + [chinese_tokenizer.eos_token_id] for text in CHINESE]
    assert encode_sentences(chinese_tokenizer, CHINESE, "jieba") == direct
    chinese_tokenizer.backend_tokenizer.enable_truncation(500)  # forces encode_sentences' slow path
    try:
        assert encode_sentences(chinese_tokenizer, CHINESE, "jieba") == direct
    finally:
        chinese_tokenizer.backend_tokenizer.no_truncation()


PIPELINE_SCRIPT = """
import json
from transformers import pipeline, set_seed
generator = pipeline("text-generation", model=sys.argv[1], trust_remote_code=True)
prompt = sys.argv[2]
set_seed(0)
text = generator(prompt, max_new_tokens=5, do_sample=True)[0]["generated_text"]
ids = generator.tokenizer(prompt)["input_ids"]
print(json.dumps({"text": text, "tokens": generator.tokenizer.convert_ids_to_tokens(ids)}))
"""


def test_text_generation_continues_a_chinese_prompt_from_its_words(luxun_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = (luxun_dir / "train.txt").read_text(encoding="utf-8").splitlines()
    for split, part in {"train": lines[:600], "valid": lines[600:640], "test": lines[640:680]}.items():
        (corpus / f"{split}.txt").write_text("\n".join(part) + "\n", encoding="utf-8")
    folder = train_tiny(corpus, tmp_path / "model", "--lang", "zh", "--max_steps", "4", "--eval_strategy", "no")
    prompt = "我在年青时候"
    output = run_bare(PIPELINE_SCRIPT, str(folder), prompt, cwd=tmp_path)
    assert output["tokens"][0] == "<s>" and "<unk>" not in output["tokens"] and len(output["tokens"]) >= 3
    assert output["text"].startswith(prompt) and not output["text"].startswith(prompt + " ")


def test_with_vaelm_imported_auto_tokenizer_finds_the_chinese_tokenizer_without_remote_code(
    chinese_tokenizer, tmp_path, monkeypatch
):
    import builtins

    from transformers import AutoTokenizer

    def no_prompt(*args, **kwargs):
        raise AssertionError("AutoTokenizer asked to run remote code")

    monkeypatch.setattr(builtins, "input", no_prompt)
    folder = model_folder(chinese_tokenizer, tmp_path / "model")
    loaded = AutoTokenizer.from_pretrained(folder)
    assert type(loaded) is VAELMTokenizer
    assert loaded(CHINESE[0])["input_ids"] == chinese_tokenizer(CHINESE[0])["input_ids"]
