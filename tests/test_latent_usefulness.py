"""A latent you can use: rate control (`--target_kl`, a PI controller on β) and the bag-of-words loss
(`--bow_loss_weight`), which trains the code to carry the sentence's words and never enters the ELBO or IW-NLL."""

import json
import logging
import shutil

import pytest
import torch
from conftest import train_tiny
from safetensors.torch import load_file

from vaelm import VAELMConfig, VAELMModel
from vaelm.cli.train import parse_arguments
from vaelm.evaluation.metrics import evaluate_sequences
from vaelm.training.kl_schedules import KLController

CONTROLLED = ("--kl_schedule", "constant", "--learning_rate", "0.005", "--logging_steps", "5")


def logged(run, key: str) -> list[tuple[int, float]]:
    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    return [(entry["step"], entry[key]) for entry in history if key in entry]


# ------------------------------------------------------------------------------------------------ rate control
@pytest.mark.parametrize("target", [4.0, 8.0])
def test_the_kl_of_the_last_quarter_is_held_at_the_target(tiny_corpus, tmp_path, target):
    run = train_tiny(tiny_corpus, tmp_path / "run", "--target_kl", str(target), "--max_steps", "200", *CONTROLLED)
    last_quarter = [kl for step, kl in logged(run, "kl") if step > 150]
    assert len(last_quarter) == 10
    assert sum(last_quarter) / len(last_quarter) == pytest.approx(target, rel=0.2)
    # Above the rate that the model chooses on its own, which takes β below 0 (a reward for rate) at times.
    assert min(beta for _, beta in logged(run, "beta")) < 0


def test_a_resumed_run_continues_the_controller_exactly(tiny_corpus, tmp_path):
    flags = ("--target_kl", "6", "--max_steps", "20", "--save_strategy", "steps", "--save_steps", "10", *CONTROLLED)
    straight = train_tiny(tiny_corpus, tmp_path / "straight", *flags)
    state = json.loads((straight / "checkpoint-10" / KLController.CHECKPOINT_FILE).read_text())
    assert state["target_kl"] == 6.0 and state["integral"] != 0.0
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-10", resumed / "checkpoint-10")
    train_tiny(tiny_corpus, resumed, *flags, "--resume_from_checkpoint", str(resumed / "checkpoint-10"))
    final = KLController.CHECKPOINT_FILE
    assert json.loads((resumed / "checkpoint-20" / final).read_text()) == pytest.approx(
        json.loads((straight / "checkpoint-20" / final).read_text())
    )
    assert [beta for step, beta in logged(resumed, "beta") if step > 10] == pytest.approx(
        [beta for step, beta in logged(straight, "beta") if step > 10], abs=1e-6
    )
    expected, again = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.allclose(again[name], expected[name], atol=1e-5) for name in expected)
    # Other rate-control settings than the checkpoint's are refused, naming the flag.
    other = tmp_path / "other"
    shutil.copytree(straight / "checkpoint-10", other / "checkpoint-10")
    with pytest.raises(ValueError, match=r"--target_kl 6\.0.*--target_kl 9\.0"):
        train_tiny(
            tiny_corpus,
            other,
            *flags,
            "--target_kl",
            "9",
            "--resume_from_checkpoint",
            str(other / "checkpoint-10"),
        )


def test_a_checkpoint_trained_without_a_target_is_not_resumed_with_one(tiny_corpus, tmp_path):
    run = train_tiny(tiny_corpus, tmp_path / "run", "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2")
    with pytest.raises(ValueError, match="trained without --target_kl"):
        train_tiny(
            tiny_corpus,
            run,
            "--max_steps",
            "4",
            "--target_kl",
            "5",
            "--resume_from_checkpoint",
            str(run / "checkpoint-2"),
        )


def test_rate_control_flags_are_checked(tmp_path):
    base = ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match="both set the rate: give one"):
        parse_arguments([*base, "--target_kl", "10", "--free_bits", "0.2"])
    with pytest.raises(ValueError, match="--target_kl must be >= 0"):
        parse_arguments([*base, "--target_kl", "-1"])


