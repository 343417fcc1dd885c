"""The evaluation protocol: IW-NLL, ELBO, PPL, KL, MI, active units, the fast decoder and `vaelm-evaluate`."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, train_tiny
from torch.nn import functional as F

from vaelm import VAELMConfig, VAELMModel
from vaelm.cli import run_command
from vaelm.cli.evaluate import main as evaluate_main
from vaelm.evaluation.estimators import active_units, mutual_information
from vaelm.evaluation.metrics import evaluate_dataset, evaluate_sequences, length_sorted_batches, tokenize_sentences
from vaelm.tokenization_vaelm import load_tokenizer

SUMMARY_KEYS = {
    "nll",
    "ppl",
    "elbo",
    "elbo_ppl",
    "rec",
    "kl",
    "mi",
    "au",
    "latent_size",
    "sentences",
    "tokens",
    "iw_samples",
    "command",
}


def random_model(seed: int = 0, **config) -> VAELMModel:
    """A small randomly initialised model (vocabulary 40) in evaluation mode."""
    torch.manual_seed(seed)
    sizes = {"vocab_size": 40, "embedding_size": 12, "hidden_size": 16, "latent_size": 4, "initializer_range": 0.3}
    return VAELMModel(VAELMConfig(**{**sizes, **config})).eval()


def random_sentences(count: int, seed: int = 0, vocab_size: int = 40, longest: int = 12) -> list[list[int]]:
    """`<s> w1 … wn </s>` ids with 0 ≤ n ≤ `longest` (a sentence of zero words scores only `</s>`)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, longest + 1, (count,), generator=generator).tolist()
    return [[2, *torch.randint(4, vocab_size, (n,), generator=generator).tolist(), 3] for n in lengths]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and far faster on a machine whose cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_test_ids(tiny_model_dir, tiny_corpus) -> list[list[int]]:
    tokenizer = load_tokenizer(tiny_model_dir)
    texts = (tiny_corpus / "test.txt").read_text(encoding="utf-8").split("\n")
    return tokenize_sentences([text for text in texts if text.strip()], tokenizer, "whitespace")


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir) -> VAELMModel:
    return VAELMModel.from_pretrained(tiny_model_dir).eval()


# ------------------------------------------------------------------------------------------------ IW-NLL vs ELBO
def test_iw_nll_is_below_the_elbo_per_sentence(tiny_model, tiny_test_ids):
    result = evaluate_sequences(tiny_model, tiny_test_ids, iw_samples=50, seed=0)
    gap = result.elbo - result.iw_nll
    # Jensen: with the same samples, IW-NLL ≤ mean rec + Monte-Carlo KL; the ELBO uses the exact KL, so a sentence
    # may only exceed it by Monte-Carlo noise.
    assert gap.min() > -0.05, gap.min()
    assert result.summary()["nll"] < result.summary()["elbo"]
    assert result.fast_path


def test_single_sample_iw_nll_has_the_elbo_as_expectation():
    model = random_model(seed=1)
    with torch.no_grad():
        model.posterior.bias.uniform_(-1.5, 1.5)  # a posterior away from the prior, so that the KL is not ~0
    sentence = random_sentences(1, seed=5)[0]
    # Each copy of the sentence draws its own latent noise: 600 independent single-sample estimates.
    result = evaluate_sequences(model, [sentence] * 600, iw_samples=1, seed=0)
    estimates = result.iw_nll
    standard_error = float(estimates.std() / math.sqrt(estimates.numel()))
    elbo = float(result.elbo.mean())
    assert float(result.kl[0]) > 0.5
    assert abs(float(estimates.mean()) - elbo) < 4 * standard_error + 1e-6, (
        float(estimates.mean()),
        elbo,
        standard_error,
    )
    # K = 1 differs from the ELBO sample by log q(z|x) - log p(z) - KL, which averages to 0 but is not 0.
    assert float((estimates - result.elbo).abs().max()) > 1e-3


