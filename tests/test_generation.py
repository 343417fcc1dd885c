"""Generation: decoding strategies through `generate`, prior/posterior samples, homotopy, imputation, the
`vaelm-sample` / `vaelm-homotopy` commands (also interactively, through a pipe and through a pseudo-terminal)."""

import io
import json
import os
import select
import subprocess
import sys
import time

import pytest
import torch

from vaelm import VAELMConfig, VAELMModel, build_tokenizer, segment
from vaelm.cli import homotopy as homotopy_cli
from vaelm.cli import run_command
from vaelm.cli import sample as sample_cli
from vaelm.generation.decoding import DecodingConfig
from vaelm.generation.sentence_vae import SentenceVAE, interpolate

EOS = 3
MAX_NEW = 12


def random_model(seed: int = 0, **overrides) -> VAELMModel:
    """A small model with random, fairly peaked weights whose sentences end after a few words."""
    torch.manual_seed(seed)
    config = VAELMConfig(
        vocab_size=30, embedding_size=16, hidden_size=24, latent_size=4, initializer_range=0.5, **overrides
    )
    model = VAELMModel(config).eval()
    with torch.no_grad():
        model.lm_head.bias[EOS] = 1.5
        model.lm_head.bias[[config.pad_token_id, config.bos_token_id]] = -30.0  # never words, as after training
    return model


@pytest.fixture(
    scope="module",
    params=[
        {},
        {"num_layers": 2, "latent_to_every_step": True},
        {"cell_type": "gru"},
        # Seed 4: a deep random GRU whose beams all end within the beam test's 40 words (most seeds loop).
        {"cell_type": "gru", "num_layers": 2, "latent_to_every_step": True, "seed": 4},
    ],
    ids=["plain", "deep", "gru", "gru-deep"],
)
def model(request) -> VAELMModel:
    return random_model(**request.param)


@pytest.fixture(scope="module")
def vae(tiny_model_dir) -> SentenceVAE:
    return SentenceVAE.from_pretrained(tiny_model_dir, device="cpu")


def greedy_by_hand(model: VAELMModel, z: torch.Tensor, steps: int) -> torch.Tensor:
    """The argmax path, one `decode_step` at a time, with `<pad>` after `</s>` as `generate` writes it."""
    tokens = torch.full((z.size(0), 1), model.config.bos_token_id)
    sequence, state = [tokens], None
    finished = torch.zeros(z.size(0), dtype=torch.bool)
    with torch.no_grad():
        for _ in range(steps):
            logits, state = model.decode_step(tokens, z, state)
            tokens = logits[:, -1].argmax(-1, keepdim=True)
            sequence.append(tokens.masked_fill(finished.unsqueeze(1), model.config.pad_token_id))
            finished |= tokens.squeeze(1) == EOS
            if finished.all():
                break
    return torch.cat(sequence, dim=1)


# ---------------------------------------------------------------------------------------------- generate()
def test_greedy_generate_equals_argmax_path_by_hand(model):
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1)) * 2
    expected = greedy_by_hand(model, z, MAX_NEW)
    first = model.generate(z=z, max_new_tokens=MAX_NEW, do_sample=False)
    again = model.generate(z=z, max_new_tokens=MAX_NEW, do_sample=False)
    without_cache = model.generate(z=z, max_new_tokens=MAX_NEW, do_sample=False, use_cache=False)
    assert torch.equal(first, expected)
    assert torch.equal(again, expected)
    assert torch.equal(without_cache, expected)
    assert (expected[:, 1:] == EOS).any(), "the fixture should end some sentences"


def test_one_beam_and_top_k_one_sampling_equal_greedy(model):
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(2)) * 2
    vae = SentenceVAE(model, tokenizer=None)
    greedy = vae.decode_ids(z, DecodingConfig("greedy", max_new_tokens=MAX_NEW))
    assert vae.decode_ids(z, DecodingConfig("beam", num_beams=1, max_new_tokens=MAX_NEW)) == greedy
    torch.manual_seed(123)
    assert vae.decode_ids(z, DecodingConfig("sample", top_k=1, max_new_tokens=MAX_NEW)) == greedy
    torch.manual_seed(123)
    sampled = vae.decode_ids(z, DecodingConfig("sample", max_new_tokens=MAX_NEW))
    assert sampled != greedy, "plain sampling should differ from greedy somewhere"