def test_the_controller_raises_beta_above_the_target_lowers_it_below_and_keeps_to_the_cap():
    controller = KLController(target=10.0, kp=0.1, ki=0.01)
    assert controller.beta(20.0, cap=1.0) == pytest.approx(0.01 + 0.1)  # error +1: integral 0.01, then + kp
    assert controller.integral == pytest.approx(0.01)
    for _ in range(1000):
        beta = controller.beta(100.0, cap=0.5)
    assert beta == 0.5 and controller.integral == 0.5, "β and the integral stay within the schedule's cap"
    for _ in range(1000):
        beta = controller.beta(0.0, cap=0.5)
    assert beta == -0.5, "far below the target, β becomes a reward for rate, down to -cap"


def test_progress_lines_show_beta_and_the_kl_against_its_target(tiny_corpus, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="vaelm"):
        run = train_tiny(tiny_corpus, tmp_path / "run", "--target_kl", "5", "--max_steps", "10", *CONTROLLED)
    lines = [record.getMessage() for record in caplog.records if record.getMessage().startswith("step 10/")]
    assert lines and "KL target 5" in lines[0] and "β " in lines[0]
    record = json.loads((run / "training_record.json").read_text())
    assert record["training_arguments"]["target_kl"] == 5.0
    assert "target_kl" in (run / "README.md").read_text(), "the card states the target"


# ------------------------------------------------------------------------------------------------ bag of words
def tiny_model(**overrides) -> VAELMModel:
    torch.manual_seed(0)
    values = dict(vocab_size=30, embedding_size=8, hidden_size=12, latent_size=3, word_dropout=0.0)
    return VAELMModel(VAELMConfig(**{**values, **overrides}))


SENTENCES = [[2, 5, 6, 7, 3], [2, 8, 9, 3], [2, 10, 11, 12, 13, 3], [2, 5, 3]]


def test_the_bag_of_words_loss_scores_every_scored_word_from_z():
    model = tiny_model(bow_loss_weight=1.0).train()
    ids = torch.tensor([[2, 5, 6, 3, 0], [2, 7, 7, 8, 3]])
    output = model(ids)
    log_probs = torch.log_softmax(model.bow_head(output.z), dim=-1)
    expected = -torch.stack(
        [log_probs[0, [5, 6, 3]].sum(), log_probs[1, [7, 7, 8, 3]].sum()]  # w1 … wn </s>; padding never counts
    )
    assert output.bow_loss.item() == pytest.approx(expected.mean().item(), rel=1e-5)
    assert output.loss.item() == pytest.approx((output.rec_loss + output.kl).item()), "not part of the ELBO"
    assert model.eval()(ids).bow_loss is None, "nothing to compute in evaluation"
    assert tiny_model().bow_head is None
    with pytest.raises(ValueError, match="bow_loss_weight needs a latent variable"):
        VAELMConfig(latent_size=0, bow_loss_weight=1.0)


def test_the_bag_of_words_head_leaves_elbo_and_iw_nll_untouched():
    with_head = tiny_model(bow_loss_weight=2.0).eval()
    without = tiny_model().eval()
    state = {name: value for name, value in with_head.state_dict().items() if not name.startswith("bow_head.")}
    without.load_state_dict(state)
    first = evaluate_sequences(with_head, SENTENCES, iw_samples=5, batch_size=2, seed=0).summary()
    second = evaluate_sequences(without, SENTENCES, iw_samples=5, batch_size=2, seed=0).summary()
    for key in ("nll", "elbo", "kl", "ppl"):
        assert first[key] == second[key], key


def test_the_bag_of_words_loss_changes_training(tiny_corpus, tmp_path):
    plain = train_tiny(tiny_corpus, tmp_path / "plain", "--max_steps", "5")
    bow = train_tiny(tiny_corpus, tmp_path / "bow", "--max_steps", "5", "--bow_loss_weight", "1")
    first, second = load_file(str(plain / "model.safetensors")), load_file(str(bow / "model.safetensors"))
    assert "bow_head.weight" in second and "bow_head.weight" not in first
    assert not torch.allclose(first["encoder.weight_ih_l0"], second["encoder.weight_ih_l0"])
    assert all(value > 0 for _, value in logged(bow, "bow_loss"))
    assert VAELMModel.from_pretrained(bow).config.bow_loss_weight == 1.0
