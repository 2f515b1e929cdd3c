"""Data, output parameterisation and likelihood shared by train/evaluate.

Model output per set: [K=4, 5] = (pi_logit, mu_x, mu_y, raw_sigma_x, raw_sigma_y)
    log pi_k  = log_softmax(pi_logit)_k           (softmax over the 4 components)
    mu_k      = (mu_x, mu_y)
    sigma_k,d = max(softplus(raw_sigma_d), 1e-3)  (diagonal standard deviations)

Per-point log-likelihood:
    log p(x) = logsumexp_k [ log pi_k + sum_{d in {x,y}} log N(x_d; mu_k,d, sigma_k,d) ]
"""

import math

import torch
import torch.nn.functional as F

K = 4
DIM = 2
STD = 0.3
MEAN_LO, MEAN_HI = -4.0, 4.0
N_MIN, N_MAX = 100, 500
SIGMA_MIN = 1e-3

LIKELIHOOD_DESCRIPTION = (
    "Per-point log-likelihood in nats: log p(x) = logsumexp over k=1..4 of "
    "[ log_softmax(pi_logits)_k + sum over d in {0,1} of "
    "Normal(mu_{k,d}, sigma_{k,d}).log_prob(x_d) ], where "
    "Normal(m, s).log_prob(v) = -(v-m)^2/(2 s^2) - log(s) - 0.5*log(2*pi). "
    "Model: the output [4,5] per set is (pi_logit, mu_x, mu_y, raw_sigma_x, "
    "raw_sigma_y), sigma = max(softplus(raw_sigma), 1e-3). Oracle: log_softmax "
    "is replaced by log(pi_true) and mu, sigma are the true parameters "
    "(sigma = 0.3). model_ll/oracle_ll are means over all 100 sets x 300 points; "
    "per_set_model_ll are means over the 300 points of each set. Computed in "
    "float64."
)


def sample_sets(batch, n, gen, dtype=torch.float32):
    """Sample `batch` sets of `n` points each from random 4-component GMMs.

    pi ~ Dirichlet(1,1,1,1); mu ~ Uniform(-4, 4)^2; sigma = 0.3 (isotropic).
    Returns x [B, n, 2], pi [B, 4], mu [B, 4, 2], sigma [B, 4, 2].
    """
    # Dirichlet(1,...,1) = normalised Exp(1) draws.
    e = -torch.log(1.0 - torch.rand(batch, K, generator=gen, dtype=torch.float64))
    pi = e / e.sum(1, keepdim=True)
    mu = MEAN_LO + (MEAN_HI - MEAN_LO) * torch.rand(batch, K, DIM, generator=gen,
                                                     dtype=torch.float64)
    sigma = torch.full((batch, K, DIM), STD, dtype=torch.float64)
    labels = torch.multinomial(pi, n, replacement=True, generator=gen)  # [B, n]
    idx = labels.unsqueeze(-1).expand(batch, n, DIM)
    centers = torch.gather(mu, 1, idx)
    scales = torch.gather(sigma, 1, idx)
    x = centers + scales * torch.randn(batch, n, DIM, generator=gen,
                                       dtype=torch.float64)
    return x.to(dtype), pi.to(dtype), mu.to(dtype), sigma.to(dtype)


def split_output(out):
    """Model output [B, 4, 5] -> (log_pi [B,4], mu [B,4,2], sigma [B,4,2])."""
    log_pi = F.log_softmax(out[..., 0], dim=-1)
    mu = out[..., 1:3]
    sigma = F.softplus(out[..., 3:5]).clamp_min(SIGMA_MIN)
    return log_pi, mu, sigma


def point_log_likelihood(x, log_pi, mu, sigma):
    """x [B,n,2], log_pi [B,K], mu/sigma [B,K,2] -> log p(x) [B, n]."""
    diff = x.unsqueeze(2) - mu.unsqueeze(1)          # [B, n, K, 2]
    s = sigma.unsqueeze(1)
    comp = (-0.5 * (diff / s) ** 2 - torch.log(s)
            - 0.5 * math.log(2 * math.pi)).sum(-1)   # [B, n, K]
    return torch.logsumexp(log_pi.unsqueeze(1) + comp, dim=-1)