def test_beam_search_is_at_least_as_likely_as_greedy_and_reorders_states(model):
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(3)) * 2
    vae = SentenceVAE(model, tokenizer=None)
    long_enough = 40
    greedy = vae.decode_ids(z, DecodingConfig("greedy", max_new_tokens=long_enough))
    beam = vae.decode_ids(z, DecodingConfig("beam", num_beams=5, length_penalty=0.0, max_new_tokens=long_enough))
    greedy_ll, beam_ll = vae.log_likelihood(z, greedy), vae.log_likelihood(z, beam)
    assert bool((beam_ll >= greedy_ll - 1e-4).all()), (beam_ll, greedy_ll)
    # Beam scores are accumulated over reordered LSTM states: they must equal the likelihood recomputed from scratch.
    # (min_new_tokens only masks </s> after the log-softmax, so the scores stay the model's log-probabilities.)
    out = model.generate(
        z=z,
        max_new_tokens=long_enough,
        min_new_tokens=6,
        num_beams=5,
        length_penalty=0.0,
        num_return_sequences=3,
        return_dict_in_generate=True,
        output_scores=True,
    )
    ids = [row[1 : row.index(EOS)] for row in out.sequences.tolist()]
    assert max(len(row) for row in ids) >= 3, "the check needs beams that were reordered over several steps"
    recomputed = vae.log_likelihood(z.repeat_interleave(3, dim=0), ids)
    assert torch.allclose(out.sequences_scores, recomputed, atol=1e-4)


def test_padded_prompts_decode_like_single_prompts(model):
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(4))
    bos, pad = model.config.bos_token_id, model.config.pad_token_id
    prompts = [[bos, 7, 8, 9], [bos, 10]]
    singles = [
        model.generate(torch.tensor([p]), z=z[i : i + 1], max_new_tokens=6)[0, len(p) :] for i, p in enumerate(prompts)
    ]
    for side in ("left", "right"):
        short = [pad, pad] + prompts[1] if side == "left" else prompts[1] + [pad, pad]
        input_ids = torch.tensor([prompts[0], short])
        batch = model.generate(input_ids, attention_mask=(input_ids != pad).long(), z=z, max_new_tokens=6)
        for i in range(2):
            generated = batch[i, 4:]
            assert torch.equal(generated[: len(singles[i])], singles[i]), side


def test_generate_without_z_draws_from_the_prior_and_rejects_encoder_inputs(model):
    torch.manual_seed(5)
    first = model.generate(max_new_tokens=MAX_NEW, do_sample=False)
    torch.manual_seed(5)
    z = torch.randn(1, 4)
    assert torch.equal(first, model.generate(z=z, max_new_tokens=MAX_NEW, do_sample=False))
    with pytest.raises(ValueError, match=r"model.encode"):
        model.generate(torch.tensor([[2, 7, 8, EOS]]), z=z)
    with pytest.raises(ValueError, match=r"latent code z"):
        model(torch.tensor([[2]]), use_cache=True)
    with pytest.raises(ValueError, match=r"shape"):
        model.generate(z=torch.zeros(1, 5))


def test_decoding_config_rejects_meaningless_flags():
    with pytest.raises(ValueError, match=r"strategy 'sample'"):
        DecodingConfig("greedy", top_p=0.9)
    with pytest.raises(ValueError, match=r"top_p"):
        DecodingConfig("sample", top_p=1.5)
    with pytest.raises(ValueError, match=r"Unknown decoding strategy"):
        DecodingConfig("nucleus")
    assert DecodingConfig("sample").generate_kwargs(unk_token_id=1)["top_k"] == 0  # no silent top-50 truncation


def test_suppress_unk_never_emits_unk_even_where_it_is_the_likeliest_word(vae):
    unk = vae.config.unk_token_id
    z = torch.zeros(4, vae.config.latent_size)
    bias = vae.model.lm_head.bias
    original = bias[unk].item()
    try:
        with torch.no_grad():
            bias[unk] = 50.0  # <unk> wins every argmax and almost all of the probability mass
        for decoding in (DecodingConfig(), DecodingConfig("sample", top_p=0.9), DecodingConfig("beam", num_beams=2)):
            plain = vae.decode_ids(z, DecodingConfig(**{**vars(decoding), "max_new_tokens": 5, "suppress_unk": False}))
            assert all(unk in row for row in plain)
            cleaned = vae.decode_ids(z, DecodingConfig(**{**vars(decoding), "max_new_tokens": 5, "suppress_unk": True}))
            assert not any(unk in row for row in cleaned)
    finally:
        with torch.no_grad():
            bias[unk] = original


