"""The fast paths of training give what a straightforward padded computation gives.

`reconstruction_nll` and `encode` choose between a padded LSTM (length-grouped batches) and a packed one (batches
that are mostly padding); both must agree with each other and with a plain reference that runs `nn.LSTM` over the
padded batch and `F.cross_entropy(ignore_index=pad)` over every position: per-sentence NLL, posterior and gradients.
"""

import pytest
import torch
from torch.nn import functional as F

import vaelm.modeling_vaelm as modeling
from vaelm import VAELMConfig, VAELMModel

PAD, UNK, BOS, EOS = 0, 1, 2, 3


def make_model(**overrides) -> VAELMModel:
    torch.manual_seed(0)
    values = dict(vocab_size=50, embedding_size=12, hidden_size=10, latent_size=4, word_dropout=0.0)
    values.update(overrides)
    return VAELMModel(VAELMConfig(**values)).float()


def make_batch(lengths: list[int], vocab_size: int = 50, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded `<s> w1 … wn </s>` rows; `lengths` counts the words n."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths) + 2
    input_ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    for row, n in enumerate(lengths):
        words = torch.randint(4, vocab_size, (n,), generator=generator)
        input_ids[row, : n + 2] = torch.cat([torch.tensor([BOS]), words, torch.tensor([EOS])])
    return input_ids, (input_ids != PAD).long()


def reference_nll(model: VAELMModel, input_ids: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Straightforward: decoder over the padded batch, softmax at every position, padding ignored."""
    decoder_inputs = model._decoder_inputs(input_ids[:, :-1], z)
    outputs, _ = modeling.run_recurrent(model.decoder, decoder_inputs, model.initial_state(z))
    logits = model._project(outputs)
    targets = input_ids[:, 1:]
    token_nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none")
    return token_nll.sum(1)


def reference_posterior(model: VAELMModel, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Straightforward: step the encoder LSTM sentence by sentence over its real words only."""
    summaries = []
    for row in range(input_ids.size(0)):
        n = int(attention_mask[row].sum())
        outputs, _ = model.encoder(model.embed_tokens(input_ids[row : row + 1, :n]))
        summaries.append(outputs[:, -1])
    return model.posterior(torch.cat(summaries)).chunk(2, dim=-1)


@pytest.fixture(params=["padded", "packed"])
def path(request, monkeypatch):
    """Force one of the two LSTM paths whatever the padding."""
    fill = 0.0 if request.param == "padded" else 2.0
    monkeypatch.setattr(modeling, "_PADDED_MIN_FILL", fill)
    monkeypatch.setattr(modeling, "_PADDED_MIN_FILL_INFERENCE", fill)
    return request.param


LENGTHS = [7, 3, 9, 9, 1, 5]


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_nll_and_posterior_match_reference(path, cell_type):
    model = make_model(cell_type=cell_type).eval()
    input_ids, attention_mask = make_batch(LENGTHS)
    z = torch.randn(len(LENGTHS), model.config.latent_size)
    with torch.no_grad():
        nll, logits = model.reconstruction_nll(input_ids, attention_mask, z, return_logits=True)
        expected = reference_nll(model, input_ids, z)
        mu, logvar = model.encode(input_ids, attention_mask)
        mu_ref, logvar_ref = reference_posterior(model, input_ids, attention_mask)
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(mu, mu_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logvar, logvar_ref, rtol=1e-5, atol=1e-5)
    # Padded logits: zeros at padding, the decoder's scores at real positions.
    mask = attention_mask[:, 1:].bool()
    assert logits.shape == (len(LENGTHS), input_ids.size(1) - 1, model.config.vocab_size)
    assert torch.all(logits[~mask] == 0)
    scores = logits[mask].log_softmax(-1).gather(1, input_ids[:, 1:][mask].unsqueeze(1)).squeeze(1)
    per_sentence = torch.zeros(len(LENGTHS)).index_add(0, mask.nonzero()[:, 0], -scores)
    torch.testing.assert_close(per_sentence, nll, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_gradients_match_reference(path, cell_type):
    """The loss of `forward` (fixed z, no dropout) has the gradients of the straightforward computation."""
    model = make_model(latent_to_every_step=True, cell_type=cell_type).train()
    reference = make_model(latent_to_every_step=True, cell_type=cell_type).train()
    reference.load_state_dict(model.state_dict())
    input_ids, attention_mask = make_batch(LENGTHS, seed=3)
    z = torch.randn(len(LENGTHS), model.config.latent_size)

    out = model(input_ids, attention_mask, z=z.clone())
    out.loss.backward()

    mu, logvar = reference_posterior(reference, input_ids, attention_mask)
    rec = reference_nll(reference, input_ids, z.clone())
    loss = rec.mean() + modeling.gaussian_kl(mu, logvar).sum(-1).mean()
    loss.backward()

    torch.testing.assert_close(out.loss.detach(), loss.detach(), rtol=1e-5, atol=1e-4)
    for (name, param), ref_param in zip(model.named_parameters(), reference.parameters()):
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, ref_param.grad, rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_word_dropout_spares_bos_and_padding(path):
    model = make_model(word_dropout=0.9).train()
    input_ids, attention_mask = make_batch(LENGTHS)
    dropped = model.apply_word_dropout(input_ids[:, :-1], attention_mask[:, 1:])
    assert torch.all(dropped[:, 0] == BOS)
    assert torch.all(dropped[attention_mask[:, 1:] == 0] == input_ids[:, :-1][attention_mask[:, 1:] == 0])
    assert bool((dropped == UNK).any())


def test_bidirectional_and_multilayer_encoders(path):
    """Bidirectional encoders always pack; stacked ones may use the padded path: both match the reference."""
    for overrides in ({"num_layers": 2}, {"bidirectional_encoder": True}):
        model = make_model(**overrides).eval()
        input_ids, attention_mask = make_batch(LENGTHS)
        z = torch.randn(len(LENGTHS), model.config.latent_size)
        with torch.no_grad():
            nll, _ = model.reconstruction_nll(input_ids, attention_mask, z)
            torch.testing.assert_close(nll, reference_nll(model, input_ids, z), rtol=1e-5, atol=1e-4)
            if not overrides.get("bidirectional_encoder"):
                mu, _ = model.encode(input_ids, attention_mask)
                torch.testing.assert_close(
                    mu, reference_posterior(model, input_ids, attention_mask)[0], rtol=1e-5, atol=1e-5
                )


def test_collator_output_matches_plain_padding():
    from vaelm.corpora.data import VAELMCollator

    rows = [[BOS, 5, 6, EOS], [BOS, EOS], [BOS, 7, 8, 9, 10, EOS]]
    batch = VAELMCollator(pad_token_id=PAD)([{"input_ids": row} for row in rows])
    expected = torch.tensor([[2, 5, 6, 3, 0, 0], [2, 3, 0, 0, 0, 0], [2, 7, 8, 9, 10, 3]])
    assert torch.equal(batch["input_ids"], expected)
    assert torch.equal(batch["attention_mask"], (expected != PAD).long())
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_cross_entropy_matches_composition(with_bias):
    torch.manual_seed(0)
    states = torch.randn(37, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    bias = torch.randn(30, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 30, (37,))
    upstream = torch.rand(37)

    nll = modeling._LinearCrossEntropy.apply(states, weight, bias, targets)
    (nll * upstream).sum().backward()
    grads = [t.grad.clone() for t in (states, weight, bias) if t is not None]
    for t in (states, weight, bias):
        if t is not None:
            t.grad = None
    expected = F.cross_entropy(F.linear(states, weight, bias), targets, reduction="none")
    (expected * upstream).sum().backward()
    torch.testing.assert_close(nll, expected.detach(), rtol=1e-5, atol=1e-5)
    for got, t in zip(grads, [t for t in (states, weight, bias) if t is not None]):
        torch.testing.assert_close(got, t.grad, rtol=1e-5, atol=1e-5)


def test_linear_cross_entropy_under_bf16_autocast():
    """Under autocast the projection runs in bf16, like `F.linear` would; values stay close to fp32."""
    torch.manual_seed(0)
    states = torch.randn(40, 16, requires_grad=True)
    weight = (0.1 * torch.randn(50, 16)).requires_grad_()
    bias = torch.zeros(50, requires_grad=True)
    targets = torch.randint(0, 50, (40,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll = modeling._LinearCrossEntropy.apply(states, weight, bias, targets)
    nll.sum().backward()
    assert nll.dtype == torch.float32 and weight.grad.dtype == torch.float32 and states.grad.dtype == torch.float32
    reference = F.cross_entropy(F.linear(states, weight, bias), targets, reduction="none")
    torch.testing.assert_close(nll, reference.detach(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_cross_entropy_exact_when_the_target_probability_underflows(with_bias):
    """An NLL of hundreds of nats (softmax of the target is 0 in fp32) still comes out exact, not inf, beside
    ordinary rows, and the gradients stay those of the composition."""
    states = torch.tensor([[40.0, -40.0], [0.5, 0.25], [-14.0, 3.0]], requires_grad=True)
    weight = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 1.0]], requires_grad=True)
    bias = torch.tensor([0.5, -0.25, 1.0], requires_grad=True) if with_bias else None
    targets = torch.tensor([1, 2, 0])
    nll = modeling._LinearCrossEntropy.apply(states, weight, bias, targets)
    nll.sum().backward()
    leaves = [t for t in (states, weight, bias) if t is not None]
    grads = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    expected = F.cross_entropy(F.linear(states, weight, bias), targets, reduction="none")
    expected.sum().backward()
    assert expected[0] > 300 and expected[2] > 60 and expected[1] < 5
    torch.testing.assert_close(nll, expected.detach(), rtol=1e-6, atol=1e-4)
    for got, t in zip(grads, leaves):
        torch.testing.assert_close(got, t.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_cpu_bf16_autocast_trains_where_onednn_has_no_bf16_recurrence(cell_type, monkeypatch):
    # On CPUs without native bf16 (AVX2 only), oneDNN cannot build a bf16 LSTM/GRU ("could not create a primitive
    # descriptor"); the recurrent layers then run in fp32 outside autocast, and the first failure is remembered.
    config = VAELMConfig(vocab_size=40, embedding_size=8, hidden_size=8, latent_size=3, cell_type=cell_type)
    torch.manual_seed(0)
    model = VAELMModel(config).train()
    input_ids = torch.randint(4, 40, (3, 6))
    input_ids[:, 0], input_ids[:, -1] = config.bos_token_id, config.eos_token_id
    monkeypatch.setitem(modeling._CPU_BF16_RECURRENCE, "supported", False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(input_ids)
        outputs, state = modeling.run_recurrent(model.decoder, torch.randn(2, 4, 8, dtype=torch.bfloat16))
    output.loss.backward()
    assert torch.isfinite(output.loss) and model.decoder.weight_hh_l0.grad.abs().sum() > 0
    assert outputs.dtype == torch.float32 and len(state) == (2 if cell_type == "lstm" else 1)
