"""VAELMModel: shapes, gradients, padding invariance, word dropout, the KL formula, save and remote-code reload."""

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from vaelm import VAELMConfig, VAELMModel, gaussian_kl


def tiny_model(**overrides) -> VAELMModel:
    config = dict(vocab_size=50, embedding_size=12, hidden_size=16, latent_size=5, word_dropout=0.0)
    config.update(overrides)
    torch.manual_seed(0)
    return VAELMModel(VAELMConfig(**config))


def batch(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    longest = max(map(len, rows))
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    mask = torch.zeros(len(rows), longest, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


SENTENCES = [[2, 5, 6, 7, 8, 9, 3], [2, 10, 11, 3], [2, 12, 3]]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"bidirectional_encoder": True, "num_layers": 2},
        {"latent_to_every_step": True},
        {"tie_word_embeddings": True},
        {"cell_type": "gru"},
        {"cell_type": "gru", "bidirectional_encoder": True, "num_layers": 2},
    ],
)
def test_forward_backward_shapes(options):
    model = tiny_model(**options)
    inputs = batch(SENTENCES)
    output = model(**inputs, return_logits=True)
    assert output.logits.shape == (3, 6, 50)
    assert output.mu.shape == output.logvar.shape == output.z.shape == (3, 5)
    assert output.rec_per_sentence.shape == (3,)
    assert torch.allclose(output.loss, output.rec_loss + output.kl)
    output.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_tied_embeddings_share_storage():
    model = tiny_model(tie_word_embeddings=True)
    assert model.lm_head.weight.data_ptr() == model.embed_tokens.weight.data_ptr()


def test_rec_loss_matches_padded_cross_entropy():
    """The packed, real-positions-only loss equals the plain padded computation with ignore_index."""
    model = tiny_model().eval()
    inputs = batch(SENTENCES)
    mu, _ = model.encode(**inputs)
    nll, logits = model.reconstruction_nll(inputs["input_ids"], inputs["attention_mask"], mu, return_logits=True)
    targets = inputs["input_ids"][:, 1:].masked_fill(inputs["attention_mask"][:, 1:] == 0, -100)
    expected = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none").sum(1)
    assert torch.allclose(nll, expected, atol=1e-5)
    # n + 1 tokens per sentence are scored: an all-uniform model would score (n + 1) * log V.
    assert (inputs["attention_mask"][:, 1:].sum(1) == torch.tensor([6, 3, 2])).all()


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_padding_invariance(cell_type):
    model = tiny_model(cell_type=cell_type).eval()
    alone = []
    for row in SENTENCES:
        inputs = batch([row])
        mu, _ = model.encode(**inputs)
        alone.append(model.reconstruction_nll(inputs["input_ids"], inputs["attention_mask"], mu)[0])
    inputs = batch(SENTENCES)
    mu, _logvar = model.encode(**inputs)
    together = model.reconstruction_nll(inputs["input_ids"], inputs["attention_mask"], mu)[0]
    assert torch.allclose(torch.cat(alone), together, atol=1e-5)
    # The posterior itself ignores padding too.
    mu_alone = torch.cat([model.encode(**batch([row]))[0] for row in SENTENCES])
    assert torch.allclose(mu_alone, mu, atol=1e-6)


def test_word_dropout_spares_bos_and_padding_and_is_off_in_eval():
    model = tiny_model(word_dropout=0.9)
    inputs = batch(SENTENCES)
    decoder_inputs, decoder_mask = inputs["input_ids"][:, :-1], inputs["attention_mask"][:, 1:]
    torch.manual_seed(1)
    dropped = model.train().apply_word_dropout(decoder_inputs, decoder_mask)
    unk = model.config.unk_token_id
    assert (dropped[:, 0] == 2).all(), "BOS must never be dropped"
    assert (dropped[decoder_mask == 0] == decoder_inputs[decoder_mask == 0]).all(), "padding must never change"
    assert (dropped == unk).sum() > 0, "with p=0.9 some words must be replaced"
    # In eval mode, two passes with the same z give identical reconstruction losses (no dropout, no noise).
    model.eval()
    z = torch.zeros(3, 5)
    first = model.reconstruction_nll(inputs["input_ids"], inputs["attention_mask"], z)[0]
    second = model.reconstruction_nll(inputs["input_ids"], inputs["attention_mask"], z)[0]
    assert torch.equal(first, second)
    model.train()
    torch.manual_seed(2)
    noisy = model.reconstruction_nll(inputs["input_ids"], inputs["attention_mask"], z)[0]
    assert not torch.allclose(noisy, first)