def test_no_repeat_ngram_size_breaks_greedy_loops(vae):
    word = vae.config.eos_token_id + 5
    z = torch.zeros(2, vae.config.latent_size)
    bias = vae.model.lm_head.bias
    original = bias[word].item()
    try:
        with torch.no_grad():
            bias[word] = 50.0  # greedy decoding now repeats one word forever
        assert vae.decode_ids(z, DecodingConfig(max_new_tokens=6))[0] == [word] * 6
        for size in (1, 2):
            rows = vae.decode_ids(z, DecodingConfig(max_new_tokens=6, no_repeat_ngram_size=size))
            for row in rows:
                ngrams = [tuple(row[i : i + size]) for i in range(len(row) - size + 1)]
                assert row[0] == word and len(ngrams) == len(set(ngrams))
    finally:
        with torch.no_grad():
            bias[word] = original
    with pytest.raises(ValueError, match=r"no_repeat_ngram_size"):
        DecodingConfig(no_repeat_ngram_size=-1)


# ---------------------------------------------------------------------------------------------- latent paths
def test_linear_interpolation_is_evenly_spaced():
    a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 1.0, -1.0])
    points = interpolate(a, b, 4, "linear")
    assert points.shape == (6, 3)
    assert torch.equal(points[0], a) and torch.equal(points[-1], b)
    gaps = (points[1:] - points[:-1]).norm(dim=1)
    assert torch.allclose(gaps, gaps[0].expand_as(gaps), atol=1e-6)
    directions = (points[1:] - points[:-1]) / gaps.unsqueeze(1)
    assert torch.allclose(directions, directions[0].expand_as(directions), atol=1e-6)


def test_slerp_keeps_the_norm_with_equal_angular_steps():
    a = torch.tensor([3.0, 0.0, 4.0])
    b = torch.tensor([0.0, 5.0, 0.0])
    points = interpolate(a, b, 3, "slerp")
    assert points.shape == (5, 3)
    assert torch.allclose(points[0], a) and torch.allclose(points[-1], b)
    assert torch.allclose(points.norm(dim=1), torch.full((5,), 5.0), atol=1e-5)
    cos = torch.nn.functional.cosine_similarity(points[1:], points[:-1], dim=1)
    assert torch.allclose(cos, cos[0].expand_as(cos), atol=1e-6)
    linear = interpolate(a, b, 3, "linear")
    assert linear[2].norm() < 5.0 - 1.0, "the chord passes closer to the origin than the arc"
    parallel = interpolate(a, 2 * a, 2, "slerp")  # no great circle: falls back to the segment
    assert torch.allclose(parallel, interpolate(a, 2 * a, 2, "linear"))


def test_homotopy_ends_decode_the_posterior_means(vae):
    start, end = "the company said it will buy shares", "investors sell stock in new york"
    for mode in ("linear", "slerp"):
        points = vae.homotopy(start, end, steps=3, mode=mode)
        assert len(points) == 5
        mu, _ = vae.encode([start, end])
        z = torch.tensor([p["z"] for p in points])
        assert torch.allclose(z[0], mu[0], atol=1e-6) and torch.allclose(z[-1], mu[1], atol=1e-6)
        ends = vae.decode(mu)
        assert [points[0]["text"], points[-1]["text"]] == ends
        assert [p["t"] for p in points] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
        assert torch.allclose(z, interpolate(mu[0], mu[1], 3, mode), atol=1e-6)
    with pytest.raises(ValueError, match=r"Empty sentence"):
        vae.homotopy("", end)


def test_posterior_mean_and_samples(vae):
    sentence = "mr. chairman said the market rose N percent"
    mu, logvar = vae.encode([sentence])
    reconstruction = vae.sample_posterior(sentence, num=2, mean=True)
    assert [r["text"] for r in reconstruction] == vae.decode(mu) * 2
    assert torch.allclose(torch.tensor(reconstruction[0]["z"]), mu[0])
    torch.manual_seed(0)
    samples = vae.sample_posterior(sentence, num=50)
    z = torch.tensor([s["z"] for s in samples])
    assert not torch.allclose(z[0], z[1])
    # 50 draws from q(z|x): their mean lies within a few standard errors of mu.
    assert bool(((z.mean(0) - mu[0]).abs() < 5 * (0.5 * logvar[0]).exp() / 50**0.5 + 1e-3).all())


