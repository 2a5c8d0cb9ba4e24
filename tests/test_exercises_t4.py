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


def spy_on(checker, right):
    """Run ``checker`` with a function that answers right and records every case it is given."""
    seen = []

    def spy(*args):
        seen.append(tuple(a.clone() for a in args))
        return right(*args)

    assert checker(spy)
    return seen


def test_check_absorption_cases_are_the_four_patterns_it_names(capsys):
    # The checker promises four firing patterns; worked out here from the firing masks alone.
    seen = spy_on(E.check_absorption, right_absorption)
    assert "4 firing patterns" in capsys.readouterr().out
    assert len(seen) == 4
    parent, child = seen[0][1], seen[0][2]
    assert all(torch.equal(p, parent) and torch.equal(c, child) for _, p, c in seen)
    assert not (child & ~parent).any(), "a child fires without its parent"
    assert (parent & child).sum() >= 20 and (parent & ~child).sum() >= 20
    rates = [right_absorption(*case) for case in seen]
    assert rates[0] == pytest.approx(1.0)  # silenced by every child
    assert rates[1] == pytest.approx(0.0)  # fires whenever the parent does
    assert 0.2 < rates[2] < 0.9  # partly absorbed
    fully, always, partly, leaky = (case[0] for case in seen)
    assert torch.equal(fully, parent & ~child) and torch.equal(always, parent)
    assert not (partly & ~parent).any()
    assert (leaky & ~parent).any(), "the last pattern must also fire without the parent"


@pytest.mark.parametrize(
    "wrong",
    [
        lambda latent, parent, child: float(  # with and without the child swapped
            1 - latent[parent & ~child].float().mean() / latent[parent & child].float().mean()
        ),
        lambda latent, parent, child: float(  # the ratio itself, not one minus it
            latent[parent & child].float().mean() / latent[parent & ~child].float().mean()
        ),
        lambda latent, parent, child: float(  # against the rate over every sample
            1 - latent[parent & child].float().mean() / latent.float().mean()
        ),
    ],
    ids=["swapped", "no one minus", "rate over all samples"],
)
def test_check_absorption_rejects_common_mistakes(wrong):
    with pytest.raises(AssertionError, match="expected"):
        E.check_absorption(wrong)


def test_check_shrinkage_cases_and_mistakes(capsys):
    def right(x, x_hat):
        return (x_hat.norm(dim=-1) / x.norm(dim=-1)).mean()

    seen = spy_on(E.check_shrinkage, right)
    assert "3 cases" in capsys.readouterr().out
    assert len(seen) == 3
    # by hand: x_hat = x / 2 shrinks every row to half, a copy not at all
    assert torch.equal(seen[0][1], 0.5 * seen[0][0]) and torch.equal(seen[1][1], seen[1][0])
    ratios = seen[2][1].norm(dim=-1) / seen[2][0].norm(dim=-1)
    assert ratios.std() > 0.1, "the noisy case must shrink rows by different amounts"
    with pytest.raises(AssertionError, match="expected"):  # the squared norms
        E.check_shrinkage(lambda x, x_hat: (x_hat.pow(2).sum(-1) / x.pow(2).sum(-1)).mean())
    with pytest.raises(AssertionError, match="expected"):  # per element, not per row
        E.check_shrinkage(lambda x, x_hat: (x_hat.abs() / x.abs()).mean())


def test_check_mcc_cases(capsys):
    seen = spy_on(E.check_mcc, right_mcc)
    assert "4 cases" in capsys.readouterr().out
    assert [len(d) for d, _ in seen] == [12, 12, 20, 3]
    assert all(t.shape == (12, 5) for _, t in seen)
    assert right_mcc(*seen[0]) == pytest.approx(1.0)  # the same directions
    assert right_mcc(*seen[1]) < 0.95  # random directions do not all match
    with pytest.raises(AssertionError, match="expected"):  # rows and columns swapped
        E.check_mcc(lambda d, t: right_mcc(d.T, t.T))


def wrong_on_call(i, right):
    """Right on every case but the ``i``-th (0-based), off by 0.5 there."""
    calls = []

    def answer(*args):
        calls.append(1)
        return right(*args) + (0.5 if len(calls) == i + 1 else 0.0)

    return answer


def right_shrinkage(x, x_hat):
    return float((x_hat.norm(dim=-1) / x.norm(dim=-1)).mean())


CASE_NAMES = {
    "check_mcc": (
        right_mcc,
        [
            (
                "a shuffled, rescaled and sign-flipped copy",
                "真实特征打乱顺序、缩放并翻转符号后的副本",
            ),
            ("For random directions", "对随机方向"),
            ("For more latents than features", "对潜变量多于特征的情况"),
            ("For fewer latents", "对潜变量较少的情况"),
        ],
    ),
    "check_shrinkage": (
        right_shrinkage,
        [
            ("For x_hat = x / 2", "对 x_hat = x / 2 的情况"),
            ("For a perfect reconstruction", "对完美的重构"),
            ("For a noisy reconstruction", "对带噪声的重构"),
        ],
    ),
    "check_absorption": (
        right_absorption,
        [
            ("For a latent silenced by every child", "对被每个子特征压制的潜变量"),
            ("For a latent that fires whenever the parent does", "对父特征激活时总是激活的潜变量"),
            ("For a partly absorbed latent", "对部分被吸收的潜变量"),
            ("For a latent that also fires without the parent", "对父特征不激活时也会激活的潜变量"),
        ],
    ),
}


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("checker", sorted(CASE_NAMES))
def test_a_failure_names_the_case_it_failed_on(checker, language, monkeypatch):
    monkeypatch.setenv("SAE_BOOK_LANG", language)
    right, names = CASE_NAMES[checker]
    for i, (english, chinese) in enumerate(names):
        with pytest.raises(AssertionError) as error:
            getattr(E, checker)(wrong_on_call(i, right))
        assert (english if language == "en" else chinese) in str(error.value)


@pytest.mark.parametrize("checker", sorted(CASE_NAMES))
def test_a_blank_answer_prints_the_reminder(checker, capsys):
    assert getattr(E, checker)(lambda *args: None) is None
    assert "Not answered yet" in capsys.readouterr().out


def test_check_absorption_rejects_a_percentage():
    with pytest.raises(AssertionError, match="expected"):
        E.check_absorption(lambda *args: 100 * right_absorption(*args))


@pytest.mark.parametrize("checker", sorted(CASE_NAMES))
def test_an_answer_off_by_a_hundredth_is_wrong(checker):
    right, _ = CASE_NAMES[checker]
    with pytest.raises(AssertionError, match="expected"):
        getattr(E, checker)(lambda *args: right(*args) + 0.01)
