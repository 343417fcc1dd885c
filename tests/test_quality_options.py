"""Model and training options for quality: a plain LM (`--latent_size 0`), LSTM-LM regularisation (weight drop, locked
dropout, word-type dropout, weight decay, weight averaging) and collapse remedies (BN-VAE, `--init_from`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import train_tiny
from safetensors.torch import load_file
from test_generation import cli
from test_model import REMOTE_LOAD

from vaelm import VAELMConfig, VAELMModel
from vaelm.cli import homotopy as homotopy_cli
from vaelm.cli import run_command
from vaelm.cli import sample as sample_cli
from vaelm.cli.train import parse_arguments
from vaelm.evaluation.metrics import evaluate_sequences
from vaelm.hub.reproduce import training_command
from vaelm.training.job import copy_encoder
from vaelm.training.trainer import VAETrainer, VAETrainingArguments
from vaelm.training.weight_averaging import WEIGHT_AVERAGE_FILE, average_into


def tiny(seed: int = 0, **overrides) -> VAELMModel:
    torch.manual_seed(seed)
    values = dict(vocab_size=40, embedding_size=8, hidden_size=12, latent_size=3, word_dropout=0.0)
    return VAELMModel(VAELMConfig(**{**values, **overrides}))


def batch(rows: int = 5, width: int = 9, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded `<s> … </s>` rows of different lengths (so both the padded and the packed path can run)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(rows, width, dtype=torch.long)
    for row in range(rows):
        length = width - row if row < width - 2 else 3
        ids[row, :length] = torch.randint(4, 40, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 2, 3
    return ids, (ids != 0).long()


# ------------------------------------------------------------------------------------------------ regularisation
@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
@pytest.mark.parametrize("rows", [5, 12])  # 12 rows of mostly 3 tokens: under the fill threshold, the packed path
def test_weight_drop_changes_training_forwards_only_and_reaches_the_recurrent_weights(cell_type, rows):
    model = tiny(cell_type=cell_type, weight_drop=0.5)
    ids, mask = batch(rows)
    z = torch.randn(rows, 3)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    model.train()
    first, _ = model.reconstruction_nll(ids, mask, z)
    second, _ = model.reconstruction_nll(ids, mask, z)
    assert not torch.allclose(first, second), "two training forwards must use different DropConnect masks"
    first.sum().backward()
    assert model.decoder.weight_hh_l0.grad.abs().sum() > 0
    assert all(torch.equal(before[name], param) for name, param in model.named_parameters()), "weights must not change"
    model.eval()
    with torch.no_grad():
        evaluated, _ = model.reconstruction_nll(ids, mask, z)
        again, _ = model.reconstruction_nll(ids, mask, z)
        plain = tiny(cell_type=cell_type)
        plain.load_state_dict(model.state_dict())
        plain.eval()
        reference, _ = plain.reconstruction_nll(ids, mask, z)
    assert torch.equal(evaluated, again) and torch.allclose(evaluated, reference, atol=1e-6)


def test_fast_evaluation_ignores_weight_drop_and_locked_dropout():
    regularised = tiny(
        weight_drop=0.5, locked_dropout=True, embedding_dropout=0.3, output_dropout=0.3, word_type_dropout=0.2
    )
    plain = tiny()
    plain.load_state_dict(regularised.state_dict())
    sequences = [row[: int(m.sum())].tolist() for row, m in zip(*batch())]
    ours = evaluate_sequences(regularised, sequences, iw_samples=4, seed=0)
    theirs = evaluate_sequences(plain, sequences, iw_samples=4, seed=0)
    assert ours.fast_path and torch.allclose(ours.iw_nll, theirs.iw_nll, atol=1e-6)


def test_locked_dropout_keeps_one_mask_per_sentence_for_all_its_steps():
    model = tiny(locked_dropout=True, embedding_dropout=0.5, output_dropout=0.5).train()
    embeddings = torch.ones(4, 7, 8)
    dropped = model._dropout_inputs(embeddings)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped)), "the same mask at every step"
    assert (dropped == 0).any() and set(dropped.unique().tolist()) <= {0.0, 2.0}
    states = torch.ones(10, 12)
    sentence_of_state = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    head = model._head_inputs(states, sentence_of_state)
    for sentence in range(4):
        rows = head[sentence_of_state == sentence]
        assert torch.equal(rows, rows[:1].expand_as(rows))
    assert (head == 0).any()
    unlocked = tiny(embedding_dropout=0.5).train()._dropout_inputs(torch.ones(4, 7, 8))
    assert not torch.equal(unlocked, unlocked[:, :1].expand_as(unlocked)), "without the flag, masks vary by step"


def test_word_type_dropout_drops_every_occurrence_of_a_word_alike():
    model = tiny(word_type_dropout=0.5).train()
    ids = torch.tensor([[5, 6, 5, 7, 6, 5, 8, 9, 5, 6]] * 3)
    embedded = model._embed(ids)
    weight = model.embed_tokens.weight
    for word in (5, 6, 7, 8, 9):
        rows = embedded[ids == word]
        assert torch.equal(rows, rows[:1].expand_as(rows)), "one decision per word type"
        assert torch.allclose(rows[0], torch.zeros(8)) or torch.allclose(rows[0], 2 * weight[word])
    model.eval()
    assert torch.equal(model._embed(ids), model.embed_tokens(ids))


def test_weight_decay_spares_biases(tmp_path):
    args = VAETrainingArguments(output_dir=str(tmp_path), weight_decay=0.01, report_to=[])
    model = tiny(posterior_bn_gamma=0.5)
    names = set(VAETrainer(model=model, args=args).get_decay_parameter_names(model))
    assert "decoder.weight_hh_l0" in names and "embed_tokens.weight" in names and "lm_head.weight" in names
    assert not any("bias" in name for name in names)


def test_every_evaluation_draws_the_same_latent_noise_and_leaves_the_training_randomness_alone(tmp_path):
    from vaelm.corpora.data import VAELMCollator

    ids, mask = batch(rows=8)
    sentences = [{"input_ids": row[: int(length)].tolist()} for row, length in zip(ids, mask.sum(1))]
    args = VAETrainingArguments(
        output_dir=str(tmp_path), report_to=[], per_device_eval_batch_size=3, seed=5, use_cpu=True
    )
    trainer = VAETrainer(
        model=tiny(initializer_range=0.5), args=args, eval_dataset=sentences, data_collator=VAELMCollator(0)
    )
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first, second = trainer.evaluate()["eval_loss"], trainer.evaluate()["eval_loss"]
    assert first == second, "the same weights score the same"
    assert torch.equal(torch.get_rng_state(), state), "training draws what it would have drawn without evaluations"
    trainer.args.seed = 6  # another seed is other noise: the equality above is not the posterior mean's
    assert trainer.evaluate()["eval_loss"] != first


# ------------------------------------------------------------------------------------------------ BN-VAE
def test_bn_vae_posterior_means_have_the_fixed_batch_statistics_in_training():
    model = tiny(posterior_bn_gamma=0.6)
    ids, mask = batch(8, seed=3)
    with torch.no_grad():
        model.posterior_mean_shift.fill_(0.25)
        model.posterior.weight.mul_(1000)  # raw means that vary far more than BatchNorm's eps (as after training)
    model.train()
    mu, _ = model.encode(ids, mask)
    assert torch.allclose(mu.mean(0), torch.full((3,), 0.25), atol=1e-5)
    assert torch.allclose(mu.var(0, unbiased=False), torch.full((3,), 0.36), rtol=1e-3)
    model.eval()  # running statistics: a sentence's mean no longer depends on its batch
    alone, _ = model.encode(ids[:1], mask[:1])
    together, _ = model.encode(ids, mask)
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    assert "posterior_mean_shift" not in dict(tiny().named_parameters()), "off by default: the same weights as before"


# ------------------------------------------------------------------------------------------------ latent_dim 0
def test_plain_language_model_has_no_encoder_and_an_exact_nll():
    model = tiny(latent_size=0).eval()
    assert not any(
        name.startswith(("encoder.", "posterior", "latent_to_state")) for name, _ in model.named_parameters()
    )
    ids, mask = batch()
    with torch.no_grad():
        out = model(ids, mask)
    assert out.kl.item() == 0.0 and out.mu.shape == (5, 0)
    assert torch.equal(out.loss, out.rec_loss)
    sequences = [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]
    result = evaluate_sequences(model, sequences, iw_samples=20, seed=0)
    summary = result.summary()
    assert summary["iw_samples"] == 1 and summary["kl"] == 0.0 and summary["mi"] == 0.0 and summary["au"] == 0
    assert torch.allclose(result.iw_nll, out.rec_per_sentence.double(), atol=1e-4)
    assert summary["nll"] == pytest.approx(summary["elbo"])


@pytest.fixture(scope="module")
def language_model_dir(tiny_corpus, tmp_path_factory) -> Path:
    return train_tiny(
        tiny_corpus, tmp_path_factory.mktemp("plain_lm"), "--latent_dim", "0", "--final_eval_iw_samples", "5"
    )


def test_plain_language_model_trains_saves_loads_and_samples(language_model_dir, tmp_path, capsys):
    config = json.loads((language_model_dir / "config.json").read_text())
    assert config["latent_size"] == 0
    history = json.loads((language_model_dir / "trainer_state.json").read_text())["log_history"]
    final = next(entry for entry in history if "final_nll" in entry)
    assert final["final_kl"] == 0.0 and final["final_iw_samples"] == 1
    train_logs = [entry for entry in history if "rec_loss" in entry and "loss" in entry]
    assert train_logs[-1]["rec_loss"] < train_logs[0]["rec_loss"] - 3 and all(entry["kl"] == 0 for entry in train_logs)
    card = (language_model_dir / "README.md").read_text()
    assert "could not be generated" not in card, "the card shows LM samples"
    assert "A plain LSTM language model" in card and "encoder maps a sentence" not in card
    samples = [line for line in card.split("## Samples")[1].split("##")[0].splitlines() if line.startswith("- ")]
    assert len(samples) == 5 and len(set(samples)) > 1, "sampled words: greedy decoding without z gives one sentence"
    for absent in ("vaelm-homotopy", 'mode="encode"', "kl_schedule", "eval_kl", "annealing", "free_bits"):
        assert absent not in card, f"{absent}: a language model has no posterior and no KL"
    # Loaded without the package (trust_remote_code), it scores like the package's class.
    script = tmp_path / "load.py"
    script.write_text(REMOTE_LOAD)
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(language_model_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["kl"] == 0.0 and remote["loss"] == pytest.approx(remote["rec"])
    # Sampled by the same command; posterior commands refuse with a clear message.
    status, out, _ = cli(sample_cli, ["--model", str(language_model_dir), "--num", "3", "--max_new_tokens", "8"])
    assert status == 0 and len(out.splitlines()) == 3
    status, out, _ = cli(sample_cli, ["--model", str(language_model_dir), "--impute", "the company ___"])
    assert status == 0 and out.startswith("the company")
    assert (
        run_command("vaelm-sample", sample_cli.main, ["--model", str(language_model_dir), "--sentence", "the bank"])
        == 1
    )
    assert "--latent_size 0" in capsys.readouterr().err
    argv = ["--model", str(language_model_dir), "--start", "the bank", "--end", "investors"]
    assert run_command("vaelm-homotopy", homotopy_cli.main, argv) == 1
    assert "no latent variable" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ weight averaging
def test_ema_weights_are_evaluated_and_saved_and_a_resumed_run_continues_the_average(tiny_corpus, tmp_path):
    flags = (
        "--ema_decay",
        "0.9",
        "--save_strategy",
        "steps",
        "--save_steps",
        "10",
        "--max_steps",
        "20",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "10",
    )
    run = train_tiny(tiny_corpus, tmp_path / "run", *flags)
    saved = load_file(str(run / "model.safetensors"))
    raw = load_file(str(run / "checkpoint-20" / "model.safetensors"))
    average = load_file(str(run / "checkpoint-20" / WEIGHT_AVERAGE_FILE))
    assert set(average) == set(raw)
    assert all(torch.equal(saved[name], average[name]) for name in average), "the saved model is the average"
    assert not torch.allclose(saved["decoder.weight_hh_l0"], raw["decoder.weight_hh_l0"]), (
        "and differs from the raw weights"
    )
    # The step-20 evaluation (during training) saw the averaged weights, which training ends with: it is the run's
    # final evaluation (not run and logged a second time), and its figures are the run's results.
    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    evaluations = [entry["eval_kl"] for entry in history if "eval_kl" in entry]
    assert len(evaluations) == 2
    assert json.loads((run / "all_results.json").read_text())["eval_kl"] == evaluations[-1]
    # Resuming from step 10 ends with the same average as the run that went straight through.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    subprocess.run(["cp", "-r", str(run / "checkpoint-10"), str(resumed)], check=True)
    train_tiny(tiny_corpus, resumed, *flags, "--resume_from_checkpoint", str(resumed / "checkpoint-10"))
    again = load_file(str(resumed / "model.safetensors"))
    assert all(torch.allclose(again[name], saved[name], atol=1e-5) for name in saved)


def test_ema_with_load_best_model_at_end_keeps_the_best_checkpoints_average(tiny_corpus, tmp_path):
    run = train_tiny(
        tiny_corpus,
        tmp_path / "run",
        "--ema_decay",
        "0.9",
        "--save_strategy",
        "steps",
        "--save_steps",
        "10",
        "--max_steps",
        "20",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "10",
        "--load_best_model_at_end",
        "true",
        "--metric_for_best_model",
        "eval_loss",
        "--greater_is_better",
        "false",
    )
    best = json.loads((run / "trainer_state.json").read_text())["best_model_checkpoint"]
    saved = load_file(str(run / "model.safetensors"))
    average = load_file(str(Path(best) / WEIGHT_AVERAGE_FILE))
    assert all(torch.equal(saved[name], average[name]) for name in average)


def test_ema_warms_up_before_its_decay():
    """Early updates follow the weights closely (decay (1 + t) / (10 + t)); later ones use --ema_decay."""
    from types import SimpleNamespace

    from vaelm.training.weight_averaging import WeightAveragingCallback

    model = torch.nn.Linear(2, 1, bias=False)
    callback = WeightAveragingCallback(0.999)
    with torch.no_grad():
        model.weight.fill_(0.0)
    callback.start_from(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    callback.on_step_end(None, SimpleNamespace(global_step=1), None, model=model)
    torch.testing.assert_close(callback.average["weight"], torch.full((1, 2), 1 - 2 / 11))
    assert callback.decay_at(10) == 11 / 20 and callback.decay_at(20_000) == 0.999


def test_ema_decay_must_lie_in_the_unit_interval(tmp_path):
    with pytest.raises(ValueError, match="--ema_decay"):
        VAETrainingArguments(output_dir=str(tmp_path), ema_decay=1.0)


def test_scheduler_keywords_that_are_not_json_name_their_flag(tmp_path):
    with pytest.raises(ValueError, match="--lr_scheduler_kwargs takes a JSON object"):
        VAETrainingArguments(output_dir=str(tmp_path), lr_scheduler_kwargs="{'num_cycles': 4}")
    arguments = VAETrainingArguments(output_dir=str(tmp_path), lr_scheduler_kwargs='{"num_cycles": 4}')
    assert arguments.lr_scheduler_kwargs == {"num_cycles": 4}


# ------------------------------------------------------------------------------------------------ average_with
def test_average_into_takes_the_uniform_mean_and_names_a_model_of_another_shape():
    models = [tiny(seed=seed) for seed in (1, 2, 3)]
    states = [{name: tensor.clone() for name, tensor in model.state_dict().items()} for model in models]
    average_into(models[0], models[1:], ["b", "c"])
    for name, tensor in models[0].state_dict().items():
        assert torch.allclose(tensor, sum(state[name] for state in states) / 3, atol=1e-6), name
    with pytest.raises(ValueError, match=r"--average_with wide: .*name or shape"):
        average_into(tiny(), [tiny(hidden_size=16)], ["wide"])


def test_average_with_needs_the_model_it_averages_with(tmp_path):
    base = ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match="--model_name_or_path"):
        parse_arguments([*base, "--average_with", "a", "b"])
    arguments = parse_arguments([*base, "--model_name_or_path", "c", "--average_with", "a", "b"])[0]
    assert arguments.average_with == ["a", "b"]


def test_a_run_starts_from_the_average_and_its_card_repeats_the_stages(tiny_model_dir, tiny_corpus, tmp_path):
    later = train_tiny(tiny_corpus, tmp_path / "later", "--model_name_or_path", str(tiny_model_dir), "--max_steps", "3")
    averaged = train_tiny(  # learning rate 0: the saved weights are the ones it started from
        tiny_corpus,
        tmp_path / "averaged",
        "--model_name_or_path",
        str(later),
        "--average_with",
        str(tiny_model_dir),
        "--max_steps",
        "1",
        "--learning_rate",
        "0",
    )
    first, second, result = (
        load_file(str(folder / "model.safetensors")) for folder in (tiny_model_dir, later, averaged)
    )
    assert not torch.equal(first["decoder.weight_hh_l0"], second["decoder.weight_hh_l0"])
    for name, tensor in result.items():
        assert torch.allclose(tensor, (first[name] + second[name]) / 2, atol=1e-6), name
    record = json.loads((averaged / "training_record.json").read_text())
    [entry] = record["started_from"]["averaged_with"]
    assert entry["training_record"] == json.loads((tiny_model_dir / "training_record.json").read_text())
    assert (
        f"its weights averaged with those of a private model folder, {tiny_model_dir.name} (`--average_with`)"
        in (averaged / "README.md").read_text()
    )
    # On public data, the card's command gives the three stages; the average names the earlier stage.
    public = ["ptb-text-only/ptb_text_only"]
    stage_1 = {**entry["training_record"], "datasets": public}
    stage_2 = {**record["started_from"]["training_record"], "datasets": public}
    stage_2["started_from"] = {**stage_2["started_from"], "training_record": stage_1}
    stage_3 = {**record, "datasets": public}
    stage_3["started_from"] = {
        **record["started_from"],
        "training_record": stage_2,
        "averaged_with": [{**entry, "training_record": stage_1}],
    }
    config = json.loads((averaged / "config.json").read_text())
    lines = training_command(config, stage_3).splitlines()
    assert len(lines) == 3
    assert lines[2].endswith("--model_name_or_path stage-2 --average_with stage-1 --output_dir stage-3")
    unrecorded = {**stage_3, "started_from": {**stage_3["started_from"], "averaged_with": [{"model": "x"}]}}
    assert "--average_with AVERAGED_MODEL --output_dir stage-3" in training_command(config, unrecorded)


# ------------------------------------------------------------------------------------------------ init_from
def test_copy_encoder_keeps_the_encoder_and_resets_the_decoder():
    source, target = tiny(seed=1), tiny(seed=2)
    fresh = {name: tensor.clone() for name, tensor in target.state_dict().items()}
    copy_encoder(source, target, "source")
    for name, tensor in target.state_dict().items():
        expected = (
            source.state_dict()[name] if name.startswith(("embed_tokens", "encoder", "posterior")) else fresh[name]
        )
        assert torch.equal(tensor, expected), name
    with pytest.raises(ValueError, match="--hidden_size"):
        copy_encoder(source, tiny(hidden_size=16), "source")
    with pytest.raises(ValueError, match="no encoder"):
        copy_encoder(tiny(latent_size=0), target, "lm")


def test_init_from_flags_are_checked(tmp_path):
    base = ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match="Give one"):
        parse_arguments([*base, "--init_from", "a", "--model_name_or_path", "b"])
    with pytest.raises(ValueError, match="latent_size 0"):
        parse_arguments([*base, "--init_from", "a", "--latent_dim", "0"])


def test_init_from_trains_from_an_auto_encoders_encoder(tiny_corpus, tmp_path):
    autoencoder = train_tiny(
        tiny_corpus, tmp_path / "ae", "--kl_schedule", "constant", "--kl_weight", "0", "--max_steps", "10"
    )
    vae = train_tiny(
        tiny_corpus, tmp_path / "vae", "--init_from", str(autoencoder), "--max_steps", "2", "--learning_rate", "0"
    )
    source, target = load_file(str(autoencoder / "model.safetensors")), load_file(str(vae / "model.safetensors"))
    assert torch.equal(source["encoder.weight_hh_l0"], target["encoder.weight_hh_l0"])
    assert not torch.equal(source["decoder.weight_hh_l0"], target["decoder.weight_hh_l0"])


# ------------------------------------------------------------------------------------------------ freeze_decoder
def test_freeze_decoder_trains_the_encoder_alone(tiny_model_dir, tiny_corpus, tmp_path):
    refit = train_tiny(
        tiny_corpus,
        tmp_path / "refit",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--freeze_decoder",
        "true",
        "--kl_schedule",
        "constant",
        "--max_steps",
        "6",
    )
    before, after = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(refit / "model.safetensors"))
    assert before.keys() == after.keys()
    encoder = {name for name in before if name.startswith(("encoder.", "posterior."))}
    assert encoder and all(not torch.equal(before[name], after[name]) for name in encoder)
    for name in before.keys() - encoder:  # the decoder, the output layer and the embeddings the encoder reads
        assert torch.equal(before[name], after[name]), name
    # A continued run saves the tokenizer it loaded, without the keys transformers adds on loading.
    saved = json.loads((refit / "tokenizer_config.json").read_text())
    assert not {"is_local", "local_files_only"} & set(saved) and saved["segmentation"] == "whitespace"


def test_freeze_decoder_needs_a_trained_model(tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="--freeze_decoder trains the encoder of a trained model"):
        train_tiny(tiny_corpus, tmp_path / "new", "--freeze_decoder", "true")


def test_a_tied_model_resumes_exactly_and_without_a_missing_key_warning(tiny_corpus, tmp_path):
    # Checkpoints of a tied model hold the embedding once; resuming must re-tie it (not train two copies), silently.
    from transformers.testing_utils import CaptureLogger
    from transformers.utils import logging as transformers_logging

    flags = (
        "--tie_word_embeddings",
        "true",
        "--num_units",
        "16",
        "--max_steps",
        "4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
    )
    straight = train_tiny(tiny_corpus, tmp_path / "straight", *flags)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    subprocess.run(["cp", "-r", str(straight / "checkpoint-2"), str(resumed)], check=True)
    with CaptureLogger(transformers_logging.get_logger("transformers.trainer")) as captured:
        train_tiny(tiny_corpus, resumed, *flags, "--resume_from_checkpoint", str(resumed / "checkpoint-2"))
    assert "missing keys" not in captured.out
    model = VAELMModel.from_pretrained(resumed)
    assert model.lm_head.weight is model.embed_tokens.weight
    expected, again = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert set(again) == set(expected) and "lm_head.weight" not in again
    assert all(torch.allclose(again[name], expected[name], atol=1e-6) for name in expected)
