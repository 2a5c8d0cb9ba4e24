"""The checkers of tutorial 4: ground truth (synthetic data)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..language import choose
from ._common import _call, _not_done


def check_mcc(my_mcc: Callable[[torch.Tensor, torch.Tensor], float] | None) -> bool | None:
    """Check ``my_mcc(decoder [L, d], true_features [N, d]) -> float`` against SAELens' MCC."""
    from sae_lens.synthetic import mean_correlation_coefficient

    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    generator = torch.Generator().manual_seed(4)
    true = torch.randn(12, 5, generator=generator)
    permuted = -3 * true[torch.randperm(12, generator=generator)]  # same directions: MCC 1
    random_rows = torch.randn(12, 5, generator=generator)
    more_rows = torch.randn(20, 5, generator=generator)
    fewer_rows = true[:3] + 0.3 * torch.randn(3, 5, generator=generator)
    # pragma: no mutate end
    cases = [
        (
            permuted,
            true,
            "a shuffled, rescaled and sign-flipped copy of the true features",
            "真实特征打乱顺序、缩放并翻转符号后的副本",
        ),
        (random_rows, true, "random directions", "随机方向"),
        (
            more_rows,
            true,
            "more latents than features",
            "潜变量多于特征的情况",
        ),
        (
            fewer_rows,
            true,
            "fewer latents",
            "潜变量较少的情况",
        ),
    ]
    for decoder, features, name, name_zh in cases:
        answer = _call(my_mcc, decoder.clone(), features.clone())
        if answer is None:
            print(_not_done())
            return None
        expected = mean_correlation_coefficient(decoder, features)
        assert abs(float(answer) - expected) < 1e-4, choose(
            f"For {name} your MCC is {float(answer):.4f}; expected {expected:.4f}. Hint: take the "
            "absolute cosine similarity of every (latent, feature) pair, find the one-to-one "
            "matching with the largest total (scipy.optimize.linear_sum_assignment minimises, so "
            "give it 1 - |cos|), and average the matched |cos|.",
            f"对{name_zh}，你的 MCC 是 {float(answer):.4f}；应为 {expected:.4f}。提示：对每一对"
            "（潜变量，特征）取余弦相似度的绝对值，找出总和最大的一一匹配"
            "（scipy.optimize.linear_sum_assignment 求的是最小值，所以传入 1 - |cos|），"
            "再对匹配上的 |cos| 取平均。",
        )
    print(
        choose(
            "Correct: your MCC matches SAELens' mean_correlation_coefficient on 4 cases.",
            "正确：你的 MCC 在 4 个用例上与 SAELens 的 mean_correlation_coefficient 一致。",
        )
    )
    return True


def check_shrinkage(
    my_shrinkage: Callable[[torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_shrinkage(x [n, d], x_hat [n, d]) -> float``: mean of ``|x_hat| / |x|``."""
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(50, 8, generator=generator)
    noisy = x * torch.rand(50, 1, generator=generator) + 0.1 * torch.randn(
        50, 8, generator=generator
    )
    # pragma: no mutate end
    cases = [
        (x, 0.5 * x, 0.5, "x_hat = x / 2", " x_hat = x / 2 的情况"),
        (x, x, 1.0, "a perfect reconstruction", "完美的重构"),
        (
            x,
            noisy,
            None,
            "a noisy reconstruction",
            "带噪声的重构",
        ),
    ]
    for inputs, outputs, known, name, name_zh in cases:
        answer = _call(my_shrinkage, inputs.clone(), outputs.clone())
        if answer is None:
            print(_not_done())
            return None
        expected = (outputs.norm(dim=-1) / inputs.norm(dim=-1)).mean().item()
        if known is not None:
            assert abs(expected - known) < 1e-5
        assert abs(float(answer) - expected) < 1e-4, choose(
            f"For {name} your shrinkage is {float(answer):.4f}; expected {expected:.4f}. Hint: the "
            "norm of each reconstruction divided by the norm of its input (one ratio per "
            "sample, over the last dimension), then the mean of the ratios.",
            f"对{name_zh}，你的收缩是 {float(answer):.4f}；应为 {expected:.4f}。提示：每个重构的"
            "范数除以其输入的范数（每个样本一个比值，在最后一维上计算），再对这些比值取平均。",
        )
    print(
        choose(
            "Correct: your shrinkage matches on 3 cases (1.0 = no shrinkage).",
            "正确：你的收缩在 3 个用例上一致（1.0 = 没有收缩）。",
        )
    )
    return True


def check_absorption(
    my_absorption: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_absorption(latent_fires, parent_fires, child_fires) -> float`` (boolean ``[n]``)
    against ``utils.ground_truth.absorption``."""
    from ..ground_truth import absorption

    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    generator = torch.Generator().manual_seed(6)
    n = 400
    parent = torch.rand(n, generator=generator) < 0.5
    child = parent & (torch.rand(n, generator=generator) < 0.4)
    noise = torch.rand(n, generator=generator)
    partly = parent & (noise < torch.where(child, 0.3, 0.9))
    leaky = (parent & (noise < 0.5)) | (~parent & (noise < 0.2))
    # pragma: no mutate end
    cases = [
        (
            parent & ~child,
            "a latent silenced by every child (fully absorbed)",
            "被每个子特征压制的潜变量（完全吸收）",
        ),
        (
            parent.clone(),
            "a latent that fires whenever the parent does",
            "父特征激活时总是激活的潜变量",
        ),
        (
            partly,
            "a partly absorbed latent",
            "部分被吸收的潜变量",
        ),
        (
            leaky,
            "a latent that also fires without the parent",
            "父特征不激活时也会激活的潜变量",
        ),
    ]
    for latent, name, name_zh in cases:
        answer = _call(my_absorption, latent.clone(), parent.clone(), child.clone())
        if answer is None:
            print(_not_done())
            return None
        expected = absorption(latent, parent, child)
        assert abs(float(answer) - expected) < 1e-4, choose(
            f"For {name} your absorption is {float(answer):.4f}; expected {expected:.4f}. Hint: "
            "only samples where the parent is active count; compare the latent's firing rate "
            "on those with a child active to its rate on those without, as "
            "1 - rate_with_child / rate_without_child.",
            f"对{name_zh}，你的吸收率是 {float(answer):.4f}；应为 {expected:.4f}。提示：只统计父特征"
            "激活的样本；比较潜变量在其中有子特征激活时与没有子特征激活时的激活频率，"
            "即 1 - rate_with_child / rate_without_child。",
        )
    print(
        choose(
            "Correct: your absorption matches on 4 firing patterns.",
            "正确：你的吸收率在 4 种激活模式上一致。",
        )
    )
    return True