# ------------------------------------------------------------------------------------------------ exactness
def language_model_nll(model: VAELMModel, sentence: list[int], z: torch.Tensor) -> float:
    """-log p(x|z) computed step by step with `decode_step` and an explicit log-softmax (an independent path)."""
    ids = torch.tensor([sentence])
    with torch.no_grad():
        logits, _ = model.decode_step(ids[:, :-1], z)
    return float(-F.log_softmax(logits[0], dim=-1).gather(1, ids[0, 1:, None]).sum())


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
@pytest.mark.parametrize("iw_samples", [1, 5, 40])
def test_iw_nll_is_exact_when_the_decoder_ignores_z_and_the_posterior_is_the_prior(iw_samples, cell_type):
    model = random_model(seed=2, cell_type=cell_type)
    with torch.no_grad():
        model.latent_to_state.weight.zero_()  # initial state = bias only: p(x|z) = p(x)
        model.posterior.weight.zero_()
        model.posterior.bias.zero_()  # mu = 0, logvar = 0: q(z|x) = N(0, I)
    sentences = random_sentences(9, seed=3)
    result = evaluate_sequences(model, sentences, iw_samples=iw_samples, batch_size=4, chunk_size=13, seed=1)
    expected = torch.tensor([language_model_nll(model, s, torch.zeros(1, 4)) for s in sentences], dtype=torch.float64)
    torch.testing.assert_close(result.iw_nll, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(result.elbo, expected, atol=1e-4, rtol=0)
    summary = result.summary()
    assert summary["kl"] == 0.0
    assert abs(summary["mi"]) < 1e-9
    assert summary["au"] == 0


# ------------------------------------------------------------------------------------------------ PPL, tokens
def test_ppl_counts_words_and_eos_but_not_bos_or_padding(tiny_model, tiny_test_ids, tiny_corpus):
    summary = evaluate_sequences(tiny_model, tiny_test_ids, iw_samples=3, batch_size=7, seed=0).summary()
    texts = [line for line in (tiny_corpus / "test.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    assert summary["sentences"] == len(texts)
    assert summary["tokens"] == sum(len(text.split()) + 1 for text in texts)
    assert summary["ppl"] == pytest.approx(
        math.exp(summary["nll"] * summary["sentences"] / summary["tokens"]), rel=1e-9
    )
    assert summary["elbo_ppl"] == pytest.approx(
        math.exp(summary["elbo"] * summary["sentences"] / summary["tokens"]), rel=1e-9
    )
    assert summary["elbo"] == pytest.approx(summary["rec"] + summary["kl"], rel=1e-9)


def test_long_sentences_are_neither_dropped_nor_cut(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    long_sentence = " ".join(["the"] * 300)  # longer than the model's max_sentence_length of 200
    ids = tokenize_sentences([long_sentence, "a company"], tokenizer, "whitespace")
    assert [len(row) for row in ids] == [302, 4]


def test_a_trained_gru_evaluates_on_the_fast_path_exactly(tiny_gru_model_dir, tiny_test_ids):
    """`vaelm-train --cell_type gru` gives a model that the fast scorer evaluates, agreeing with the model's own path."""
    model = VAELMModel.from_pretrained(tiny_gru_model_dir).eval()
    assert isinstance(model.decoder, torch.nn.GRU)
    fast = evaluate_sequences(model, tiny_test_ids, iw_samples=8, batch_size=16, chunk_size=50, seed=0)
    reference = evaluate_sequences(
        model, tiny_test_ids, iw_samples=8, batch_size=16, chunk_size=50, seed=0, fast_path=False
    )
    assert fast.fast_path and not reference.fast_path
    torch.testing.assert_close(fast.iw_nll, reference.iw_nll, atol=1e-4, rtol=0)
    assert fast.summary()["nll"] < fast.summary()["elbo"]


# ------------------------------------------------------------------------------------------------ invariance
def test_a_sentence_scores_the_same_alone_or_in_any_batch_and_chunk():
    model = random_model(seed=4)
    sentences = [[2, 5, 6, 3], *random_sentences(12, seed=6, longest=15)]  # sentence 0 is padded in any batch
    reference = evaluate_sequences(model, sentences, iw_samples=6, batch_size=64, chunk_size=1000, seed=9)
    for batch_size, chunk_size in [(1, 1), (3, 4), (5, 31)]:
        other = evaluate_sequences(model, sentences, iw_samples=6, batch_size=batch_size, chunk_size=chunk_size, seed=9)
        torch.testing.assert_close(other.iw_nll, reference.iw_nll, atol=1e-4, rtol=0)
        torch.testing.assert_close(other.rec, reference.rec, atol=1e-4, rtol=0)
    # A sentence's latent noise is seeded by its index in the evaluated list, so sentence 0 alone gets the same.
    alone = evaluate_sequences(model, sentences[:1], iw_samples=6, chunk_size=2, seed=9)
    assert abs(float(alone.iw_nll[0]) - float(reference.iw_nll[0])) < 1e-4
    prefix = evaluate_sequences(model, sentences[:5], iw_samples=6, batch_size=2, chunk_size=3, seed=9)
    torch.testing.assert_close(prefix.iw_nll, reference.iw_nll[:5], atol=1e-4, rtol=0)
    different_seed = evaluate_sequences(model, sentences, iw_samples=6, seed=10)
    assert float((different_seed.iw_nll - reference.iw_nll).abs().max()) > 1e-4


class Stopped(Exception):
    """Stands for the Ctrl-C, SIGTERM or crash that stops a long pass."""


def test_a_stopped_pass_resumes_from_its_progress_file_with_the_same_figures(tmp_path, monkeypatch):
    import vaelm.evaluation.metrics as evaluation

    model = random_model(seed=4)
    sentences = random_sentences(13, seed=6, longest=15)
    options = dict(iw_samples=6, batch_size=3, chunk_size=5, seed=9)  # five batches
    uninterrupted = evaluate_sequences(model, sentences, **options)
    progress_file = tmp_path / "valid.progress"
    decode, calls, stop_at = evaluation._decode_all_samples, [], [3]

    def stop_at_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) in stop_at:
            raise Stopped
        return decode(*args, **kwargs)

    monkeypatch.setattr(evaluation, "_decode_all_samples", stop_at_the_third_batch)
    with pytest.raises(Stopped):
        evaluate_sequences(model, sentences, progress_file=progress_file, **options)
    assert progress_file.exists() and not list(tmp_path.glob("*.partial"))
    calls.clear()
    stop_at.clear()
    resumed = evaluate_sequences(model, sentences, progress_file=progress_file, **options)
    assert len(calls) == 3, "the two finished batches are not computed again"
    for name in ("iw_nll", "rec", "kl", "mu", "logvar", "z"):
        assert torch.equal(getattr(resumed, name), getattr(uninterrupted, name)), name
    summary, reference = resumed.summary(), uninterrupted.summary()
    assert {key: summary[key] for key in ("nll", "elbo", "kl", "mi", "au")} == {
        key: reference[key] for key in ("nll", "elbo", "kl", "mi", "au")
    }
    assert not progress_file.exists(), "a complete pass removes its progress file"


def test_a_progress_file_of_another_evaluation_is_refused(tmp_path, monkeypatch):
    import vaelm.evaluation.metrics as evaluation

    model, sentences = random_model(seed=4), random_sentences(7, seed=6)
    progress_file = tmp_path / "test.progress"
    decode = evaluation._decode_all_samples
    calls = []

    def stop_at_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Stopped
        return decode(*args, **kwargs)

    monkeypatch.setattr(evaluation, "_decode_all_samples", stop_at_the_second_batch)
    with pytest.raises(Stopped):
        evaluate_sequences(model, sentences, iw_samples=4, batch_size=2, seed=9, progress_file=progress_file)
    monkeypatch.undo()
    for change, named in [
        (dict(seed=10), "seed"),
        (dict(iw_samples=5), "iw_samples"),
        (dict(bf16=True), "bf16"),
        (dict(sequences=sentences[:-1]), "sentences"),
        (dict(model=random_model(seed=5)), "model"),
    ]:
        arguments = {**dict(model=model, sequences=sentences, iw_samples=4, batch_size=2, seed=9), **change}
        with pytest.raises(ValueError, match=f"{progress_file}.*its {named} is"):
            evaluate_sequences(progress_file=progress_file, **arguments)
    progress_file.write_bytes(progress_file.read_bytes()[:100])  # cut off
    with pytest.raises(ValueError, match=r"cannot be read.*Delete it"):
        evaluate_sequences(model, sentences, iw_samples=4, batch_size=2, seed=9, progress_file=progress_file)


def test_length_sorted_batches_cover_every_sentence_once_longest_first():
    lengths = [3, 9, 1, 9, 4, 7, 2]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    flat = [lengths[index] for batch in batches for index in batch]
    assert flat == sorted(lengths, reverse=True)
    assert [len(batch) for batch in batches] == [3, 3, 1]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"latent_to_every_step": True},
        {"num_layers": 2},
        {"tie_word_embeddings": True},
        {"bidirectional_encoder": True, "latent_to_every_step": True, "num_layers": 2},
        {"cell_type": "gru"},
        {"cell_type": "gru", "latent_to_every_step": True, "num_layers": 2},
        {"cell_type": "gru", "tie_word_embeddings": True, "bidirectional_encoder": True},
    ],
    ids=[
        "plain",
        "z-every-step",
        "two-layers",
        "tied",
        "bidirectional",
        "gru",
        "gru-two-layers-z-every-step",
        "gru-tied-bidirectional",
    ],
)
def test_fast_decoder_matches_the_models_reconstruction_nll(config):
    model = random_model(seed=5, **config)
    sentences = random_sentences(11, seed=7)
    fast = evaluate_sequences(model, sentences, iw_samples=5, batch_size=4, chunk_size=7, seed=2)
    reference = evaluate_sequences(model, sentences, iw_samples=5, batch_size=4, chunk_size=7, seed=2, fast_path=False)
    assert fast.fast_path and not reference.fast_path
    torch.testing.assert_close(fast.iw_nll, reference.iw_nll, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.rec, reference.rec, atol=1e-4, rtol=0)


