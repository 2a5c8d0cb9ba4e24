"""The checkers of tutorial 3: steering, ablation and attribution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import features as F
from ..language import choose
from ._common import _call, _not_done


def check_steering_hook(my_steering_hook: Callable[..., Any] | None) -> bool | None:
    """Check ``my_steering_hook(direction [d], scale) -> hook``, where ``hook(acts [batch, pos, d],
    hook_point)`` returns ``acts + scale * ||acts|| * direction`` (each position's own norm)."""
    from .. import interventions as I

    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    cases = [((2, 5, 16), 0.5, 0), ((1, 3, 7), -1.25, 1), ((3, 1, 33), 2.0, 2)]
    # pragma: no mutate end
    for shape, scale, seed in cases:
        # Test data (not mutated: other values would serve as well)
        # pragma: no mutate start
        generator = torch.Generator().manual_seed(seed)
        acts = torch.randn(shape, generator=generator) * (1 + torch.arange(shape[1]))[:, None]
        direction = I.random_unit_direction(shape[-1], seed + 10)
        # pragma: no mutate end
        hook = _call(my_steering_hook, direction, scale)
        answer = _call(hook, acts.clone(), None) if hook is not None else None
        if answer is None:
            print(_not_done())
            return None
        expected = acts + scale * acts.norm(dim=-1, keepdim=True) * direction
        assert answer.shape == acts.shape, choose(
            f"For activations of shape {shape} your hook returned shape {tuple(answer.shape)}: "
            "it must return a tensor shaped like its input.",
            f"对形状为 {shape} 的激活，你的钩子返回的形状是 {tuple(answer.shape)}："
            "它必须返回与输入形状相同的张量。",
        )
        if torch.allclose(answer, acts + scale * direction, atol=1e-5):
            raise AssertionError(
                choose(
                    "Your hook adds scale * direction: scale it by each position's norm too "
                    "(acts.norm(dim=-1, keepdim=True)), so the push is a fraction of the activation.",
                    "你的钩子加的是 scale * direction：还要乘上每个位置自己的范数"
                    "（acts.norm(dim=-1, keepdim=True)），让推动量是激活的一个比例。",
                )
            )
        assert torch.allclose(answer, expected, atol=1e-4), choose(
            "The steered activations differ from acts + scale * ||acts|| * direction. Hint: the "
            "norm is taken over the last dimension, separately at each position.",
            "引导后的激活与 acts + scale * ||acts|| * direction 不一致。提示：范数在最后一维上计算，"
            "每个位置分别计算。",
        )
    print(
        choose(
            "Correct: your hook steers by a fraction of each position's norm, on every test case.",
            "正确：在所有测试用例上，你的钩子都按每个位置范数的一个比例进行引导。",
        )
    )
    return True


def _ablated_sae_output(model: Any, sae: Any, tokens: torch.Tensor, latent: int) -> torch.Tensor:
    """What flows on from the SAE's hook with ``latent`` removed and the error term kept:
    ``[pos, d_in]``."""
    with torch.no_grad():
        hook_name = F.sae_hook_name(sae)
        store: dict[str, torch.Tensor] = {}

        def remove(acts: torch.Tensor, hook: Any) -> torch.Tensor:
            acts = acts.clone()
            acts[..., latent] = 0
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
    latent: int,
) -> bool | None:
    """Check ``my_ablated_activation(x [pos, d_in], sae, latent) -> [pos, d_in]``: the activation
    that flows on from the SAE's hook when ``latent`` is set to zero with the error term
    kept.

    ``tokens`` (``[pos]`` or ``[1, pos]``) must include a position where the latent fires: where it
    is silent, removing it changes nothing, and returning ``x`` unchanged would pass. Raises
    ``ValueError`` for such tokens.
    """
    latent = F.check_feature_index(latent, sae.cfg.d_sae)
    tokens = tokens if tokens.ndim == 2 else tokens[None]
    x = F.hook_activations(model, tokens, F.sae_hook_name(sae))[0]
    with torch.no_grad():
        n_firing = int((sae.encode(x)[:, latent] > 0).sum())
    if n_firing == 0:
        raise ValueError(
            choose(
                f"Latent {latent} does not fire on any of these {len(x)} tokens, so removing it "
                "changes nothing and this check could not tell a right answer from x itself. Pass "
                "tokens where the latent fires (e.g. the sample's text where its activation is "
                "largest).",
                f"潜变量 {latent} 在这 {len(x)} 个 token 上都没有激活，移除它不会改变任何东西，"
                "这个检查无法区分正确答案和 x 本身。请传入该潜变量会激活的 token"
                "（例如样本中它激活最强的那段文本）。",
            )
        )
    answer = _call(my_ablated_activation, x.clone(), sae, latent)
    if answer is None:
        print(_not_done())
        return None
    answer = torch.as_tensor(answer).to(x.device, x.dtype)
    expected = _ablated_sae_output(model, sae, tokens, latent)
    assert answer.shape == expected.shape, choose(
        f"Your function returned shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
        "(one activation vector per position).",
        f"你的函数返回的形状是 {tuple(answer.shape)}；应为 {tuple(expected.shape)}"
        "（每个位置一个激活向量）。",
    )
    with torch.no_grad():
        acts = sae.encode(x)
        acts[:, latent] = 0
        without_error = sae.decode(acts)
    scale = expected.norm(dim=-1).max().item()
    right = torch.allclose(answer, expected, atol=1e-4 * scale)
    if not right and torch.allclose(answer, x, atol=1e-4 * scale):
        raise AssertionError(
            choose(
                f"You returned x unchanged, but latent {latent} fires at {n_firing} of these "
                f"{len(x)} positions: removing it must subtract its contribution there.",
                f"你原样返回了 x，但潜变量 {latent} 在这 {len(x)} 个位置中的 {n_firing} 个上"
                "激活：移除它必须在这些位置减去它的贡献。",
            )
        )
    if not right and torch.allclose(answer, without_error, atol=1e-4 * scale):
        raise AssertionError(
            choose(
                "You returned the SAE's reconstruction of the ablated latents: add the error term "
                "x - sae.decode(sae.encode(x)) back, as use_error_term=True does.",
                "你返回的是 SAE 对消融后潜变量的重构：还要像 use_error_term=True 那样把误差项 "
                "x - sae.decode(sae.encode(x)) 加回去。",
            )
        )
    assert right, choose(
        "Your activation differs from what the model sees. Hint: with the error term kept, "
        "removing a latent subtracts only its own contribution, activation * W_dec[latent].",
        "你的激活与模型实际看到的不一致。提示：保留误差项时，移除一个潜变量只减去它自己的贡献，"
        "即 activation * W_dec[latent]。",
    )
    print(
        choose(
            f"Correct: your ablated activation matches the spliced model's at all {len(x)} positions "
            f"(latent {latent} fires at {n_firing} of them).",
            f"正确：你的消融后激活在全部 {len(x)} 个位置上都与接入 SAE 的模型一致"
            f"（潜变量 {latent} 在其中 {n_firing} 个位置上激活）。",
        )
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
        print(_not_done())
        return None
    answer = torch.as_tensor(answer).detach().float().cpu()
    if answer.ndim == 3 and answer.shape[0] == 1:
        answer = answer[0]
    expected = I.next_token_attribution(model, sae, tokens, [target_position]).attribution[0]
    assert answer.shape == expected.shape, choose(
        f"Your attribution has shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
        "= [pos, d_sae], one number per latent per position.",
        f"你的归因形状是 {tuple(answer.shape)}；应为 {tuple(expected.shape)} "
        "= [pos, d_sae]，每个位置的每个潜变量一个数。",
    )
    scale = expected.abs().max().item() or 1.0
    if torch.allclose(answer, -expected, atol=1e-3 * scale) and expected.abs().max() > 0:
        raise AssertionError(
            choose(
                "Your attribution has the wrong sign: it is activation x gradient.",
                "你的归因符号反了：归因是 激活 x 梯度。",
            )
        )
    assert torch.allclose(answer, expected, atol=1e-3 * scale), choose(
        "Your attribution differs from activation x gradient. Hints: return the activations from "
        "the hook as a fresh leaf (acts.detach().requires_grad_(True)), keep the error term, and "
        "differentiate the log-probability (log_softmax), not the logit.",
        "你的归因与 激活 x 梯度 不一致。提示：在钩子中把激活作为新的叶子节点返回"
        "（acts.detach().requires_grad_(True)），保留误差项，并对对数概率（log_softmax）"
        "而不是 logit 求导。",
    )
    print(
        choose(
            f"Correct: your attribution matches at all {expected.shape[0]} positions x "
            f"{expected.shape[1]} latents.",
            f"正确：你的归因在全部 {expected.shape[0]} 个位置 x {expected.shape[1]} 个潜变量上"
            "都一致。",
        )
    )
    return True
