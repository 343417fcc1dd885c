"""Model cards fit to publish: a real name, no placeholders, no links or paths that lead nowhere, only the settings
that applied, reproduction commands a reader can run, samples without `<unk>`."""

import json
import re
from pathlib import Path

from conftest import REPO, train_tiny

import vaelm
from vaelm.hub.model_card import started_from_sentence, write_model_card
from vaelm.hub.reproduce import applied_settings, public_command, training_command

PLACEHOLDERS = ("me/", "runs/", "../shared", "your-name", "/tmp/", "local folder")


def local_references(card: str) -> list[str]:
    """Relative paths a card points at: Markdown link/image targets and quoted folder-like model ids."""
    targets = re.findall(r"\]\(([^)]+)\)", card)
    return [t for t in targets if not t.startswith(("http://", "https://", "#"))]


def check_card(card: str, folder: Path, name: str) -> None:
    front, body = card.split("\n---\n", 1)
    assert re.search(rf"^(model_name: |- name: ){re.escape(name)}$", front, re.MULTILINE) and f"# {name}" in body
    assert not re.search(r"^# test$|name: test$", card, re.MULTILINE)
    for placeholder in PLACEHOLDERS:
        assert placeholder not in card, placeholder
    assert "github.com" not in card, "no link to a repository that may not exist"
    for target in local_references(card):
        assert (folder / target).exists(), f"dead local link {target}"
    assert 'pipeline("text-generation"' in card and 'pipeline("sentence-vae"' in card
    samples = body.split("## Samples", 1)[1].split("##", 1)[0]
    listed = [line for line in samples.splitlines() if line.startswith("- ")]
    assert len(listed) == 5 and not any("<unk>" in line for line in listed)


def test_fresh_card_of_a_trained_folder(tiny_model_dir):
    card = (tiny_model_dir / "README.md").read_text()
    name = "vaelm-custom-data-16-24-4"  # trained on a private folder: no Hub id, a descriptive name
    check_card(card, tiny_model_dir, name)
    assert f'from_pretrained("{name}")' in card
    assert "kl_cycles" not in card and "num_train_epochs" not in card, "settings that did not apply"
    assert "Reproduce the training" not in card, "private data: no command a reader could run"


def test_card_with_a_hub_id_and_ptb_data(tiny_model_dir, tmp_path):
    record = {
        "datasets": ["ptb-text-only/ptb_text_only"],
        "training_arguments": {
            "kl_schedule": "linear",
            "annealing_pivot": 10,
            "kl_cycles": 4,
            "annealing_steepness": 100.0,
            "max_steps": 30,
            "num_train_epochs": 3.0,
            "learning_rate": 0.01,
            "per_device_train_batch_size": 16,
            "seed": 0,
            "bf16": False,
            "free_bits": 0.0,
        },
    }
    assert applied_settings(record["training_arguments"]) == {
        "kl_schedule": "linear",
        "annealing_pivot": 10,
        "max_steps": 30,
        "learning_rate": 0.01,
        "per_device_train_batch_size": 16,
        "seed": 0,
    }
    command = training_command(
        {"embedding_size": 16, "hidden_size": 24, "latent_size": 4, "word_dropout": 0.25}, record
    )
    assert command == (
        "vaelm-train --dataset ptb --embedding_size 16 --hidden_size 24 --latent_size 4 --word_dropout 0.25 "
        "--annealing_pivot 10 --kl_schedule linear --learning_rate 0.01 --max_steps 30 "
        "--batch_size 16 --seed 0"
    )
    assert (
        public_command(
            "vaelm-evaluate --model runs/x --data_dir ../shared/data/ptb --split test --output a.json "
            "--progress_file runs/x.progress",
            "org/vae",
            record["datasets"],
        )
        == "vaelm-evaluate --model org/vae --dataset ptb --split test"
    )
    path = write_model_card(tiny_model_dir, repo_id="vaelm-user/tiny-vae")
    card = path.read_text()
    check_card(card, tiny_model_dir, "tiny-vae")
    assert 'pipeline("text-generation", model="vaelm-user/tiny-vae"' in card