def test_imputation_fits_the_observed_words_and_keeps_them(vae):
    words = vae.tokenize(["the company said it will"])["input_ids"][0][1:-1]

    def elbo(mu, logvar, samples=400):
        torch.manual_seed(0)
        z = mu + torch.randn(samples, mu.numel()) * (0.5 * logvar).exp()
        inputs = torch.cat([torch.tensor([2]), words[:-1]]).expand(samples, -1)
        with torch.no_grad():
            logits, _ = vae.model.decode_step(inputs, z)
        log_p = torch.log_softmax(logits, -1).gather(2, words.expand(samples, -1).unsqueeze(2)).sum((1, 2))
        return float(log_p.mean() - 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum())

    before = vae.fit_observed(words, steps=0)
    torch.manual_seed(1)
    after = vae.fit_observed(words, steps=30)
    assert elbo(*after) > elbo(*before)
    torch.manual_seed(2)
    (result,) = vae.impute("the company said it will ___", steps=5)
    assert result["observed"] == "the company said it will"
    assert result["text"].startswith("the company said it will")
    assert result["text"] == (result["observed"] + " " + result["imputed"]).strip()
    with pytest.raises(ValueError, match=r"Only the end"):
        vae.impute("the ___ said it will")
    with pytest.raises(ValueError, match=r"Nothing is observed"):
        vae.impute("<mask>")


def test_chinese_input_is_segmented_and_output_joined_without_spaces(luxun_dir):
    lines = (luxun_dir / "train.txt").read_text(encoding="utf-8").splitlines()[:200]
    tokenizer = build_tokenizer(segment(lines, "jieba"), vocab_size=100_000, segmentation="jieba")
    torch.manual_seed(0)
    config = VAELMConfig(
        vocab_size=len(tokenizer), embedding_size=16, hidden_size=24, latent_size=4, lang="zh", segmentation="jieba"
    )
    vae = SentenceVAE(VAELMModel(config).eval(), tokenizer)
    sentence = "".join(lines[0].split())
    ids = vae.tokenize([sentence])["input_ids"][0].tolist()
    assert len(ids) > 4 and tokenizer.unk_token_id not in ids, "jieba words of the training text, not one unknown blob"
    assert vae.to_text(ids) == sentence
    texts = [s["text"] for s in vae.sample_posterior(sentence, num=3, decoding=DecodingConfig(max_new_tokens=8))]
    assert all(text and " " not in text for text in texts)


