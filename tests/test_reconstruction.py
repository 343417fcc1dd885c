"""Reconstruction from the posterior mean: corpus BLEU-4 (checked against values worked out by hand), exact match,
greedy decoding of every sentence in input order, and its place in `vaelm-evaluate`'s output and the model card."""

import json
import math
import shutil

import pytest
import torch

from vaelm import VAELMConfig, VAELMModel
from vaelm.cli import run_command
from vaelm.cli.evaluate import main as evaluate_main
from vaelm.evaluation.job import human_summary
from vaelm.evaluation.metrics import tokenize_sentences
from vaelm.evaluation.reconstruction import (
    ReconstructionResult,
    corpus_bleu,
    reconstruct_sequences,
    reconstruction_paragraph,
    reconstruction_summary,
)
from vaelm.generation.sentence_vae import SentenceVAE
from vaelm.hub.model_card import write_model_card
from vaelm.tokenization_vaelm import load_tokenizer

RECONSTRUCTION_KEYS = {
    "bleu4",
    "exact_match",
    "exact_matches",
    "token_accuracy",
    "rec_loss_at_mean",
    "sentences",
    "precisions",
    "brevity_penalty",
    "decoding",
    "unk_allowed",
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def words(text: str) -> list[str]:
    return text.split()


# ------------------------------------------------------------------------------------------------ BLEU
def test_bleu_of_identical_corpora_is_100():
    corpus = [words("the company said it will buy shares"), words("investors are worried about the bank")]
    score = corpus_bleu(corpus, corpus)
    assert score.bleu == pytest.approx(100.0)
    assert score.precisions == pytest.approx([100.0] * 4) and score.brevity_penalty == 1.0


def test_bleu_of_a_small_corpus_worked_out_by_hand():
    # Sentence 1: "the cat sat on the mat" against "the cat is on the mat":
    #   unigrams 5/6 (the ×2, cat, on, mat), bigrams 3/5 (the cat, on the, the mat), trigrams 1/4 (on the mat),
    #   4-grams 0/3.
    # Sentence 2 is reproduced exactly: 4/4, 3/3, 2/2, 1/1.
    # Corpus: 9/10, 6/8, 3/6, 1/4; c = r = 10, so no brevity penalty:
    # BLEU = 100 · (0.9 · 0.75 · 0.5 · 0.25) ** (1/4).
    hypotheses = [words("the cat sat on the mat"), words("a b c d")]
    references = [words("the cat is on the mat"), words("a b c d")]
    score = corpus_bleu(hypotheses, references)
    assert score.precisions == pytest.approx([90.0, 75.0, 50.0, 25.0])
    assert score.brevity_penalty == 1.0 and (score.hypothesis_length, score.reference_length) == (10, 10)
    assert score.bleu == pytest.approx(100 * (0.9 * 0.75 * 0.5 * 0.25) ** 0.25)
    assert score.bleu == pytest.approx(53.8956, abs=1e-4)
    # Sentence 1 alone has no matching 4-gram: unsmoothed BLEU is 0.
    assert corpus_bleu(hypotheses[:1], references[:1]).bleu == 0.0


def test_bleu_brevity_penalty_and_clipping():
    # Every n-gram of "a b c d" is in "a b c d e f", but c = 4 < r = 6: BP = exp(1 - 6/4).
    short = corpus_bleu([[1, 2, 3, 4]], [[1, 2, 3, 4, 5, 6]])
    assert short.brevity_penalty == pytest.approx(math.exp(-0.5))
    assert short.bleu == pytest.approx(100 * math.exp(-0.5))
    # A longer hypothesis has no penalty; "the" repeated four times is counted at most twice (the reference's count).
    clipped = corpus_bleu([words("the the the the")], [words("the cat on the")])
    assert clipped.precisions[0] == pytest.approx(50.0) and clipped.brevity_penalty == 1.0
    assert corpus_bleu([[]], [[1, 2]]).bleu == 0.0, "empty hypotheses score 0"
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        corpus_bleu([[1]], [[1], [2]])


def test_exact_match_counts_sentences_reproduced_token_for_token():
    result = ReconstructionResult(
        hypotheses=[[5, 6], [7], [8, 9], []],
        references=[[5, 6], [7, 8], [8, 9], [4]],
        rec_at_mean=[1.0, 2.0, 3.0, 6.0],
        eos_token_id=3,
        seconds=0.0,
    )
    summary = result.summary()
    assert result.exact_matches == 2
    assert summary["exact_matches"] == 2 and summary["exact_match"] == pytest.approx(0.5) and summary["sentences"] == 4
    assert summary["unk_allowed"] is True and "<unk> allowed" in summary["decoding"]
    assert summary["rec_loss_at_mean"] == pytest.approx(3.0)


def test_token_accuracy_compares_positions_words_and_end_of_sentence():
    # Reference positions, </s> included: [5 6 </s>] 3/3; [7 8 </s>] against [7 </s>]: 1/3; [9 8 </s>] against
    # [8 9 </s>]: only </s>, 1/3 (a word out of place does not count); [4 </s>] against [</s>]: 0/2. 5 of 11.
    result = ReconstructionResult(
        hypotheses=[[5, 6], [7], [8, 9], []],
        references=[[5, 6], [7, 8], [9, 8], [4]],
        rec_at_mean=[0.0] * 4,
        eos_token_id=3,
        seconds=0.0,
    )
    assert result.token_accuracy == pytest.approx(5 / 11)
    # A hypothesis that runs on past the reference's end misses its </s>.
    longer = ReconstructionResult([[5, 6, 7]], [[5, 6]], [0.0], eos_token_id=3, seconds=0.0)
    assert longer.token_accuracy == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------ decoding
def test_every_sentence_is_decoded_greedily_from_its_own_posterior_mean_in_input_order(tiny_model_dir, tiny_corpus):
    model = VAELMModel.from_pretrained(tiny_model_dir).eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    texts = [line for line in (tiny_corpus / "valid.txt").read_text().splitlines() if line.strip()][:12]
    sequences = tokenize_sentences(texts, tokenizer, "whitespace")
    model.train()
    result = reconstruct_sequences(model, sequences, tokenizer, batch_size=5)  # batches mix lengths and orders
    assert model.training, "the model's mode is restored"
    assert result.references == [sequence[1:-1] for sequence in sequences]
    vae = SentenceVAE(model, tokenizer)
    for text, hypothesis in zip(texts, result.hypotheses):
        alone = vae.sample_posterior(text, mean=True)[0]["text"]  # the demo's Reconstruct tab, <unk> allowed
        assert vae.to_text(hypothesis) == alone
    summary = result.summary()
    assert set(summary) >= RECONSTRUCTION_KEYS and 0.0 <= summary["bleu4"] <= 100.0
    assert summary["exact_matches"] == sum(h == r for h, r in zip(result.hypotheses, result.references))
    # The reconstruction term at the mean is the teacher-forced -log p(x|z = μ) of each sentence, in input order.
    for sequence, value in zip(sequences[:3], result.rec_at_mean[:3]):
        with torch.no_grad():
            output = model.eval()(torch.tensor([sequence]), sample_latent=False)
        assert value == pytest.approx(output.rec_loss.item(), rel=1e-5)


def test_a_language_model_has_no_reconstruction():
    model = VAELMModel(VAELMConfig(vocab_size=20, embedding_size=8, hidden_size=8, latent_size=0)).eval()
    sequences = [[2, 5, 6, 3], [2, 7, 3]]
    assert reconstruction_summary(model, sequences, max_sentences=10) == {}
    with pytest.raises(ValueError, match="no posterior"):
        reconstruct_sequences(model, sequences)
    line = human_summary(
        {
            "split": "test",
            "sentences": 2,
            "tokens": 5,
            "iw_samples": 1,
            "seconds": 0.1,
            "nll": 1.0,
            "ppl": 2.0,
            "elbo": 1.0,
            "elbo_ppl": 2.0,
            "kl": 0.0,
            "mi": 0.0,
            "au": 0,
            "latent_size": 0,
        }
    )
    assert "reconstruction: none (a language model has no latent code)" in line


# ------------------------------------------------------------------------------------------------ command and card
def test_vaelm_evaluate_reports_bleu_and_exact_match(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    output = tmp_path / "eval_results.json"
    argv = [
        "--model",
        str(tiny_model_dir),
        "--data_dir",
        str(tiny_corpus),
        "--split",
        "test",
        "--iw_samples",
        "3",
        "--max_sentences",
        "10",
        "--reconstruction_sentences",
        "6",
        "--no_progress",
        "true",
        "--output",
        str(output),
    ]
    assert run_command("vaelm-evaluate", evaluate_main, argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert set(summary["reconstruction"]) >= RECONSTRUCTION_KEYS
    assert summary["reconstruction"]["sentences"] == 6 and summary["sentences"] == 10
    assert "BLEU-4" in captured.err and "exact match" in captured.err and "<unk> allowed" in captured.err

    off = [
        "--model",
        str(tiny_model_dir),
        "--data_dir",
        str(tiny_corpus),
        "--split",
        "test",
        "--iw_samples",
        "2",
        "--max_sentences",
        "4",
        "--reconstruction_sentences",
        "0",
        "--no_progress",
        "true",
    ]
    assert run_command("vaelm-evaluate", evaluate_main, off) == 0
    assert "reconstruction" not in json.loads(capsys.readouterr().out)

    bad = [*off[:-4], "--reconstruction_sentences", "-1"]
    assert run_command("vaelm-evaluate", evaluate_main, bad) != 0
    err = capsys.readouterr().err
    assert "--reconstruction_sentences must be 0 (off) or a positive integer" in err and "Traceback" not in err

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    card = write_model_card(folder).read_text()
    assert "BLEU-4" not in card, "no evaluation results in the folder: nothing to show"
    shutil.copy(output, folder / "eval_results.json")
    card = write_model_card(folder).read_text()
    assert reconstruction_paragraph(json.loads(output.read_text())) in card
    assert f"corpus BLEU-4 **{summary['reconstruction']['bleu4']:.2f}**" in card