def test_kl_matches_closed_form_and_monte_carlo():
    mu = torch.tensor([[0.5, -1.0, 0.0]])
    logvar = torch.tensor([[0.2, -0.5, 0.0]])
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    assert torch.allclose(gaussian_kl(mu, logvar), torch.distributions.kl_divergence(posterior, prior), atol=1e-6)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match=r"hidden_size"):
        VAELMConfig(hidden_size=-3)
    with pytest.raises(ValueError, match=r"keep_prob"):
        VAELMConfig(word_dropout=1.0)
    with pytest.raises(ValueError, match=r"cell_type must be 'lstm' or 'gru', got 'rnn'"):
        VAELMConfig(cell_type="rnn")


def test_config_is_a_dataclass_config_that_keeps_unknown_keys(tmp_path):
    """Fields as in transformers 5's GPT2Config; keys it does not know survive a save and a load; keywords only."""
    assert {"embedding_size", "latent_size", "word_type_dropout", "unk_token_id"} <= {
        field.name for field in dataclasses.fields(VAELMConfig)
    }
    config = VAELMConfig(hidden_size=24, latent_size=0, experiment_note="kept")
    config.save_pretrained(tmp_path)
    loaded = VAELMConfig.from_pretrained(tmp_path)
    assert (loaded.hidden_size, loaded.latent_size, loaded.experiment_note) == (24, 0, "kept")
    assert loaded.to_dict() == config.to_dict()
    with pytest.raises(ValueError, match=r"only keyword arguments"):
        VAELMConfig(10000)
    config.word_dropout = 1.5  # changed after creation: caught before it is written
    with pytest.raises(ValueError, match=r"VAELMConfig.word_dropout must lie in"):
        config.save_pretrained(tmp_path / "bad")
    assert not (tmp_path / "bad" / "config.json").exists()


def test_cells_share_parameter_names_and_size_the_initial_state():
    """LSTM keys (and so old model folders) stay as they were; a GRU has the same names, 3 gates and a state h."""
    lstm, gru = tiny_model(num_layers=2), tiny_model(num_layers=2, cell_type="gru")
    assert lstm.state_dict().keys() == gru.state_dict().keys()
    assert isinstance(lstm.decoder, torch.nn.LSTM) and isinstance(gru.encoder, torch.nn.GRU)
    assert lstm.decoder.weight_hh_l1.shape == (4 * 16, 16) and gru.decoder.weight_hh_l1.shape == (3 * 16, 16)
    assert lstm.latent_to_state.out_features == 2 * 2 * 16 and gru.latent_to_state.out_features == 2 * 16
    z = torch.randn(3, 5)
    assert [tuple(part.shape) for part in lstm.initial_state(z)] == [(2, 3, 16)] * 2
    assert [tuple(part.shape) for part in gru.initial_state(z)] == [(2, 3, 16)]


REMOTE_LOAD = r"""
import json, sys, torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
path = sys.argv[1]
model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
assert "vaelm" not in sys.modules, "the package must not be imported"
assert type(AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)).__name__ == "VAELMModel"
inputs = tokenizer(["the company said it will buy shares", "a bank"], return_tensors="pt", padding=True)
with torch.no_grad():
    out = model(**inputs, sample_latent=False)
print(json.dumps({"ids": inputs["input_ids"].tolist(), "loss": out.loss.item(), "rec": out.rec_loss.item(),
                  "kl": out.kl.item(), "module": type(model).__module__, "decoder": type(model.decoder).__name__}))
"""


def test_save_and_reload_without_the_package(trained_model_dir, tmp_path):
    tiny_model_dir = trained_model_dir
    files = {p.name for p in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "configuration_vaelm.py",
        "modeling_vaelm.py",
        "training_curves.png",
    } <= files
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "vaelm"
    assert config["auto_map"]["AutoModel"] == "modeling_vaelm.VAELMModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_vaelm.VAELMConfig"
    script = tmp_path / "load.py"
    script.write_text(REMOTE_LOAD)
    # -I: isolated mode, so the repository (and the vaelm package) is not on sys.path.
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["module"].startswith("transformers_modules")
    assert remote["decoder"] == config.get("cell_type", "lstm").upper()

    from vaelm import VAELMModel
    from vaelm.tokenization_vaelm import load_tokenizer

    model = VAELMModel.from_pretrained(tiny_model_dir).eval()
    tokenizer = load_tokenizer(tiny_model_dir)
    inputs = tokenizer(["the company said it will buy shares", "a bank"], return_tensors="pt", padding=True)
    assert inputs["input_ids"].tolist() == remote["ids"]
    with torch.no_grad():
        local = model(**inputs, sample_latent=False)
    assert abs(local.loss.item() - remote["loss"]) < 1e-4
    assert abs(local.rec_loss.item() - remote["rec"]) < 1e-4
    assert abs(local.kl.item() - remote["kl"]) < 1e-4
