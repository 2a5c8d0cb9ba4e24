"""Tutorial 4's exercise checks: right answers pass, wrong ones fail with a hint, blanks are
tolerated."""

from __future__ import annotations

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from utils import exercises as E


def right_mcc(decoder, true):
    cos = (
        torch.nn.functional.normalize(decoder, dim=1) @ torch.nn.functional.normalize(true, dim=1).T
    ).abs()
    rows, cols = linear_sum_assignment(1 - cos.numpy())
    return cos[rows, cols].mean().item()


def greedy_mcc(decoder, true):  # each feature's best latent, latents may repeat: not a matching
    cos = (
        torch.nn.functional.normalize(decoder, dim=1) @ torch.nn.functional.normalize(true, dim=1).T
    ).abs()
    return cos.max(dim=0).values.mean().item()


def unfinished(*args):
    raise NotImplementedError


def test_check_mcc():
    assert E.check_mcc(right_mcc)
    assert E.check_mcc(None) is None
    assert E.check_mcc(unfinished) is None
    with pytest.raises(AssertionError, match="one-to-one"):
        E.check_mcc(greedy_mcc)
    with pytest.raises(AssertionError, match="expected"):  # signed cosines
        E.check_mcc(lambda d, t: right_mcc(d, t) - 0.1)


def test_check_shrinkage():
    assert E.check_shrinkage(lambda x, x_hat: (x_hat.norm(dim=-1) / x.norm(dim=-1)).mean())
    assert E.check_shrinkage(None) is None
    assert E.check_shrinkage(lambda x, x_hat: None) is None
    with pytest.raises(AssertionError, match="ratio"):  # ratio of means, not mean of ratios
        E.check_shrinkage(lambda x, x_hat: x_hat.norm(dim=-1).mean() / x.norm(dim=-1).mean())


def right_absorption(latent, parent, child):
    with_child = latent[parent & child].float().mean()
    alone = latent[parent & ~child].float().mean()
    return float(1 - with_child / alone)


def test_check_absorption():
    assert E.check_absorption(right_absorption)
    assert E.check_absorption(None) is None
    assert E.check_absorption(unfinished) is None

    def ignores_parent(latent, parent, child):  # counts samples without the parent too
        return float(1 - latent[child].float().mean() / latent[~child].float().mean())

    with pytest.raises(AssertionError, match="parent is active"):
        E.check_absorption(ignores_parent)


def test_check_mcc_tries_a_sign_flipped_copy():
    # The exercise promises that a latent pointing exactly opposite to a feature counts as a
    # match: one of the checker's cases must be such a copy (every row antiparallel to a true
    # feature), or a reader's signed-cosine MCC could pass it. Checked on the inputs it passes.
    seen = []

    def spy(decoder, true):
        seen.append((decoder, true))
        return right_mcc(decoder, true)

    assert E.check_mcc(spy)
    cosines = [
        torch.nn.functional.normalize(decoder, dim=1) @ torch.nn.functional.normalize(true, dim=1).T
        for decoder, true in seen
    ]
    assert any(
        len(decoder) == len(true) and torch.allclose(c.min(dim=1).values, -torch.ones(len(c)))
        for (decoder, true), c in zip(seen, cosines)
    )

    def signed_mcc(decoder, true):  # no absolute value: opposite directions score -1
        cos = (
            torch.nn.functional.normalize(decoder, dim=1)
            @ torch.nn.functional.normalize(true, dim=1).T
        )
        rows, cols = linear_sum_assignment(-cos.numpy())
        return cos[rows, cols].mean().item()

    with pytest.raises(AssertionError, match="sign-flipped"):
        E.check_mcc(signed_mcc)
