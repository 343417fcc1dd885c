"""The estimators of the evaluation protocol (see [`vaelm.evaluation.metrics`]): Gaussian log-densities, each
sentence's own latent noise, and the two summaries of the latent space over all evaluated sentences.

- **MI**: E_x E_q(z|x)[log q(z|x) - log q(z)], with the aggregate posterior q(z) = mean_j q(z|x_j) estimated over
  all evaluated sentences and one z per sentence.
- **AU**: latent dimensions whose variance (over sentences) of the posterior mean exceeds 0.01.

Each sentence's latent noise comes from its own generator, seeded by the run's seed and the sentence's index, so a
sentence's figures do not depend on batching, chunking or `max_sentences`.
"""

import math
from collections.abc import Sequence

import torch

LOG_2PI = math.log(2.0 * math.pi)
ACTIVE_UNIT_THRESHOLD = 0.01


# ------------------------------------------------------------------------------------------------ densities
def diagonal_gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """
    log N(z; mu, diag(exp(logvar))), summed over the last dimension.

    Args:
        z (`torch.Tensor` of shape `(..., latent_size)`): points.
        mu (`torch.Tensor`, broadcastable to `z`): means.
        logvar (`torch.Tensor`, broadcastable to `z`): log-variances.

    Returns:
        `torch.Tensor` of shape `z.shape[:-1]` (broadcast).
    """
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """
    log N(z; 0, I), summed over the last dimension.

    Args:
        z (`torch.Tensor` of shape `(..., latent_size)`): points.

    Returns:
        `torch.Tensor` of shape `z.shape[:-1]`.
    """
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def sentence_noise(sentence_indices: Sequence[int], iw_samples: int, latent_size: int, seed: int) -> torch.Tensor:
    """
    Standard normal noise for the latent samples of each sentence, from a generator of its own.

    The noise of sentence i depends only on (seed, i), so results do not change with batching, chunking, sorting
    or how many sentences are evaluated.

    Args:
        sentence_indices (`Sequence[int]`): position of each sentence in the evaluated split.
        iw_samples (`int`): samples per sentence (K).
        latent_size (`int`): dimension of z.
        seed (`int`): the run's seed.

    Returns:
        `torch.Tensor` of shape `(len(sentence_indices), iw_samples, latent_size)` (float32, CPU).
    """
    noise = torch.empty(len(sentence_indices), iw_samples, latent_size)
    generator = torch.Generator()
    for row, index in enumerate(sentence_indices):
        generator.manual_seed(sentence_seed(seed, int(index)))
        noise[row] = torch.randn(iw_samples, latent_size, generator=generator)
    return noise


def sentence_seed(seed: int, index: int) -> int:
    """
    A 32-bit generator seed for sentence `index` of a run seeded with `seed` (the CPU generator keeps only the low
    32 bits of its seed, so the pair is mixed with SplitMix64's finaliser rather than packed).

    Args:
        seed (`int`): the run's seed.
        index (`int`): the sentence's position.
    """
    mask = (1 << 64) - 1
    value = (seed * 0x9E3779B97F4A7C15 + index * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & mask
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
    return (value ^ (value >> 31)) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------------------ MI and AU
def mutual_information(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, block_size: int = 256) -> float:
    """
    I_q(x; z) = E_x E_q(z|x)[log q(z|x) - log q(z)], with q(z) the aggregate posterior of the given sentences.

    As He et al. (2019, `calc_mi`), with one z per sentence and log q(z_i) = logsumexp_j log q(z_i|x_j) - log N,
    but over the whole evaluated set instead of one batch. E_q[log q(z|x)] is estimated with the same z_i
    (log q(z_i|x_i)) rather than in closed form: the same quantity, paired with log q(z_i) so that a posterior
    that ignores x gives exactly 0. The estimate is at most log N, and may come out slightly below 0 when q(z|x)
    barely depends on x (estimation noise).

    Args:
        z (`torch.Tensor` of shape `(N, latent_size)`): one sample of q(z|x_i) per sentence.
        mu (`torch.Tensor` of shape `(N, latent_size)`): posterior means.
        logvar (`torch.Tensor` of shape `(N, latent_size)`): posterior log-variances.
        block_size (`int`, *optional*, defaults to 256): sentences whose q(z_i) is computed at once (memory
            `block_size × N × latent_size`).

    Returns:
        `float`: MI in nats (0.0 for fewer than 2 sentences).
    """
    count = z.size(0)
    if count < 2:
        return 0.0
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    log_q_z_given_x = diagonal_gaussian_log_density(z, mu, logvar)
    log_aggregate = torch.empty(count, dtype=torch.float64, device=z.device)
    for start in range(0, count, block_size):
        block = z[start : start + block_size].unsqueeze(1)  # (b, 1, D) against every posterior (1, N, D)
        log_aggregate[start : start + block_size] = torch.logsumexp(
            diagonal_gaussian_log_density(block, mu.unsqueeze(0), logvar.unsqueeze(0)), dim=1
        ) - math.log(count)
    return float((log_q_z_given_x - log_aggregate).mean())


def posterior_mean_variances(mu: torch.Tensor) -> torch.Tensor:
    """
    Cov_x(E_q[z]) per dimension: the unbiased variance over sentences of the posterior means (He et al. 2019).

    Args:
        mu (`torch.Tensor` of shape `(N, latent_size)`): posterior means.

    Returns:
        `torch.Tensor` of shape `(latent_size,)`; zeros when N < 2.
    """
    if mu.size(0) < 2 or mu.size(1) == 0:
        return torch.zeros(mu.size(1), dtype=torch.float64)
    return mu.double().var(dim=0, unbiased=True).cpu()


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """
    Number of latent dimensions whose posterior-mean variance over sentences exceeds `threshold`.

    Args:
        mu (`torch.Tensor` of shape `(N, latent_size)`): posterior means.
        threshold (`float`, *optional*, defaults to 0.01): the activity threshold.

    Returns:
        `int`: active units.
    """
    return int((posterior_mean_variances(mu) > threshold).sum())


__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "active_units",
    "diagonal_gaussian_log_density",
    "mutual_information",
    "posterior_mean_variances",
    "sentence_noise",
    "sentence_seed",
    "standard_normal_log_density",
]