def test_bf16_stays_within_five_hundredths_of_a_nat(tiny_model, tiny_test_ids):
    fp32 = evaluate_sequences(tiny_model, tiny_test_ids, iw_samples=20, seed=0).summary()
    bf16 = evaluate_sequences(tiny_model, tiny_test_ids, iw_samples=20, seed=0, bf16=True).summary()
    assert bf16["bf16"] and not fp32["bf16"]
    assert abs(bf16["nll"] - fp32["nll"]) < 0.05
    assert abs(bf16["elbo"] - fp32["elbo"]) < 0.05


def test_evaluation_restores_training_mode_and_rejects_ids_without_bos_and_eos():
    model = random_model(seed=6).train()
    evaluate_sequences(model, random_sentences(3), iw_samples=2)
    assert model.training
    with pytest.raises(ValueError, match=r"<s>"):
        evaluate_sequences(model, [[5, 6, 3]], iw_samples=2)


# ------------------------------------------------------------------------------------------------ MI and AU
def test_active_units_count_only_dimensions_whose_posterior_means_vary():
    generator = torch.Generator().manual_seed(0)
    mu = torch.zeros(500, 5)
    mu[:, 0] = torch.randn(500, generator=generator)  # variance ≈ 1: active
    mu[:, 2] = 0.3 * torch.randn(500, generator=generator)  # variance ≈ 0.09: active
    mu[:, 3] = 0.05 * torch.randn(500, generator=generator)  # variance ≈ 0.0025: below 0.01
    mu[:, 4] = 7.0  # constant, however large
    assert active_units(mu) == 2


