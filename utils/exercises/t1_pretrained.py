"""The checkers of tutorial 1: analysing a pretrained SAE."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import features as F
from ..language import choose
from ._common import _call, _not_done


def _random_feature_acts(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    generator = torch.Generator().manual_seed(seed)
    acts = torch.randn(shape, generator=generator).relu()
    acts[acts < 0.8] = 0  # sparse, like real SAE latents
    # pragma: no mutate end
    return acts


def check_l0(my_l0: Callable[[torch.Tensor], torch.Tensor] | None) -> bool | None:
    """Check ``my_l0(feature_acts [..., d_sae]) -> [...]`` (active latents per token)."""
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    cases = [
        _random_feature_acts((7, 37), 0),
        _random_feature_acts((2, 5, 123), 1),
        torch.zeros(3, 11),
    ]
    # pragma: no mutate end
    for acts in cases:
        answer = _call(my_l0, acts)
        if answer is None:
            print(_not_done())
            return None
        answer = torch.as_tensor(answer)
        expected = F.l0_per_token(acts)
        assert answer.shape == expected.shape, choose(
            f"For feature_acts of shape {tuple(acts.shape)} your function returned shape "
            f"{tuple(answer.shape)}; expected {tuple(expected.shape)} (one count per token: reduce the last dimension).",
            f"对形状为 {tuple(acts.shape)} 的 feature_acts，你的函数返回的形状是 "
            f"{tuple(answer.shape)}；应为 {tuple(expected.shape)}（每个 token 一个计数：对最后一维求和）。",
        )
        assert torch.equal(answer.long(), expected.long()), choose(
            "The counts differ from the number of non-zero activations per token. "
            "Hint: compare with zero, then sum over the last dimension.",
            "计数与每个 token 的非零激活数不一致。提示：先与零比较，再对最后一维求和。",
        )
    print(
        choose(
            "Correct: your L0 matches on every test case.",
            "正确：你的 L0 在所有测试用例上都一致。",
        )
    )
    return True


def check_explained_variance(
    my_explained_variance: Callable[[torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_explained_variance(x [n, d_in], x_hat [n, d_in]) -> float``."""
    # Test data (not mutated: other values would serve as well)
    # pragma: no mutate start
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(50, 24, generator=generator) * 3 + 1
    noisy = x + 0.5 * torch.randn(50, 24, generator=generator)
    # pragma: no mutate end
    cases = [
        (x, noisy),
        (x, torch.zeros_like(x)),
        (x, x.clone()),
    ]
    for x_case, x_hat in cases:
        answer = _call(my_explained_variance, x_case, x_hat)
        if answer is None:
            print(_not_done())
            return None
        answer = float(torch.as_tensor(answer))
        expected = F.reconstruction_metrics(x_case, x_hat)["explained_variance"]
        assert abs(answer - expected) < 1e-3, choose(
            f"Got {answer:.4f}, expected {expected:.4f}. Hint: 1 - (mean over tokens of the squared "
            "error summed over d_in) / (mean over tokens of |x - mean(x)|^2), where mean(x) is the mean "
            "activation vector over tokens.",
            f"得到 {answer:.4f}，应为 {expected:.4f}。提示：1 - （平方误差在 d_in 上求和后对 token "
            "取平均）/（|x - mean(x)|^2 对 token 取平均），其中 mean(x) 是各 token 激活向量的平均。",
        )
    print(
        choose(
            "Correct: your explained variance matches on every test case.",
            "正确：你的解释方差在所有测试用例上都一致。",
        )
    )
    return True


def token_detector_scores(sample: F.FeatureSample, token: str, feature: int) -> dict[str, float]:
    """How well ``feature`` detects ``token`` in ``sample``: ``precision`` (share of the feature's
    firings that are on the token), ``recall`` (share of the token's occurrences where it fires)
    and their harmonic mean ``f1`` (0 when it never fires on the token)."""
    feature = sample.check_feature(feature)
    table = F.features_for_token(sample, token, k=sample.d_sae)
    row = table[table["feature"] == feature]
    if len(row) == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {name: float(row[name].iloc[0]) for name in ("precision", "recall", "f1")}


def pick_exercise_token(sample: F.FeatureSample, n_common: int = 50, min_chars: int = 3) -> str:
    """A common word-like token (letters only, at least ``min_chars`` of them after any leading
    space) among the ``n_common`` most frequent in ``sample`` whose best detector feature is
    cleanest (highest F1). Falls back to the most common token."""
    counts = sample.token_counts()
    words = [
        t for t in counts.index[:n_common] if t.strip().isalpha() and len(t.strip()) >= min_chars
    ]
    if not words:
        return str(counts.index[0])
    best = {t: float(F.features_for_token(sample, t, k=1)["f1"].iloc[0]) for t in words}
    return max(best, key=best.get)


def check_token_detector(
    sample: F.FeatureSample, token: str, feature: int | None, tolerance: float = 0.9
) -> bool | None:
    """Check that ``feature`` is (nearly) the best detector of ``token`` in ``sample``: its F1 score
    must be at least ``tolerance`` times the best feature's."""
    if feature is None:
        print(_not_done())
        return None
    scores = token_detector_scores(sample, token, feature)
    best = float(F.features_for_token(sample, token, k=1)["f1"].iloc[0])
    print(
        choose(
            f"Latent {feature} on {token!r}: fires on {scores['recall']:.0%} of the token's occurrences, "
            f"and {scores['precision']:.0%} of the latent's firings are on it (F1 {scores['f1']:.2f}; "
            f"the best latent in this sample has F1 {best:.2f}).",
            f"潜变量 {feature} 与 {token!r}：在该 token 的 {scores['recall']:.0%} 次出现上激活，"
            f"它的激活中有 {scores['precision']:.0%} 落在该 token 上（F1 {scores['f1']:.2f}；"
            f"这个样本中最好的潜变量 F1 为 {best:.2f}）。",
        )
    )
    assert scores["f1"] >= tolerance * best, choose(
        "Another latent detects this token much better. Hint: for each latent, count how often it "
        "fires on the token and how often it fires at all (sample.firing_counts).",
        "另有潜变量对这个 token 的检测效果好得多。提示：对每个潜变量，数一数它在该 token 上"
        "激活了多少次、总共激活了多少次（sample.firing_counts）。",
    )
    print(
        choose(
            "Correct: this latent is a detector for the token.",
            "正确：这个潜变量是该 token 的检测器。",
        )
    )
    return True
