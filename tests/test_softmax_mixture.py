"""A mixture of softmaxes in the output head (`num_softmax_experts`, Yang et al. 2018): a distribution over words
that training, evaluation's fast scorer, `generate()` and a saved folder all agree on."""

import pytest
import torch

from vaelm import VAELMConfig, VAELMModel
from vaelm.evaluation.metrics import evaluate_sequences

SENTENCES = [[2, 5, 6, 7, 3], [2, 8, 9, 3], [2, 10, 11, 12, 13, 3], [2, 5, 3], [2, 14, 15, 16, 17, 18, 19, 3]]


def mixture_model(experts: int = 3, **overrides) -> VAELMModel:
    torch.manual_seed(0)
    values = dict(vocab_size=30, embedding_size=8, hidden_size=12, latent_size=3, num_softmax_experts=experts)
    return VAELMModel(VAELMConfig(**{**values, **overrides}))


@pytest.mark.parametrize("tied", [False, True])
def test_the_mixture_is_a_distribution_weighted_by_the_expert_prior(tied):
    model = mixture_model(tie_word_embeddings=tied).eval()
    head_inputs = torch.randn(7, model.lm_head.in_features)
    scores = model.output_scores(head_inputs)
    assert torch.allclose(scores.exp().sum(-1), torch.ones(7), atol=1e-5)
    prior = torch.softmax(model.expert_prior(head_inputs), -1)
    experts = torch.tanh(model.expert_projection(head_inputs)).view(7, 3, -1)
    expected = (prior.unsqueeze(-1) * torch.softmax(model.lm_head(experts), -1)).sum(1).log()
    assert torch.allclose(scores, expected, atol=1e-5)


def test_one_expert_is_the_single_softmax():
    model = mixture_model(experts=1)
    assert model.expert_prior is None and model.expert_projection is None
    with pytest.raises(ValueError, match="num_softmax_experts must be a positive integer"):
        VAELMConfig(num_softmax_experts=0)


def test_training_scores_and_gradients_use_the_mixture():
    model = mixture_model(word_dropout=0.0).train()  # no dropout of any kind: two training forwards agree
    ids = torch.tensor([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3]])
    z = torch.randn(2, 3)
    _, logits = model.reconstruction_nll(ids, None, z, return_logits=True)
    targets = ids[:, 1:]
    manual = -(torch.log_softmax(logits, -1).gather(2, targets.unsqueeze(-1)).squeeze(-1) * (targets != 0)).sum(1)
    again, _ = model.reconstruction_nll(ids, None, z)  # the training path, without logits
    assert torch.allclose(again, manual, atol=1e-4)
    again.sum().backward()
    assert model.expert_prior.weight.grad.abs().sum() > 0 and model.expert_projection.weight.grad.abs().sum() > 0


def test_the_fast_evaluation_path_scores_the_mixture_as_the_model_does():
    model = mixture_model(latent_to_every_step=True).eval()
    fast = evaluate_sequences(model, SENTENCES, iw_samples=4, batch_size=2, seed=0)
    slow = evaluate_sequences(model, SENTENCES, iw_samples=4, batch_size=2, seed=0, fast_path=False)
    assert fast.fast_path and not slow.fast_path
    assert torch.allclose(fast.iw_nll, slow.iw_nll, atol=1e-4)


def test_generate_and_a_saved_folder_keep_the_mixture(tmp_path):
    model = mixture_model().eval()
    model.save_pretrained(tmp_path)
    loaded = VAELMModel.from_pretrained(tmp_path).eval()
    assert loaded.config.num_softmax_experts == 3
    ids = torch.tensor([SENTENCES[0]])
    with torch.no_grad():
        assert torch.allclose(model(ids, sample_latent=False).rec_loss, loaded(ids, sample_latent=False).rec_loss)
        z = torch.zeros(2, 3)
        prompt = torch.full((2, 1), model.config.bos_token_id)
        out = loaded.generate(prompt, z=z, do_sample=False, max_new_tokens=6, pad_token_id=0, eos_token_id=3)
    assert out.shape[0] == 2 and out.shape[1] > 1