# ---------------------------------------------------------------------------------------------- commands
def cli(module, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = module.main(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_sample_command_strategies_and_seed(tiny_model_dir):
    model = ["--model", str(tiny_model_dir)]
    status, out, _ = cli(sample_cli, [*model, "--num", "5", "--max_new_tokens", "10"])
    assert status == 0 and len(out.splitlines()) == 5
    status, out, _ = cli(sample_cli, [*model, "--num", "2", "--strategy", "beam", "--num_beams", "4"])
    assert status == 0 and len(out.splitlines()) == 2
    flags = [
        *model,
        "--num",
        "3",
        "--sentence",
        "the company said it will buy",
        "--strategy",
        "sample",
        "--top_p",
        "0.9",
        "--json",
    ]
    first = json.loads(cli(sample_cli, [*flags, "--seed", "7"])[1])
    again = json.loads(cli(sample_cli, [*flags, "--seed", "7"])[1])
    other = json.loads(cli(sample_cli, [*flags, "--seed", "8"])[1])
    assert first == again
    assert first["mode"] == "posterior" and len(first["samples"]) == 3
    assert [s["z"] for s in first["samples"]] != [s["z"] for s in other["samples"]]


def test_homotopy_command_prints_n_plus_two_lines(tiny_model_dir):
    for mode in ("linear", "slerp"):
        argv = [
            "--model",
            str(tiny_model_dir),
            "--start",
            "the company said",
            "--end",
            "investors bought stock",
            "--steps",
            "3",
            "--mode",
            mode,
            "--strategy",
            "sample",
            "--seed",
            "0",
        ]
        status, out, _ = cli(homotopy_cli, argv)
        assert status == 0 and len(out.splitlines()) == 5
        assert cli(homotopy_cli, argv)[1] == out
    # Piped queries: three lines each (start, end, NUM; empty NUM means --steps), no prompts.
    status, out, err = cli(homotopy_cli, ["--model", str(tiny_model_dir), "--steps", "1"], "a b\nc d\n2\ne f\ng h\n\n")
    assert status == 0 and len(out.splitlines()) == 4 + 3 and "[1]>" not in out, err


def test_bad_input_gives_one_clear_error(tiny_model_dir, capsys):
    assert run_command("vaelm-sample", sample_cli.main, ["--model", "/no/such/model", "--num", "2"]) == 1
    assert "/no/such/model does not exist" in capsys.readouterr().err
    assert run_command("vaelm-sample", sample_cli.main, ["--model", str(tiny_model_dir), "--sentence", " "]) == 1
    assert "--sentence is empty" in capsys.readouterr().err
    assert run_command("vaelm-homotopy", homotopy_cli.main, ["--model", str(tiny_model_dir), "--start", "a b"]) == 1
    assert "Give both --start and --end" in capsys.readouterr().err
    # In interactive mode a bad line is reported and the next one still runs.
    status, out, err = cli(sample_cli, ["--model", str(tiny_model_dir)], "\nthe company said\n")
    assert status == 1 and len(out.splitlines()) == 1 and "Empty sentence" in err


def command(name: str) -> list[str]:
    return [sys.executable, "-m", f"vaelm.cli.{name}"]


def test_interactive_sample_through_a_pipe(tiny_model_dir, vae):
    lines = "the company said it will buy\nmr. chairman said ___\n"
    observed = vae.to_text(vae.tokenize(["mr. chairman said"])["input_ids"][0].tolist())
    result = subprocess.run(
        [
            *command("sample"),
            "--model",
            str(tiny_model_dir),
            "--num",
            "2",
            "--interactive",
            "--strategy",
            "sample",
            "--seed",
            "0",
        ],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.splitlines()
    assert len(outputs) == 4 and not any(line.startswith(">") for line in outputs)
    assert outputs[2].startswith(observed) and outputs[3].startswith(observed)


class Terminal:
    """A command running on a pseudo-terminal: read until a prompt, type a line."""

    def __init__(self, argv: list[str], timeout: float = 300):
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE, close_fds=True)
        os.close(slave)
        self.buffer, self.timeout = "", timeout

    def _prompt_at(self, prompt: str) -> int:
        # A prompt starts a line (outputs such as "<unk> said" also hold "> ").
        if self.buffer.startswith(prompt):
            return 0
        index = self.buffer.find("\n" + prompt)
        return index + 1 if index >= 0 else -1

    def expect(self, prompt: str) -> str:
        """Everything printed up to (and without) the next `prompt` at the start of a line."""
        deadline = time.monotonic() + self.timeout
        while self._prompt_at(prompt) < 0:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {prompt!r} prompt; got {self.buffer!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                assert chunk, f"exited before {prompt!r}: {self.buffer!r} {self.process.stderr.read().decode()}"
                self.buffer += chunk.decode("utf-8", "replace")
        index = self._prompt_at(prompt)
        before, self.buffer = self.buffer[:index], self.buffer[index + len(prompt) :]
        return before

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        self.type("\x04")  # Ctrl-D at the start of a line: end of input
        status = self.process.wait(timeout=self.timeout)
        os.close(self.master)
        return status


def test_interactive_prompts_on_a_terminal(tiny_model_dir):
    terminal = Terminal(
        [*command("sample"), "--model", str(tiny_model_dir), "--num", "3", "--interactive", "--strategy", "sample"]
    )
    terminal.expect("> ")
    terminal.type("the company said it will buy shares\n")
    printed = terminal.expect("> ").splitlines()
    assert printed[0] == "the company said it will buy shares"  # the terminal's echo of the typed line
    assert len(printed) == 1 + 3
    assert terminal.close() == 0

    terminal = Terminal([*command("homotopy"), "--model", str(tiny_model_dir), "--strategy", "sample"])
    terminal.expect("[1]> ")
    terminal.type("the company said\n")
    terminal.expect("[2]> ")
    terminal.type("investors bought stock\n")
    terminal.expect("NUM > ")
    terminal.type("2\n")
    printed = terminal.expect("[1]> ").splitlines()
    assert len(printed) == 1 + 4
    assert terminal.close() == 0


def test_remote_code_model_generates_without_vaelm(trained_model_dir):
    tiny_model_dir = trained_model_dir
    code = (
        "import sys, torch\n"
        "from transformers import AutoModel\n"
        "model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)\n"
        "assert 'vaelm' not in sys.modules\n"
        "z = torch.zeros(2, model.config.latent_size)\n"
        "out = model.generate(z=z, max_new_tokens=5, num_beams=3)\n"
        "print(type(model).__module__, out.shape[0], type(model.decoder).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tiny_model_dir)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    module, rows, decoder = result.stdout.split()
    assert module.startswith("transformers_modules") and rows == "2"
    assert decoder == json.loads((tiny_model_dir / "config.json").read_text())["cell_type"].upper()