def test_mutual_information_is_zero_when_q_ignores_x_and_log_n_for_separated_posteriors():
    generator = torch.Generator().manual_seed(0)
    count, size = 64, 3
    mu, logvar = torch.full((count, size), 0.4), torch.full((count, size), -0.5)
    z = mu + torch.randn(count, size, generator=generator) * torch.exp(0.5 * logvar)
    assert abs(mutual_information(z, mu, logvar)) < 1e-9
    separated_mu = torch.arange(count, dtype=torch.float32)[:, None].repeat(1, size) * 10.0
    small_logvar = torch.full((count, size), -6.0)
    separated_z = separated_mu + torch.randn(count, size, generator=generator) * math.exp(-3.0)
    assert mutual_information(separated_z, separated_mu, small_logvar) == pytest.approx(math.log(count), abs=1e-6)


def test_mi_and_au_of_a_model_whose_posterior_ignores_the_sentence_are_zero():
    model = random_model(seed=7)
    with torch.no_grad():
        model.posterior.weight.zero_()
        model.posterior.bias.uniform_(-1.0, 1.0)  # the same non-standard q(z|x) for every sentence
    summary = evaluate_sequences(model, random_sentences(20, seed=8), iw_samples=4).summary()
    assert summary["au"] == 0
    assert abs(summary["mi"]) < 1e-6
    assert summary["kl"] > 0.0