def test_bundled_card_is_fit_to_publish():
    folder = Path(vaelm.DEFAULT_MODEL)
    card = (folder / "README.md").read_text()
    check_card(card, folder, "vaelm-ptb-350-960-32")
    assert "vaelm-train --dataset ptb --embedding_size 350 --hidden_size 960 --latent_size 32" in card
    assert "vaelm-evaluate --model vaelm/pretrained/ptb --dataset ptb --split test --iw_samples 500" in card
    assert (REPO / "vaelm/pretrained/ptb").is_dir()  # the usage snippets' path, from the repository root
    assert "kl_cycles" not in card and "num_train_epochs" not in card and "annealing_steepness" not in card


def test_a_continued_run_records_and_reproduces_every_stage(tiny_model_dir, tiny_corpus, tmp_path):
    continued = train_tiny(
        tiny_corpus,
        tmp_path / "continued",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--max_steps",
        "6",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "3",
        "--save_strategy",
        "steps",
        "--save_steps",
        "3",
        "--load_best_model_at_end",
        "true",
    )
    record = json.loads((continued / "training_record.json").read_text())
    first = json.loads((tiny_model_dir / "training_record.json").read_text())
    assert record["started_from"]["flag"] == "model_name_or_path"
    assert record["started_from"]["training_record"]["global_step"] == first["global_step"] == 30
    assert record["started_from"]["config"]["hidden_size"] == 24
    assert record["best_step"] in (3, 6) and record["global_step"] == 6
    card = (continued / "README.md").read_text()
    assert (
        f"This run continued a private model folder, {tiny_model_dir.name} (`--model_name_or_path`), which had been trained for 30 steps"
        in card
    )
    assert f"| weights of step | {record['best_step']} (best validation loss) |" in card
    assert str(tmp_path) not in card and str(tiny_model_dir) not in card, "no local paths in a card"
    kept_an_earlier_checkpoint = {**record["started_from"], "training_record": {**first, "best_step": 20}}
    assert "trained for 30 steps (its weights: step 20, its best validation loss)" in started_from_sentence(
        kept_an_earlier_checkpoint
    )
    # On public data, the command gives both stages, the second trained from the first.
    first_stage = {**first, "datasets": ["ptb-text-only/ptb_text_only"]}
    second_stage = {
        **record,
        "datasets": ["ptb-text-only/ptb_text_only"],
        "started_from": {**record["started_from"], "training_record": first_stage},
    }
    config = {
        "embedding_size": 16,
        "hidden_size": 24,
        "latent_size": 4,
        "word_dropout": 0.25,
        "cell_type": "gru",
        "weight_drop": 0.5,
        "locked_dropout": True,
    }
    lines = training_command(config, second_stage).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("vaelm-train --dataset ptb --embedding_size 16 --hidden_size 24 --latent_size 4")
    assert lines[0].endswith("--max_steps 30 --batch_size 16 --seed 0 --output_dir stage-1")
    # Every option of the model, in vaelm-train's order (vaelm.hub.reproduce.MODEL_FLAGS).
    assert "--cell_type gru --word_dropout 0.25 --locked_dropout true --weight_drop 0.5" in lines[1]
    assert lines[1].endswith(
        "--max_steps 6 --batch_size 16 --eval_strategy steps --eval_steps 3 --save_strategy steps --save_steps 3 "
        "--load_best_model_at_end true --metric_for_best_model loss --greater_is_better false --seed 0 "
        "--model_name_or_path stage-1 --output_dir stage-2"
    ), "how the best checkpoint was chosen"
    assert "--eval_steps" not in lines[0], "the first stage kept its last weights: no selection flags"
    # A scheduler's keyword arguments and an encoder refit are part of the command: without them it trains another model.
    refit = {
        **second_stage,
        "training_arguments": {
            **second_stage["training_arguments"],
            "lr_scheduler_type": "cosine_with_restarts",
            "lr_scheduler_kwargs": {"num_cycles": 4},
            "freeze_decoder": True,
        },
    }
    last = training_command(config, refit).splitlines()[1]
    assert "--freeze_decoder true" in last and """--lr_scheduler_kwargs '{"num_cycles": 4}'""" in last
    assert "lr_scheduler_kwargs" not in lines[1] and "freeze_decoder" not in lines[1], "left out when unused"
    # A start whose training is not recorded: one command, from the model a reader has to supply.
    unknown = {**second_stage, "started_from": {"flag": "init_from", "model": "org/ae", "hub_model": "org/ae"}}
    assert training_command(config, unknown).endswith("--seed 0 --init_from org/ae")
