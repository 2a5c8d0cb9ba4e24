"""The exercise checkers speak the edition's language: every message a reader sees (the printed
lines, a wrong answer's hint, the reminder for an unfinished answer) is English in the English
notebooks and Chinese in the Chinese ones, chosen when the checker runs (utils/language.py).

Each checker is run with ``SAE_BOOK_LANG`` set to ``en`` and to ``zh`` on a right answer, a wrong
one and a blank one (the same answers as tests/test_exercises*.py use)."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from exercise_answers import (
    dense_relu,
    most_active_latent,
    right_ablated,
    right_edge,
    right_forward,
    right_virtual_weight,
)
from random_models import D_MODEL, make_cfg
from scipy.optimize import linear_sum_assignment

from i18n.chinese import has_chinese
from utils import exercises as E
from utils import features as F

NOT_DONE_EN = "Not answered yet"
NOT_DONE_ZH = "还没有作答"


# ---- the answers: right, wrong and blank, per checker ------------------------------------------


def _right_explained_variance(x, x_hat):
    return 1 - (x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()


def _right_mcc(decoder, true):
    cos = (
        torch.nn.functional.normalize(decoder, dim=1) @ torch.nn.functional.normalize(true, dim=1).T
    ).abs()
    rows, cols = linear_sum_assignment(1 - cos.numpy())
    return cos[rows, cols].mean().item()


def _greedy_mcc(decoder, true):
    cos = (
        torch.nn.functional.normalize(decoder, dim=1) @ torch.nn.functional.normalize(true, dim=1).T
    ).abs()
    return cos.max(dim=0).values.mean().item()


def _right_absorption(latent, parent, child):
    with_child = latent[parent & child].float().mean()
    alone = latent[parent & ~child].float().mean()
    return float(1 - with_child / alone)


def _ignores_parent(latent, parent, child):
    return float(1 - latent[child].float().mean() / latent[~child].float().mean())


def _unfinished(*args):
    raise NotImplementedError


DENSITY = np.array([0.0, 0.2, 0.0, 0.3])
METRICS = {
    "ce_loss_without_sae": 2.0,
    "ce_loss_with_sae": 2.5,
    "ce_loss_zero_ablation": 7.0,
    "ce_loss_score": 0.9,
}


def _expansion(which):
    from sae_lens import TopKTrainingSAEConfig

    cfg = make_cfg("topk")
    if which == "right":
        cfg = replace(cfg, sae=TopKTrainingSAEConfig(d_in=D_MODEL, d_sae=4 * D_MODEL, k=8))
    elif which == "blank":
        cfg = None
    return E.check_expansion_config(cfg, d_in=D_MODEL, expansion_factor=4, k=8)


def _token_detector(request, which):
    sample = request.getfixturevalue("sample")
    token = E.pick_exercise_token(sample, min_chars=2)
    table = F.features_for_token(sample, token, k=sample.d_sae)
    feature = {"right": int(table.iloc[0]["feature"]), "wrong": int(table.iloc[-1]["feature"])}
    return E.check_token_detector(sample, token, feature.get(which))


def _t3_inputs(request):
    model, sae = request.getfixturevalue("model"), request.getfixturevalue("sae")
    tokens = model.to_tokens("The capital of France is Paris. Hello world!")
    return model, sae, tokens


def _ablated(request, which):
    model, sae, tokens = _t3_inputs(request)
    _, latent = most_active_latent(model, sae, tokens)
    right = right_ablated

    def no_error_term(x, sae, f):
        latent_acts = sae.encode(x)
        latent_acts[:, f] = 0
        return sae.decode(latent_acts)

    answer = {"right": right, "wrong": no_error_term, "blank": _unfinished}[which]
    with torch.no_grad():
        return E.check_ablated_activation(answer, model, sae, tokens, latent)


def _attribution(request, which):
    from utils.interventions import next_token_attribution

    model, sae, tokens = _t3_inputs(request)

    def right(model, sae, tokens, target_position):
        return next_token_attribution(model, sae, tokens, [target_position]).attribution[0]

    answer = {"right": right, "wrong": lambda *a: -right(*a), "blank": None}[which]
    return E.check_attribution(answer, model, sae, tokens, tokens.shape[1] - 3)


def _steering(which):
    def right(direction, scale):
        return lambda acts, hook: acts + scale * acts.norm(dim=-1, keepdim=True) * direction

    def no_norm(direction, scale):
        return lambda acts, hook: acts + scale * direction

    return E.check_steering_hook({"right": right, "wrong": no_norm, "blank": _unfinished}[which])


# name -> run(request, which) for which in ("right", "wrong", "blank")
CHECKERS = {
    "check_l0": lambda request, which: E.check_l0(
        {
            "right": lambda acts: (acts > 0).sum(-1),
            "wrong": lambda acts: (acts > 1).sum(-1),
            "blank": None,
        }[which]
    ),
    "check_explained_variance": lambda request, which: E.check_explained_variance(
        {
            "right": _right_explained_variance,
            "wrong": lambda x, x_hat: 1 - (x - x_hat).pow(2).mean() / x.pow(2).mean(),
            "blank": _unfinished,
        }[which]
    ),
    "check_token_detector": _token_detector,
    "check_dead_latents": lambda request, which: E.check_dead_latents(
        {
            "right": lambda d: np.flatnonzero(d == 0),
            "wrong": lambda d: np.flatnonzero(d < 1e-3),
            "blank": None,
        }[which],
        DENSITY,
    ),
    "check_expansion_config": lambda request, which: _expansion(which),
    "check_ce_loss_score": lambda request, which: E.check_ce_loss_score(
        {
            "right": lambda without, with_sae, zero: (zero - with_sae) / (zero - without),
            "wrong": lambda without, with_sae, zero: (with_sae - without) / (zero - without),
            "blank": _unfinished,
        }[which],
        METRICS,
    ),
    "check_steering_hook": lambda request, which: _steering(which),
    "check_ablated_activation": _ablated,
    "check_attribution": _attribution,
    "check_mcc": lambda request, which: E.check_mcc(
        {"right": _right_mcc, "wrong": _greedy_mcc, "blank": _unfinished}[which]
    ),
    "check_shrinkage": lambda request, which: E.check_shrinkage(
        {
            "right": lambda x, x_hat: (x_hat.norm(dim=-1) / x.norm(dim=-1)).mean(),
            "wrong": lambda x, x_hat: x_hat.norm(dim=-1).mean() / x.norm(dim=-1).mean(),
            "blank": lambda x, x_hat: None,
        }[which]
    ),
    "check_absorption": lambda request, which: E.check_absorption(
        {"right": _right_absorption, "wrong": _ignores_parent, "blank": None}[which]
    ),
    "check_transcoder_forward": lambda request, which: E.check_transcoder_forward(
        {"right": right_forward, "wrong": dense_relu, "blank": None}[which]
    ),
    "check_virtual_weight": lambda request, which: E.check_virtual_weight(
        {
            "right": right_virtual_weight,
            "wrong": lambda w_dec, w_enc, i, j: float(w_dec[i] @ w_enc[:, j]),
            "blank": _unfinished,
        }[which]
    ),
    "check_logit_edge": lambda request, which: E.check_logit_edge(
        {
            "right": right_edge,
            "wrong": lambda a, r, s, w, t, u: right_edge(1.0, r, s, w, t, u),
            "blank": None,
        }[which]
    ),
}


def test_every_checker_is_covered():
    assert set(CHECKERS) == {name for name in E.__all__ if name.startswith("check_")}


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_speaks_chinese_in_the_chinese_edition(name, request, monkeypatch, capsys):
    monkeypatch.setenv("SAE_BOOK_LANG", "zh")
    run = CHECKERS[name]
    assert run(request, "right") is True
    out = capsys.readouterr().out
    assert "正确" in out and "Correct" not in out and "Config OK" not in out, out
    with pytest.raises(AssertionError) as wrong:
        run(request, "wrong")
    assert has_chinese(str(wrong.value)), str(wrong.value)
    assert "Hint" not in str(wrong.value)
    capsys.readouterr()
    assert run(request, "blank") is None
    out = capsys.readouterr().out
    assert NOT_DONE_ZH in out and NOT_DONE_EN not in out, out


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_speaks_english_in_the_english_edition(name, request, monkeypatch, capsys):
    monkeypatch.setenv("SAE_BOOK_LANG", "en")
    run = CHECKERS[name]
    assert run(request, "right") is True
    out = capsys.readouterr().out
    assert ("Correct" in out or "Config OK" in out) and not has_chinese(out), out
    with pytest.raises(AssertionError) as wrong:
        run(request, "wrong")
    assert str(wrong.value) and not has_chinese(str(wrong.value)), str(wrong.value)
    capsys.readouterr()
    assert run(request, "blank") is None
    out = capsys.readouterr().out
    assert NOT_DONE_EN in out and not has_chinese(out), out


def test_the_language_is_chosen_when_the_checker_runs(monkeypatch, capsys):
    """Not when utils.exercises was imported: one process can run both editions."""
    # the whole reminder, word for word: it is the one line a reader sees for an unfinished answer
    zh = "还没有作答：请先完成上面的代码单元，再运行这个检查。"
    en = "Not answered yet: fill in the cell above and run this check again."
    for language, expected in [("zh", zh), ("en", en), ("zh", zh)]:
        monkeypatch.setenv("SAE_BOOK_LANG", language)
        assert E.check_l0(None) is None
        assert capsys.readouterr().out.strip() == expected


def test_numbers_are_written_the_same_in_both_editions(monkeypatch, capsys):
    outputs = {}
    for language in ("en", "zh"):
        monkeypatch.setenv("SAE_BOOK_LANG", language)
        right = CHECKERS["check_ce_loss_score"]
        assert right(None, "right")
        outputs[language] = capsys.readouterr().out
    numbers = [re.findall(r"\d+\.\d+", text) for text in outputs.values()]
    assert numbers[0] == numbers[1] == ["0.9000", "0.9000"]


def test_the_silent_latent_error_follows_the_edition(model, sae, monkeypatch):
    tokens = model.to_tokens("The capital of France is Paris. Hello world!")
    x = model.run_with_cache(tokens)[1]["blocks.1.hook_resid_pre"][0]
    silent = int((~(sae.encode(x) > 0).any(0)).nonzero()[0, 0])
    with torch.no_grad():
        monkeypatch.setenv("SAE_BOOK_LANG", "zh")
        with pytest.raises(
            ValueError, match=f"潜变量 {silent} 在这 {len(x)} 个 token 上都没有激活"
        ):
            E.check_ablated_activation(lambda x, sae, f: x, model, sae, tokens, silent)
        monkeypatch.setenv("SAE_BOOK_LANG", "en")
        with pytest.raises(ValueError, match=f"Latent {silent} does not fire"):
            E.check_ablated_activation(lambda x, sae, f: x, model, sae, tokens, silent)


def _message_nodes(tree: ast.AST):
    """Every message a checker module shows: print arguments, assert messages, and the arguments
    of raised AssertionError / ValueError."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            yield from node.args
        elif isinstance(node, ast.Assert) and node.msg is not None:
            yield node.msg
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            if getattr(node.exc.func, "id", None) in {"AssertionError", "ValueError"}:
                yield from node.exc.args


@pytest.mark.parametrize(
    "module", sorted(Path(E.__file__).parent.glob("t*.py")), ids=lambda path: path.name
)
def test_every_message_goes_through_choose(module):
    """Branches the tests above do not reach (other wrong answers) are bilingual too: each message
    is a ``choose(en, zh)`` call or the ``_not_done()`` reminder, never a bare English string."""
    source = module.read_text(encoding="utf-8")
    if "__mutmut_" in source:  # mutmut's copy holds every mutant's text, print(None) included
        pytest.skip("a scan of the book's own source, not of a mutation run's generated copy")
    tree = ast.parse(source)
    bare = [
        f"{module.name}:{node.lineno}"
        for node in _message_nodes(tree)
        if not (
            isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"choose", "_not_done"}
        )
    ]
    assert not bare, f"messages not chosen by the edition's language: {bare}"
