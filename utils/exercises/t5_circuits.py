"""The checkers of tutorial 5: a transcoder's forward pass, a virtual weight, one edge by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..language import choose
from ._common import _call, _not_done


def _as_tensor(answer: Any) -> torch.Tensor | None:
    if answer is None:
        return None
    return torch.as_tensor(answer, dtype=torch.float32)


def _topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())


def check_transcoder_forward(my_forward: Callable[..., Any] | None) -> bool | None:
    """Check ``my_forward(x [n, d_in], W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_out], b_dec, k)
    -> [n, d_out]``: ``TopK(x @ W_enc + b_enc) @ W_dec + b_dec``, where TopK keeps each row's ``k``
    largest pre-activations (negative ones become 0) and zeroes the rest."""
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    cases = [(5, 6, 12, 4, 3, 0), (3, 8, 20, 8, 2, 1), (1, 4, 9, 5, 4, 2)]
    # pragma: no mutate end
    for n, d_in, d_sae, d_out, k, seed in cases:
        # Test data (not mutated: other values would serve as well)
        # pragma: no mutate start
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, d_in, generator=g)
        w_enc, b_enc = torch.randn(d_in, d_sae, generator=g), torch.randn(d_sae, generator=g)
        b_enc -= 2.5 * seed  # the last case: some of the k largest pre-activations are negative
        w_dec, b_dec = torch.randn(d_sae, d_out, generator=g), torch.randn(d_out, generator=g)
        # pragma: no mutate end
        answer = _as_tensor(_call(my_forward, x, w_enc, b_enc, w_dec, b_dec, k))
        if answer is None:
            print(_not_done())
            return None
        pre = x @ w_enc + b_enc
        expected = _topk_relu(pre, k) @ w_dec + b_dec
        if answer.shape != expected.shape:
            raise AssertionError(
                choose(
                    f"For x of shape {(n, d_in)} and d_out={d_out} your function returned shape "
                    f"{tuple(answer.shape)}: it must return [n, d_out].",
                    f"对形状为 {(n, d_in)} 的 x、d_out={d_out}，你的函数返回的形状是 "
                    f"{tuple(answer.shape)}：应返回 [n, d_out]。",
                )
            )
        dense = pre.relu() @ w_dec + b_dec
        if torch.allclose(answer, dense, atol=1e-4) and not torch.allclose(dense, expected):
            raise AssertionError(
                choose(
                    f"You applied a ReLU to every latent (k={k} of {d_sae} should stay): keep only "
                    "the k largest pre-activations of each row (torch.topk) and zero the rest.",
                    f"你对所有潜变量都用了 ReLU（{d_sae} 个中只应保留 k={k} 个）："
                    "每一行只保留最大的 k 个预激活（torch.topk），其余置零。",
                )
            )
        if torch.allclose(answer, _topk_relu(pre, k).clamp(min=0) @ w_dec, atol=1e-4):
            raise AssertionError(
                choose(
                    "The decoder bias b_dec is missing: the output is acts @ W_dec + b_dec.",
                    "缺少解码器偏置 b_dec：输出是 acts @ W_dec + b_dec。",
                )
            )
        top = pre.topk(k, dim=-1)
        raw = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
        if not torch.allclose(raw, raw.relu()) and torch.allclose(
            answer, raw @ w_dec + b_dec, atol=1e-4
        ):
            raise AssertionError(
                choose(
                    "A negative pre-activation among the top k must become 0 (SAELens' TopK "
                    "applies a ReLU to the k values it keeps).",
                    "前 k 个中为负的预激活必须变成 0（SAELens 的 TopK 对保留的 k 个值再做 ReLU）。",
                )
            )
        assert torch.allclose(answer, expected, atol=1e-4), choose(
            f"Your output differs from TopK(x @ W_enc + b_enc) @ W_dec + b_dec (case n={n}, "
            f"k={k}). Hint: topk along the last dimension, then scatter the kept values back.",
            f"你的输出与 TopK(x @ W_enc + b_enc) @ W_dec + b_dec 不一致（用例 n={n}, k={k}）。"
            "提示：沿最后一维取 topk，再把保留的值放回原位置。",
        )
    print(
        choose(
            "Correct: your forward pass matches a TopK transcoder's on every test case.",
            "正确：在所有测试用例上，你的前向传播与 TopK 转码器一致。",
        )
    )
    return True


def check_virtual_weight(my_virtual_weight: Callable[..., Any] | None) -> bool | None:
    """Check ``my_virtual_weight(W_dec_low [d_sae_low, d], W_enc_high [d, d_sae_high], i, j)``:
    how much one unit of lower latent ``i`` adds to higher latent ``j``'s input through the residual
    stream and LayerNorm's centring, ``(W_dec_low[i] - mean(W_dec_low[i])) . W_enc_high[:, j]``."""
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    cases = [(10, 6, 12, 3, 7, 0), (8, 5, 8, 7, 2, 1)]
    # pragma: no mutate end
    for d_low, d, d_high, i, j, seed in cases:
        # Test data (not mutated: other values would serve as well)
        # pragma: no mutate start
        g = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(d_low, d, generator=g) + 0.5  # rows with a clear mean
        w_enc = torch.randn(d, d_high, generator=g) + 0.3
        # pragma: no mutate end
        answer = _as_tensor(_call(my_virtual_weight, w_dec, w_enc, i, j))
        if answer is None:
            print(_not_done())
            return None
        if answer.numel() != 1:
            raise AssertionError(
                choose(
                    f"Return one number (the weight from latent {i} to latent {j}), not a tensor "
                    f"of shape {tuple(answer.shape)}.",
                    f"请返回一个数（潜变量 {i} 到潜变量 {j} 的权重），而不是形状为 "
                    f"{tuple(answer.shape)} 的张量。",
                )
            )
        value = float(answer)
        row = w_dec[i]
        expected = float((row - row.mean()) @ w_enc[:, j])
        if abs(value - float(row @ w_enc[:, j])) < 1e-4:
            raise AssertionError(
                choose(
                    "You left out LayerNorm's centring: the higher MLP reads the residual stream "
                    "minus its mean, so subtract the mean of W_dec_low[i] first.",
                    "你漏掉了 LayerNorm 的中心化：上层 MLP 读取的是减去均值后的残差流，"
                    "所以先把 W_dec_low[i] 减去它的均值。",
                )
            )
        swapped = w_dec[j] if j < d_low else None
        if (
            swapped is not None
            and abs(value - float((swapped - swapped.mean()) @ w_enc[:, i])) < 1e-4
        ):
            raise AssertionError(
                choose(
                    "The indices are swapped: i is the lower latent (a row of W_dec_low), j the "
                    "higher one (a column of W_enc_high).",
                    "下标弄反了：i 是下层潜变量（W_dec_low 的一行），j 是上层潜变量（W_enc_high 的一列）。",
                )
            )
        assert abs(value - expected) < 1e-4, choose(
            f"Your weight {value:.4f} differs from the expected one (case i={i}, j={j}). Hint: "
            "a dot product of the centred decoder row with the encoder column.",
            f"你的权重 {value:.4f} 与预期不一致（用例 i={i}, j={j}）。"
            "提示：中心化后的解码器行与编码器列做点积。",
        )
    print(
        choose(
            "Correct: your virtual weight is the centred decoder row dotted with the encoder column.",
            "正确：你的虚拟权重是中心化的解码器行与编码器列的点积。",
        )
    )
    return True


