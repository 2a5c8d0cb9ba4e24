"""The checkers of tutorial 3: steering, ablation and attribution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import features as F
from ._common import _NOT_DONE, _call


def check_steering_hook(my_steering_hook: Callable[..., Any] | None) -> bool | None:
    """Check ``my_steering_hook(direction [d], scale) -> hook``, where ``hook(acts [batch, pos, d],
    hook_point)`` returns ``acts + scale * ||acts|| * direction`` (each position's own norm)."""
    from .. import interventions as I

    cases = [((2, 5, 16), 0.5, 0), ((1, 3, 7), -1.25, 1), ((3, 1, 33), 2.0, 2)]
    for shape, scale, seed in cases:
        generator = torch.Generator().manual_seed(seed)
        acts = torch.randn(shape, generator=generator) * (1 + torch.arange(shape[1]))[:, None]
        direction = I.random_unit_direction(shape[-1], seed + 10)
        hook = _call(my_steering_hook, direction, scale)
        answer = _call(hook, acts.clone(), None) if hook is not None else None
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = acts + scale * acts.norm(dim=-1, keepdim=True) * direction
        assert answer.shape == acts.shape, (
            f"For activations of shape {shape} your hook returned shape {tuple(answer.shape)}: "
            "it must return a tensor shaped like its input."
        )
        if torch.allclose(answer, acts + scale * direction, atol=1e-5):
            raise AssertionError(
                "Your hook adds scale * direction: scale it by each position's norm too "
                "(acts.norm(dim=-1, keepdim=True)), so the push is a fraction of the activation."
            )
        assert torch.allclose(answer, expected, atol=1e-4), (
            "The steered activations differ from acts + scale * ||acts|| * direction. Hint: the "
            "norm is taken over the last dimension, separately at each position."
        )
    print("Correct: your hook steers by a fraction of each position's norm, on every test case.")
    return True


@torch.no_grad()
def _ablated_sae_output(model: Any, sae: Any, tokens: torch.Tensor, feature: int) -> torch.Tensor:
    """What flows on from the SAE's hook with ``feature`` removed and the error term kept:
    ``[pos, d_in]``."""
    hook_name = F.sae_hook_name(sae)
    store: dict[str, torch.Tensor] = {}

    def remove(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        acts = acts.clone()
        acts[..., feature] = 0
        return acts

    def keep(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        store["out"] = acts.detach().clone()
        return acts

    with model.saes(saes=[sae], use_error_term=True):
        model.run_with_hooks(
            tokens,
            fwd_hooks=[
                (f"{hook_name}.hook_sae_acts_post", remove),
                (f"{hook_name}.hook_sae_output", keep),
            ],
        )
    return store["out"][0]


def check_ablated_activation(
    my_ablated_activation: Callable[..., Any] | None,
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    feature: int,
) -> bool | None:
    """Check ``my_ablated_activation(x [pos, d_in], sae, feature) -> [pos, d_in]``: the activation
    that flows on from the SAE's hook when latent ``feature`` is set to zero with the error term
    kept.

    ``tokens`` (``[pos]`` or ``[1, pos]``) must include a position where the latent fires: where it
    is silent, removing it changes nothing, and returning ``x`` unchanged would pass. Raises
    ``ValueError`` for such tokens.
    """
    feature = F.check_feature_index(feature, sae.cfg.d_sae)
    tokens = tokens if tokens.ndim == 2 else tokens[None]
    x = F.hook_activations(model, tokens, F.sae_hook_name(sae))[0]
    with torch.no_grad():
        n_firing = int((sae.encode(x)[:, feature] > 0).sum())
    if n_firing == 0:
        raise ValueError(
            f"Latent {feature} does not fire on any of these {len(x)} tokens, so removing it "
            "changes nothing and this check could not tell a right answer from x itself. Pass "
            "tokens where the latent fires (e.g. the sample's text where its activation is "
            "largest)."
        )
    answer = _call(my_ablated_activation, x.clone(), sae, feature)
    if answer is None:
        print(_NOT_DONE)
        return None
    answer = torch.as_tensor(answer).to(x.device, x.dtype)
    expected = _ablated_sae_output(model, sae, tokens, feature)
    assert answer.shape == expected.shape, (
        f"Your function returned shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
        "(one activation vector per position)."
    )
    with torch.no_grad():
        acts = sae.encode(x)
        acts[:, feature] = 0
        without_error = sae.decode(acts)
    scale = expected.norm(dim=-1).max().item()
    right = torch.allclose(answer, expected, atol=1e-4 * scale)
    if not right and torch.allclose(answer, x, atol=1e-4 * scale):
        raise AssertionError(
            f"You returned x unchanged, but latent {feature} fires at {n_firing} of these "
            f"{len(x)} positions: removing it must subtract its contribution there."
        )
    if not right and torch.allclose(answer, without_error, atol=1e-4 * scale):
        raise AssertionError(
            "You returned the SAE's reconstruction of the ablated latents: add the error term "
            "x - sae.decode(sae.encode(x)) back, as use_error_term=True does."
        )
    assert right, (
        "Your activation differs from what the model sees. Hint: with the error term kept, "
        "removing a latent subtracts only its own contribution, activation * W_dec[feature]."
    )
    print(
        f"Correct: your ablated activation matches the spliced model's at all {len(x)} positions "
        f"(latent {feature} fires at {n_firing} of them)."
    )
    return True


def check_attribution(
    my_attribution: Callable[..., Any] | None,
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    target_position: int,
) -> bool | None:
    """Check ``my_attribution(model, sae, tokens [1, pos], target_position) -> [pos, d_sae]``:
    activation x gradient of log p(correct next token at target_position), SAE spliced in with
    its error term."""
    from .. import interventions as I

    tokens = tokens if tokens.ndim == 2 else tokens[None]
    answer = _call(my_attribution, model, sae, tokens, target_position)
    if answer is None:
        print(_NOT_DONE)
        return None
    answer = torch.as_tensor(answer).detach().float().cpu()
    if answer.ndim == 3 and answer.shape[0] == 1:
        answer = answer[0]
    expected = I.next_token_attribution(model, sae, tokens, [target_position]).attribution[0]
    assert answer.shape == expected.shape, (
        f"Your attribution has shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
        "= [pos, d_sae], one number per latent per position."
    )
    scale = expected.abs().max().item() or 1.0
    if torch.allclose(answer, -expected, atol=1e-3 * scale) and expected.abs().max() > 0:
        raise AssertionError("Your attribution has the wrong sign: it is activation x gradient.")
    assert torch.allclose(answer, expected, atol=1e-3 * scale), (
        "Your attribution differs from activation x gradient. Hints: return the activations from "
        "the hook as a fresh leaf (acts.detach().requires_grad_(True)), keep the error term, and "
        "differentiate the log-probability (log_softmax), not the logit."
    )
    print(
        f"Correct: your attribution matches at all {expected.shape[0]} positions x "
        f"{expected.shape[1]} latents."
    )
    return True
