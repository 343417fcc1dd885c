"""Hub sharing end to end, through HTTP: the real `huggingface_hub` client, in subprocesses with
`HF_ENDPOINT=http://127.0.0.1:PORT`, talks to the loopback Hub of `tests/hub_server.py`. Nothing is monkeypatched.

One tiny run (`vaelm-train --push_to_hub`) feeds every test: its folder is pushed again with `vaelm-push`, loaded by
repo id in a process that cannot import vaelm, perturbed and pushed as a second revision, and pushed with errors.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_server import LoopbackHub
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_file

from vaelm import VAELMModel, load_tokenizer
from vaelm.hub.model_card import render_model_card, write_model_card
from vaelm.pretrained.loading import check_model_folder
from vaelm.pretrained.model_folder import CARD_FILE, TRAINING_RECORD_FILE

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_loopbackSecretToken0123456789"
SENTENCES = ["the company said it will buy shares", "investors sold stock in new york", "the market rose N percent"]
MODEL_FILES = {
    ".gitattributes",
    "README.md",
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "configuration_vaelm.py",
    "modeling_vaelm.py",
    "training_curves.png",
    TRAINING_RECORD_FILE,
}

# Loads by repo id with vaelm made unimportable: only transformers and the repository's own code are used.
LOAD_WITHOUT_VAELM = r"""
import json, sys
sys.modules["vaelm"] = None  # any `import vaelm` now fails
import torch
from transformers import AutoModel, AutoTokenizer