def check_logit_edge(my_edge: Callable[..., Any] | None) -> bool | None:
    """Check ``my_edge(activation, w_dec_row [d], final_scale, ln_w [d], w_u_top [d],
    w_u_second [d])``: the edge from a last-layer latent at the last position to the logit
    difference, in the frozen model: ``activation * ((w_dec_row - mean) / final_scale * ln_w) .
    (w_u_top - w_u_second)``."""
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    cases = [(2.5, 16, 3.0, 0), (0.7, 9, 0.4, 1)]
    # pragma: no mutate end
    for activation, d, scale, seed in cases:
        # Test data (not mutated: other values would serve as well)
        # pragma: no mutate start
        g = torch.Generator().manual_seed(seed)
        row = torch.randn(d, generator=g) + 0.4
        ln_w = 0.5 + torch.rand(d, generator=g)
        w_top, w_second = torch.randn(d, generator=g), torch.randn(d, generator=g)
        # pragma: no mutate end
        answer = _call(my_edge, activation, row, scale, ln_w, w_top, w_second)
        if answer is None:
            print(_not_done())
            return None
        value = float(torch.as_tensor(answer))
        direction = w_top - w_second
        centred = row - row.mean()
        expected = float(activation * (centred / scale * ln_w) @ direction)

        def made(number: float, value: float = value, expected: float = expected) -> bool:
            # the answer equals this mistake's result, and the mistake changes the result
            return abs(value - number) < 1e-4 and abs(number - expected) > 1e-4

        if made(float(activation * (row / scale * ln_w) @ direction)):
            raise AssertionError(
                choose(
                    "The final LayerNorm subtracts the mean first: centre w_dec_row.",
                    "最后的 LayerNorm 先减去均值：请把 w_dec_row 中心化。",
                )
            )
        if made(float(activation * (centred * ln_w) @ direction)):
            raise AssertionError(
                choose(
                    "Divide by the frozen final_scale: in the local replacement model LayerNorm's "
                    "division is a fixed number, which is what keeps the graph linear.",
                    "要除以冻结的 final_scale：在局部替换模型里，LayerNorm 的除数是一个固定的数，"
                    "图因此保持线性。",
                )
            )
        if made(float(activation * (centred / scale) @ direction)):
            raise AssertionError(
                choose(
                    "Multiply by LayerNorm's weight ln_w (elementwise) before the unembedding.",
                    "在反嵌入之前，先（逐元素）乘上 LayerNorm 的权重 ln_w。",
                )
            )
        if made(float((centred / scale * ln_w) @ direction)):
            raise AssertionError(
                choose(
                    "An edge is the source's activation times its per-unit effect: multiply by "
                    "activation.",
                    "边 = 源节点的激活 × 单位效应：请乘上 activation。",
                )
            )
        assert abs(value - expected) < 1e-4, choose(
            f"Your edge {value:.4f} differs from the expected {expected:.4f} (activation "
            f"{activation}). Hint: activation * ((w_dec_row - mean) / final_scale * ln_w) . "
            "(w_u_top - w_u_second).",
            f"你的边 {value:.4f} 与预期的 {expected:.4f} 不一致（activation {activation}）。"
            "提示：activation * ((w_dec_row - mean) / final_scale * ln_w) . (w_u_top - w_u_second)。",
        )
    print(
        choose(
            "Correct: your edge matches the frozen model's on every test case.",
            "正确：在所有测试用例上，你的边与冻结模型中的一致。",
        )
    )
    return True
