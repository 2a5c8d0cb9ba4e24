"""Tutorial 5's checkers: each accepts the right answer, reminds on an unfinished one, and refuses
the common mistakes with the hint that names them."""

from __future__ import annotations

import pytest
import torch
from exercise_answers import dense_relu, right_edge, right_forward, right_virtual_weight

from utils.exercises import (
    check_logit_edge,
    check_transcoder_forward,
    check_virtual_weight,
)


def not_done(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "checker, answer",
    [
        (check_transcoder_forward, right_forward),
        (check_virtual_weight, right_virtual_weight),
        (check_logit_edge, right_edge),
    ],
)
def test_right_answers_pass_and_unfinished_ones_remind(checker, answer, capsys):
    assert checker(answer) is True
    assert "Correct" in capsys.readouterr().out
    assert checker(None) is None
    assert checker(not_done) is None
    assert checker(lambda *a: None) is None
    assert "Not answered yet" in capsys.readouterr().out


def test_a_right_answer_in_another_form_passes():
    """float64 or a NumPy array: learners often compute in either."""
    assert check_transcoder_forward(lambda *a: right_forward(*a).double()) is True
    assert check_transcoder_forward(lambda *a: right_forward(*a).numpy()) is True


def no_bias(x, w_enc, b_enc, w_dec, b_dec, k):
    return right_forward(x, w_enc, b_enc, w_dec, b_dec, k) - b_dec


def topk_without_relu(x, w_enc, b_enc, w_dec, b_dec, k):
    pre = x @ w_enc + b_enc
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values) @ w_dec + b_dec


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (dense_relu, "ReLU to every latent"),
        (no_bias, "b_dec is missing"),
        (topk_without_relu, "negative pre-activation"),
        (lambda *a: right_forward(*a)[:, :1], "must return"),
        (lambda *a: right_forward(*a) + 0.01, "differs"),
    ],
)
def test_forward_refuses_the_common_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_transcoder_forward(wrong)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda w_dec, w_enc, i, j: float(w_dec[i] @ w_enc[:, j]), "centring"),
        (lambda w_dec, w_enc, i, j: right_virtual_weight(w_dec, w_enc, j, i), "swapped"),
        (lambda w_dec, w_enc, i, j: w_dec[i] @ w_enc, "one number"),
        (lambda *a: right_virtual_weight(*a) + 0.01, "differs"),
    ],
)
def test_virtual_weight_refuses_the_common_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_virtual_weight(wrong)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        # each mistake's own diagnosis (the closing hint names every ingredient, so a test
        # matching only "ln_w" would pass on that hint too)
        (lambda a, r, s, w, t, u: float(a * (r / s * w) @ (t - u)), "subtracts the mean first"),
        (lambda a, r, s, w, t, u: right_edge(a, r, 1.0, w, t, u), "Divide by the frozen"),
        (
            lambda a, r, s, w, t, u: right_edge(a, r, s, torch.ones_like(w), t, u),
            "Multiply by LayerNorm's weight ln_w",
        ),
        (lambda a, r, s, w, t, u: right_edge(1.0, r, s, w, t, u), "multiply by activation"),
        (lambda *args: right_edge(*args) + 0.01, "differs"),
    ],
)
def test_logit_edge_refuses_the_common_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_logit_edge(wrong)


def test_messages_follow_the_language(monkeypatch, capsys):
    monkeypatch.setenv("SAE_BOOK_LANG", "zh")
    assert check_virtual_weight(right_virtual_weight) is True
    assert "正确" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="中心化"):
        check_virtual_weight(lambda w_dec, w_enc, i, j: float(w_dec[i] @ w_enc[:, j]))
