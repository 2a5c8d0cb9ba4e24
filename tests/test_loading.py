"""Tests for utils/loading.py's decoder-norm folding (tutorial 1, section 10): the folded SAE
reconstructs exactly as the unfolded one, and each latent's activation is multiplied by the norm
of its decoder row. Checked against the activations computed by hand from the unfolded weights,
on the bundled tiny SAE and on a random SAE of odd size."""

from __future__ import annotations

import copy

import pytest
import torch
from random_models import build_sae

from utils.loading import load_sae
from utils.presets import get_preset


def by_hand(sae, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A standard (ReLU) SAE's latents and reconstruction from its weights, with no SAELens code."""
    W_enc, b_enc = sae.W_enc.detach().double(), sae.b_enc.detach().double()
    W_dec, b_dec = sae.W_dec.detach().double(), sae.b_dec.detach().double()
    acts = torch.relu((x.double() - b_dec) @ W_enc + b_enc)
    return acts, acts @ W_dec + b_dec


def check_folding(unfolded, folded, x: torch.Tensor) -> torch.Tensor:
    """Assert what folding promises for ``x`` [n, d_in]; return the decoder norms."""
    norms = unfolded.W_dec.detach().double().norm(dim=-1)  # [d_sae], before folding
    acts, recons = by_hand(unfolded, x)
    with torch.no_grad():
        folded_acts = folded.encode(x).double()
        folded_recons = folded.decode(folded.encode(x)).double()
    assert (acts > 0).any(dim=0).float().mean() > 0.3, "the test needs many active latents"
    torch.testing.assert_close(folded_acts, acts * norms, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(folded_recons, recons, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        folded.W_dec.detach().double().norm(dim=-1), torch.ones_like(norms), rtol=0, atol=1e-5
    )
    return norms


def test_folding_the_tiny_sae():
    preset = get_preset("tiny")
    unfolded = load_sae(preset)
    folded = load_sae(preset, fold_W_dec_norm=True)
    x = torch.randn(64, unfolded.cfg.d_in, generator=torch.Generator().manual_seed(0))
    norms = check_folding(unfolded, folded, x)
    # the bundled SAE's rows are far from unit norm, so folding visibly changes activations
    assert norms.min() > 1.1 and norms.max() > 2.0, (norms.min(), norms.max())


def test_folding_a_random_sae_of_odd_size():
    sae = build_sae(d_in=7, d_sae=13, seed=3)
    generator = torch.Generator().manual_seed(1)
    with (
        torch.no_grad()
    ):  # rows of norms between 0.3 and 3, and an encoder bias that lets some fire
        sae.W_dec.mul_(0.3 + 2.7 * torch.rand(13, 1, generator=generator))
        sae.b_enc.copy_(torch.randn(13, generator=generator) * 0.3)
    folded = copy.deepcopy(sae)
    folded.fold_W_dec_norm()
    x = torch.randn(50, 7, generator=generator) * 2
    norms = check_folding(sae, folded, x)
    assert norms.max() / norms.min() > 2


def test_folding_changes_values_but_not_rankings_within_a_latent():
    """What tutorial 1 says a reader may compare across the two: a latent's top contexts."""
    preset = get_preset("tiny")
    unfolded, folded = load_sae(preset), load_sae(preset, fold_W_dec_norm=True)
    x = torch.randn(200, unfolded.cfg.d_in, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = unfolded.encode(x), folded.encode(x)
    assert not torch.allclose(a, b)
    for latent in range(0, a.shape[1], 97):
        assert torch.equal(a[:, latent] > 0, b[:, latent] > 0)
        assert a[:, latent].argmax() == b[:, latent].argmax()


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