repo_id, revisions, sentences, out = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
results = {}
for revision in revisions:
    model = AutoModel.from_pretrained(repo_id, revision=revision, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(repo_id, revision=revision, trust_remote_code=True)
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    with torch.no_grad():
        output = model(**batch, sample_latent=False)
    results[revision] = {"input_ids": batch["input_ids"], "mu": output.mu, "logits": output.logits,
                         "class": type(model).__module__, "dtype": str(model.dtype)}
assert sys.modules["vaelm"] is None and not [name for name in sys.modules if name.startswith("vaelm.")]
torch.save(results, out)
"""


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run a command with the loopback Hub environment; fail the test with its output if it times out."""
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert TOKEN not in result.stdout + result.stderr, "the token was printed"


def local_outputs(folder: Path) -> dict[str, torch.Tensor]:
    """What vaelm itself computes from a local model folder, for comparison with loads by repo id."""
    model = VAELMModel.from_pretrained(folder).eval()
    tokenizer = load_tokenizer(folder)
    batch = tokenizer(SENTENCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        output = model(**batch, sample_latent=False)
    return {"input_ids": batch["input_ids"], "mu": output.mu, "logits": output.logits}


@pytest.fixture(scope="module")
def hub():
    with LoopbackHub(token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def hub_env(hub, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("hf_home")
    return {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home),
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "VAELM_DEBUG": "",
    }


@pytest.fixture(scope="module")
def api(hub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture(scope="module")
def trained(hub, hub_env, tiny_corpus, tmp_path_factory):
    """`vaelm-train --push_to_hub --hub_model_id org/trained` on a tiny run: (folder, train output)."""
    folder = tmp_path_factory.mktemp("trained") / "model"
    result = run(
        [
            "vaelm-train",
            "--data_dir",
            str(tiny_corpus),
            "--output_dir",
            str(folder),
            "--embedding_size",
            "16",
            "--num_units",
            "24",
            "--latent_dim",
            "4",
            "--batch_size",
            "32",
            "--max_steps",
            "12",
            "--annealing_pivot",
            "4",
            "--learning_rate",
            "0.01",
            "--logging_steps",
            "4",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
            "--seed",
            "0",
            "--push_to_hub",
            "--hub_model_id",
            "org/trained",
        ],
        hub_env,
        cwd=folder.parent,
    )
    assert_ok(result)
    return folder, result


@pytest.fixture(scope="module")
def pushed(trained, hub, hub_env, tmp_path_factory):
    """A copy of the trained folder pushed with `vaelm-push` to org/pushed: (folder, push output)."""
    folder = tmp_path_factory.mktemp("pushed") / "tiny-vae"
    shutil.copytree(trained[0], folder)
    result = run(
        ["vaelm-push", "--model", str(folder), "--repo_id", "org/pushed", "--dataset", "ptb-text-only/ptb_text_only"],
        hub_env,
        cwd=folder.parent,
    )
    assert_ok(result)
    return folder, result


def test_train_push_to_hub_writes_the_vaelm_card_in_one_commit(trained, hub, api):
    folder, _ = trained
    assert (folder / CARD_FILE).is_file()
    files = hub.files("org/trained")
    assert set(files) >= MODEL_FILES, sorted(files)
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "transformers" and card.data.tags == ["vae", "lstm", "text-generation"]
    assert "org/trained" in card.text  # the Trainer's own draft card would not show the loading examples
    commits = api.list_repo_commits("org/trained")
    assert [c.title for c in commits][1:] == ["initial commit"], "the Trainer's push must be one commit"


def test_vaelm_push_and_trainer_push_give_the_same_files(trained, pushed, hub):
    trainer_files = set(hub.files("org/trained"))
    push_files = set(hub.files("org/pushed"))
    assert trainer_files == push_files
    assert "trainer_state.json" in {p.name for p in trained[0].iterdir()} and "trainer_state.json" not in push_files
    # Weights, tokenizer and code are byte-identical; only the card (repo id in the examples) may differ.
    for name in ("model.safetensors", "tokenizer.json", "modeling_vaelm.py", "config.json"):
        assert hub.files("org/trained")[name] == hub.files("org/pushed")[name]
    assert len(hub.requests_matching("POST", "/api/models/org/pushed/commit/")) == 1
    assert "org/pushed" in pushed[1].stdout


def test_model_card_front_matter_and_content(pushed, hub, api):
    card = ModelCard(hub.files("org/pushed")["README.md"].decode())
    data = card.data.to_dict()
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "text-generation"
    assert data["tags"] == ["vae", "lstm", "text-generation"]
    assert data["language"] == ["en"]
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["ptb-text-only/ptb_text_only"]
    assert data["metrics"] == ["perplexity"]
    text = card.text
    assert 'AutoModel.from_pretrained("org/pushed", trust_remote_code=True)' in text
    assert 'AutoTokenizer.from_pretrained("org/pushed", trust_remote_code=True)' in text
    assert (
        "](training_curves.png)" in text and "| latent size | 4 |" in text and "| kl_schedule | sigmoid_pivot |" in text
    )
    assert "## Samples" in text
    # The Hub side parses the same front matter (model_info's cardData).
    info = api.model_info("org/pushed")
    assert info.card_data.library_name == "transformers" and info.pipeline_tag == "text-generation"


def test_load_by_repo_id_without_vaelm_and_two_revisions(pushed, hub, hub_env, api, tmp_path):
    folder, _ = pushed
    first_commit = api.model_info("org/pushed").sha
    # A second revision on a branch: the same model with perturbed weights.
    second = tmp_path / "tiny-vae-v2"
    shutil.copytree(folder, second)
    model = VAELMModel.from_pretrained(second)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.save_pretrained(second)
    assert_ok(
        run(
            [
                "vaelm-push",
                "--model",
                str(second),
                "--repo_id",
                "org/pushed",
                "--revision",
                "v2",
                "--commit_message",
                "perturbed",
            ],
            hub_env,
            cwd=tmp_path,
        )
    )
    assert hub.files("org/pushed", "v2")["model.safetensors"] != hub.files("org/pushed", "main")["model.safetensors"]

    out = tmp_path / "loaded.pt"
    revisions = ["main", "v2", first_commit]
    result = run(
        [
            sys.executable,
            "-c",
            LOAD_WITHOUT_VAELM,
            "org/pushed",
            json.dumps(revisions),
            json.dumps(SENTENCES),
            str(out),
        ],
        hub_env,
        cwd=tmp_path,
    )
    assert_ok(result)
    loaded = torch.load(out)
    assert all(item["class"].startswith("transformers_modules") for item in loaded.values())  # the Hub's code
    expected = {"main": local_outputs(folder), "v2": local_outputs(second), first_commit: local_outputs(folder)}
    for revision in revisions:
        for key in ("input_ids", "mu", "logits"):
            assert torch.equal(loaded[revision][key], expected[revision][key]), (revision, key)
    assert not torch.equal(loaded["main"]["mu"], loaded["v2"]["mu"])
    downloads = hub.requests_matching("GET", "/org/pushed/resolve/")
    assert downloads and all(r.status == 200 for r in downloads)


def test_push_refuses_bad_folders_before_any_request(pushed, hub, tmp_path, capsys):
    from vaelm.cli import run_command
    from vaelm.cli.push import main

    folder, _ = pushed
    requests_before = len(hub.requests)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(folder, no_weights)
    (no_weights / "model.safetensors").unlink()
    assert run_command("vaelm-push", main, ["--model", str(no_weights), "--repo_id", "org/x"]) == 1
    error = capsys.readouterr().err
    assert "vaelm-push: error:" in error and "no weights (model.safetensors)" in error

    leaky = tmp_path / "leaky"
    shutil.copytree(folder, leaky)
    (leaky / "notes.txt").write_text(f"token={TOKEN}\n")
    assert run_command("vaelm-push", main, ["--model", str(leaky), "--repo_id", "org/x", "--token", TOKEN]) == 1
    captured = capsys.readouterr()
    assert "notes.txt contains your Hub token" in captured.err and TOKEN not in captured.out + captured.err
    assert len(hub.requests) == requests_before and "org/x" not in hub.store.repositories


def test_push_network_errors_are_clear_and_never_show_the_token(pushed, hub, hub_env, tmp_path):
    folder, _ = pushed
    unreachable = {**hub_env, "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run(["vaelm-push", "--model", str(folder), "--repo_id", "org/x", "--keep_card"], unreachable, cwd=tmp_path)
    assert result.returncode == 1 and "Cannot reach the Hub at http://127.0.0.1:9" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stdout + result.stderr

    wrong_token = "hf_wrongWrongWrong0123456789"
    result = run(
        ["vaelm-push", "--model", str(folder), "--repo_id", "org/x", "--keep_card", "--token", wrong_token],
        hub_env,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "refused to let this token write to org/x" in result.stderr, result.stderr
    assert wrong_token not in result.stdout + result.stderr and TOKEN not in result.stdout + result.stderr
    assert "org/x" not in hub.store.repositories


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file below a folder and the SHA-256 of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_failed_push_leaves_the_folder_byte_identical(pushed, hub_env, tmp_path):
    folder = tmp_path / "untouched"
    shutil.copytree(pushed[0], folder)
    before = folder_digest(folder)
    assert "me/test" not in (folder / CARD_FILE).read_text()
    unreachable = {**hub_env, "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run(["vaelm-push", "--model", str(folder), "--repo_id", "me/test"], unreachable, cwd=tmp_path)
    assert result.returncode == 1 and "Cannot reach the Hub at http://127.0.0.1:9" in result.stderr, result.stderr
    assert folder_digest(folder) == before, "a push that could not reach the Hub rewrote the folder"

    with LoopbackHub(token=TOKEN) as other:  # its own server: the module's records only authorized writes
        no_token = {**hub_env, "HF_ENDPOINT": other.endpoint, "HF_HOME": str(tmp_path / "no_login")}
        del no_token["HF_TOKEN"]
        result = run(["vaelm-push", "--model", str(folder), "--repo_id", "me/test"], no_token, cwd=tmp_path)
        assert result.returncode == 1 and "No Hub token was found" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "me/test" not in other.store.repositories
    assert folder_digest(folder) == before, "a push without a token rewrote the folder"


def test_a_push_uploads_the_card_rendered_for_its_repository_and_writes_nothing(pushed, hub, hub_env, tmp_path):
    folder = tmp_path / "renamed-here"
    shutil.copytree(pushed[0], folder)
    before = folder_digest(folder)
    assert_ok(run(["vaelm-push", "--model", str(folder), "--repo_id", "org/renamed"], hub_env, cwd=tmp_path))
    assert folder_digest(folder) == before, "a successful push wrote into the folder"
    files = hub.files("org/renamed")
    assert set(files) == set(hub.files("org/pushed"))
    for name in ("model.safetensors", "tokenizer.json", "training_record.json", "training_curves.png"):
        assert files[name] == (folder / name).read_bytes(), name
    uploaded = files[CARD_FILE].decode()
    assert uploaded == str(render_model_card(folder, repo_id="org/renamed")), "the card rendered for the repository"
    assert "# renamed" in uploaded and 'AutoModel.from_pretrained("org/renamed", trust_remote_code=True)' in uploaded
    assert "org/renamed" not in (folder / CARD_FILE).read_text()


def test_push_with_storage_dtype_uploads_half_weights_that_compute_in_float32(pushed, hub, hub_env, tmp_path):
    """`--storage_dtype float16` halves the upload; remote-code loads follow config.json's float32; the folder is untouched."""
    folder = tmp_path / "half-upload"
    shutil.copytree(pushed[0], folder)
    before = folder_digest(folder)
    command = ["vaelm-push", "--model", str(folder), "--repo_id", "org/half", "--storage_dtype", "float16"]
    assert_ok(run(command, hub_env, cwd=tmp_path))
    assert folder_digest(folder) == before, "the folder's own weights were cast"
    files = hub.files("org/half")
    assert set(files) == set(hub.files("org/pushed"))
    uploaded = safetensors_load(files["model.safetensors"])
    original = load_file(folder / "model.safetensors")
    assert uploaded.keys() == original.keys() and {tensor.dtype for tensor in uploaded.values()} == {torch.float16}
    assert len(files["model.safetensors"]) < 0.6 * (folder / "model.safetensors").stat().st_size
    for name, tensor in original.items():
        torch.testing.assert_close(uploaded[name], tensor.half(), rtol=0, atol=0)
    assert json.loads(files["config.json"])["dtype"] == "float32", "loaders must compute in float32"
    assert "| weights stored in | float16 (loaded and computed in float32) |" in files[CARD_FILE].decode()
    assert "| weights stored in | float32 |" in hub.files("org/pushed")[CARD_FILE].decode()

    out = tmp_path / "loaded.pt"
    argv = [sys.executable, "-c", LOAD_WITHOUT_VAELM, "org/half", '["main"]', json.dumps(SENTENCES), str(out)]
    assert_ok(run(argv, hub_env, cwd=tmp_path))
    loaded, expected = torch.load(out)["main"], local_outputs(folder)
    assert loaded["dtype"] == "torch.float32"
    assert torch.equal(loaded["input_ids"], expected["input_ids"])
    torch.testing.assert_close(loaded["mu"], expected["mu"], rtol=0, atol=0.02)
    assert not torch.equal(loaded["mu"], expected["mu"]), "the weights were rounded to float16"

    rejected = run(
        ["vaelm-push", "--model", str(folder), "--repo_id", "org/x", "--storage_dtype", "int8"], hub_env, tmp_path
    )
    assert rejected.returncode == 2 and "invalid choice: 'int8'" in rejected.stderr, rejected.stderr


def test_no_token_reaches_the_hub_storage(pushed, trained, hub):
    for repo_id in ("org/trained", "org/pushed"):
        for name, content in hub.files(repo_id).items():
            assert TOKEN.encode() not in content, f"{repo_id}/{name} holds the token"
    assert all(r.authorized for r in hub.requests if r.method == "POST")


def test_card_is_written_when_samples_fail(pushed, tmp_path, monkeypatch):
    from vaelm.generation.sentence_vae import SentenceVAE

    def exploding_sampler(self, num, decoding=None):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(SentenceVAE, "sample_prior", exploding_sampler)
    folder = tmp_path / "with-evaluation"
    shutil.copytree(pushed[0], folder)
    evaluation = {
        "nll": 12.5,
        "ppl": 30.1,
        "elbo": 13.0,
        "kl": 0.4,
        "split": "test",
        "command": "vaelm-evaluate --model m",
    }
    (folder / "eval_results.json").write_text(json.dumps(evaluation))
    card = ModelCard.load(
        write_model_card(folder, repo_id="org/evaluated", extra_datasets=["ptb-text-only/ptb_text_only"])
    )
    assert "Samples could not be generated when this card was written (RuntimeError: decoder exploded)" in card.text
    # The recorded command is shown with the model's real id in place of the local path it was run on.
    assert "| nll | 12.5 |" in card.text and "vaelm-evaluate --model org/evaluated" in card.text
    assert card.data.eval_results[0].metric_type == "nll" and card.data.eval_results[0].metric_value == 12.5
    assert check_model_folder(folder) == folder


def test_push_help(hub_env):
    result = run([sys.executable, str(REPO / "scripts" / "push_to_hub.py"), "--help"], hub_env, cwd=REPO)
    assert result.returncode == 0
    for flag in ("--model", "--repo_id", "--private", "--revision", "--commit_message", "--token"):
        assert flag in result.stdout
