"""The checkers of tutorial 2: training your own SAE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sae_lens import TopKTrainingSAEConfig

from ..evaluation import dead_latents
from ..language import choose
from ._common import _call, _not_done


def check_dead_latents(
    find_dead_latents: Callable[[np.ndarray], Any] | None, feature_density: np.ndarray
) -> bool | None:
    """Check ``find_dead_latents(feature_density [d_sae]) -> indices of the dead latents``.

    Tried on the real density and on two small made-up ones (a latent firing once in a million
    tokens is alive).
    """
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    made_up = [np.array([0.0, 1e-6, 0.5, 0.0, 1.0]), np.array([0.2, 0.0, 3e-9])]
    real = np.asarray(feature_density, dtype=np.float64)
    # pragma: no mutate end
    cases = [real, *made_up]
    for density in cases:
        got = _call(find_dead_latents, density)
        if got is None:
            print(_not_done())
            return None
        expected = dead_latents(density).tolist()
        got = sorted(int(i) for i in np.asarray(torch.as_tensor(got).cpu()).reshape(-1).tolist())
        more = "..." if len(expected) > 10 or len(got) > 10 else ""
        assert got == expected, choose(
            f"For a density over {len(density)} latents the dead ones are {expected[:10]}{more}; your "
            f"function returned {got[:10]}{more}. Hint: return the indices (not a mask) of the latents "
            "whose density is exactly 0.",
            f"对 {len(density)} 个潜变量的激活频率，死潜变量是 {expected[:10]}{more}；你的函数"
            f"返回了 {got[:10]}{more}。提示：返回激活频率恰好为 0 的潜变量的索引（不是掩码）。",
        )
    n_dead = len(dead_latents(cases[0]))
    print(
        choose(
            f"Correct: {n_dead} of {len(cases[0])} latents never fired on the evaluation sample.",
            f"正确：{len(cases[0])} 个潜变量中有 {n_dead} 个在评估样本上从未激活。",
        )
    )
    return True


def check_expansion_config(cfg: Any, d_in: int, expansion_factor: int, k: int) -> bool | None:
    """Check the runner config of the expansion-factor exercise: a TopK SAE, ``d_sae`` =
    ``expansion_factor * d_in``, the same ``k``. ``cfg`` is a ``LanguageModelSAERunnerConfig``."""
    if cfg is None:
        print(_not_done())
        return None
    assert isinstance(cfg.sae, TopKTrainingSAEConfig), choose(
        f"cfg.sae should be a TopKTrainingSAEConfig, got {type(cfg.sae).__name__}",
        f"cfg.sae 应为 TopKTrainingSAEConfig，实际是 {type(cfg.sae).__name__}",
    )
    assert cfg.sae.d_in == d_in, choose(
        f"cfg.sae.d_in should be the model's d_model ({d_in}), got {cfg.sae.d_in}",
        f"cfg.sae.d_in 应为模型的 d_model（{d_in}），实际是 {cfg.sae.d_in}",
    )
    assert cfg.sae.d_sae == expansion_factor * d_in, choose(
        f"cfg.sae.d_sae should be {expansion_factor} x {d_in} = {expansion_factor * d_in}, got {cfg.sae.d_sae}",
        f"cfg.sae.d_sae 应为 {expansion_factor} x {d_in} = {expansion_factor * d_in}，实际是 {cfg.sae.d_sae}",
    )
    assert cfg.sae.k == k, choose(
        f"keep k = {k} so that only the width changes, got {cfg.sae.k}",
        f"保持 k = {k}，只改变宽度；实际是 {cfg.sae.k}",
    )
    print(
        choose(
            f"Config OK: TopK, d_sae = {cfg.sae.d_sae} ({expansion_factor} x d_in), k = {k}.",
            f"配置正确：TopK，d_sae = {cfg.sae.d_sae}（{expansion_factor} x d_in），k = {k}。",
        )
    )
    return True


def check_ce_loss_score(
    my_ce_loss_score: Callable[[float, float, float], float] | None,
    metrics: dict[str, float],
) -> bool | None:
    """Check ``my_ce_loss_score(ce_without_sae, ce_with_sae, ce_zero_ablation) -> float``.

    Tried on made-up losses (an SAE as good as the model, one halfway, one worse than ablating)
    and on ``metrics``, the :func:`utils.evaluation.headline_metrics` of a trained SAE, whose
    ``ce_loss_score`` ``run_evals`` computed.
    """
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    made_up = [(2.0, 2.0, 6.0), (2.0, 4.0, 6.0), (3.0, 8.0, 5.0)]
    # pragma: no mutate end
    cases = [
        *made_up,
        (
            metrics["ce_loss_without_sae"],
            metrics["ce_loss_with_sae"],
            metrics["ce_loss_zero_ablation"],
        ),
    ]
    for without, with_sae, zero in cases:
        answer = _call(my_ce_loss_score, without, with_sae, zero)
        if answer is None:
            print(_not_done())
            return None
        answer = float(torch.as_tensor(answer))
        expected = (zero - with_sae) / (zero - without)
        assert abs(answer - expected) < 1e-4, choose(
            f"For CE losses {without:.3f} (model), {with_sae:.3f} (SAE spliced in) and {zero:.3f} "
            f"(zero-ablated) the score is {expected:.4f}; yours is {answer:.4f}. Hint: the share of "
            "the gap between ablating and the untouched model that the SAE closes.",
            f"交叉熵损失为 {without:.3f}（原模型）、{with_sae:.3f}（接入 SAE）和 {zero:.3f}"
            f"（零值消融）时，得分应为 {expected:.4f}；你的是 {answer:.4f}。提示：零值消融与原模型"
            "之间的差距中，SAE 弥补了多少比例。",
        )
    print(
        choose(
            f"Correct: {answer:.4f} for your SAE, as run_evals reported "
            f"({metrics['ce_loss_score']:.4f}).",
            f"正确：你的 SAE 得分 {answer:.4f}，与 run_evals 的结果一致"
            f"（{metrics['ce_loss_score']:.4f}）。",
        )
    )
    return True
