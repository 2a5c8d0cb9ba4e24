"""The checkers of tutorial 4: ground truth (synthetic data)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import _NOT_DONE, _call


def check_mcc(my_mcc: Callable[[torch.Tensor, torch.Tensor], float] | None) -> bool | None:
    """Check ``my_mcc(decoder [L, d], true_features [N, d]) -> float`` against SAELens' MCC."""
    from sae_lens.synthetic import mean_correlation_coefficient

    generator = torch.Generator().manual_seed(4)
    true = torch.randn(12, 5, generator=generator)
    permuted = -3 * true[torch.randperm(12, generator=generator)]  # same directions: MCC 1
    cases = [
        (permuted, true, "a shuffled, rescaled and sign-flipped copy of the true features"),
        (torch.randn(12, 5, generator=generator), true, "random directions"),
        (torch.randn(20, 5, generator=generator), true, "more latents than features"),
        (true[:3] + 0.3 * torch.randn(3, 5, generator=generator), true, "fewer latents"),
    ]
    for decoder, features, name in cases:
        answer = _call(my_mcc, decoder.clone(), features.clone())
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = mean_correlation_coefficient(decoder, features)
        assert abs(float(answer) - expected) < 1e-4, (
            f"For {name} your MCC is {float(answer):.4f}; expected {expected:.4f}. Hint: take the "
            "absolute cosine similarity of every (latent, feature) pair, find the one-to-one "
            "matching with the largest total (scipy.optimize.linear_sum_assignment minimises, so "
            "give it 1 - |cos|), and average the matched |cos|."
        )
    print("Correct: your MCC matches SAELens' mean_correlation_coefficient on 4 cases.")
    return True


def check_shrinkage(
    my_shrinkage: Callable[[torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_shrinkage(x [n, d], x_hat [n, d]) -> float``: mean of ``|x_hat| / |x|``."""
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(50, 8, generator=generator)
    cases = [
        (x, 0.5 * x, 0.5, "x_hat = x / 2"),
        (x, x, 1.0, "a perfect reconstruction"),
        (
            x,
            x * torch.rand(50, 1, generator=generator)
            + 0.1 * torch.randn(50, 8, generator=generator),
            None,
            "a noisy reconstruction",
        ),
    ]
    for inputs, outputs, known, name in cases:
        answer = _call(my_shrinkage, inputs.clone(), outputs.clone())
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = (outputs.norm(dim=-1) / inputs.norm(dim=-1)).mean().item()
        if known is not None:
            assert abs(expected - known) < 1e-5
        assert abs(float(answer) - expected) < 1e-4, (
            f"For {name} your shrinkage is {float(answer):.4f}; expected {expected:.4f}. Hint: the "
            "norm of each reconstruction divided by the norm of its input (one ratio per "
            "sample, over the last dimension), then the mean of the ratios."
        )
    print("Correct: your shrinkage matches on 3 cases (1.0 = no shrinkage).")
    return True


def check_absorption(
    my_absorption: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_absorption(latent_fires, parent_fires, child_fires) -> float`` (boolean ``[n]``)
    against ``utils.ground_truth.absorption``."""
    from ..ground_truth import absorption

    generator = torch.Generator().manual_seed(6)
    n = 400
    parent = torch.rand(n, generator=generator) < 0.5
    child = parent & (torch.rand(n, generator=generator) < 0.4)
    noise = torch.rand(n, generator=generator)
    cases = [
        (parent & ~child, "a latent silenced by every child (fully absorbed)"),
        (parent.clone(), "a latent that fires whenever the parent does"),
        (parent & (noise < torch.where(child, 0.3, 0.9)), "a partly absorbed latent"),
        (
            (parent & (noise < 0.5)) | (~parent & (noise < 0.2)),
            "a latent that also fires without the parent",
        ),
    ]
    for latent, name in cases:
        answer = _call(my_absorption, latent.clone(), parent.clone(), child.clone())
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = absorption(latent, parent, child)
        assert abs(float(answer) - expected) < 1e-4, (
            f"For {name} your absorption is {float(answer):.4f}; expected {expected:.4f}. Hint: "
            "only samples where the parent is active count; compare the latent's firing rate "
            "on those with a child active to its rate on those without, as "
            "1 - rate_with_child / rate_without_child."
        )
    print("Correct: your absorption matches on 4 firing patterns.")
    return True