# ------------------------------------------------------------------------------------------------ the command
def test_vaelm_evaluate_prints_one_json_object(trained_model_dir, tiny_corpus, tmp_path):
    tiny_model_dir = trained_model_dir
    output = tmp_path / "metrics.json"
    command = [
        sys.executable,
        str(REPO / "scripts" / "evaluate.py"),
        "--model",
        str(tiny_model_dir),
        "--data_dir",
        str(tiny_corpus),
        "--split",
        "test",
        "--iw_samples",
        "10",
        "--max_sentences",
        "25",
        "--output",
        str(output),
        "--progress_file",
        str(tmp_path / "test.progress"),
    ]
    environment = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout)  # exactly one JSON value: anything else on stdout fails here
    assert set(summary) >= SUMMARY_KEYS
    assert summary["sentences"] == 25 and summary["iw_samples"] == 10
    assert summary["nll"] <= summary["elbo"]
    assert summary["ppl"] == pytest.approx(math.exp(summary["nll"] * summary["sentences"] / summary["tokens"]))
    assert summary["latent_size"] == 4
    assert summary["command"].startswith("vaelm-evaluate --model ")
    saved = json.loads(output.read_text(encoding="utf-8"))
    assert len(saved.pop("posterior_mean_variances")) == 4, "the per-dimension list goes to --output only"
    assert saved == summary
    assert "NLL" in completed.stderr and "AU" in completed.stderr, "a summary for people on stderr"
    assert not (tmp_path / "test.progress").exists(), "the progress file of a complete pass is removed"


def test_vaelm_evaluate_reports_a_missing_model_without_a_traceback(tiny_corpus, tmp_path, capsys):
    missing = tmp_path / "no_model_here"
    status = run_command("vaelm-evaluate", evaluate_main, ["--model", str(missing), "--data_dir", str(tiny_corpus)])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{missing} does not exist" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_final_evaluation_at_the_end_of_training_counts_every_valid_sentence(tiny_corpus, tmp_path):
    valid = [line for line in (tiny_corpus / "valid.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    longest_kept = sorted(len(line.split()) for line in valid)[len(valid) // 2]
    assert any(len(line.split()) > longest_kept for line in valid)
    # --max_length drops the longer half of valid from the Trainer's evaluation, but not from the final one.
    output_dir = train_tiny(
        tiny_corpus,
        tmp_path / "model",
        "--max_steps",
        "4",
        "--max_length",
        str(longest_kept),
        "--final_eval_iw_samples",
        "3",
    )
    history = json.loads((output_dir / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    final = next(entry for entry in history if "final_nll" in entry)
    assert final["final_iw_samples"] == 3
    assert final["final_sentences"] == len(valid)
    assert final["final_tokens"] == sum(len(line.split()) + 1 for line in valid)
    assert final["final_nll"] <= final["final_elbo"] + 0.05
    assert final["final_ppl"] == pytest.approx(math.exp(final["final_nll"] * len(valid) / final["final_tokens"]))


def test_evaluate_dataset_accepts_a_tokenized_dataset(tiny_model, tiny_test_ids):
    import datasets

    dataset = datasets.Dataset.from_dict({"input_ids": tiny_test_ids[:10]})
    summary = evaluate_dataset(tiny_model, dataset, iw_samples=2, seed=0)
    assert summary["sentences"] == 10
    assert summary["tokens"] == sum(len(row) - 1 for row in tiny_test_ids[:10])
