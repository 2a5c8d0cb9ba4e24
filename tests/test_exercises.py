"""Unit tests for utils.exercises: right answers pass, wrong ones fail with a hint, and unfinished
ones print a reminder and return None (the convention in the module's docstring)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from random_models import D_MODEL, make_cfg

from utils import exercises as E
from utils import features as F


def test_check_l0():
    assert E.check_l0(lambda acts: (acts > 0).sum(-1))
    assert E.check_l0(None) is None

    def unfinished(acts):
        raise NotImplementedError

    assert E.check_l0(unfinished) is None
    assert E.check_l0(lambda acts: None) is None
    with pytest.raises(AssertionError, match="shape"):
        E.check_l0(lambda acts: (acts > 0).sum())
    with pytest.raises(AssertionError, match="non-zero"):
        E.check_l0(lambda acts: (acts > 1).sum(-1))


def test_check_explained_variance():
    def right(x, x_hat):
        return 1 - (x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()

    assert E.check_explained_variance(right)
    assert E.check_explained_variance(None) is None
    with pytest.raises(AssertionError, match="expected"):
        E.check_explained_variance(lambda x, x_hat: 1 - (x - x_hat).pow(2).mean() / x.pow(2).mean())


def test_check_token_detector(sample):
    token = E.pick_exercise_token(sample, min_chars=2)
    assert token in sample.token_counts().index
    table = F.features_for_token(sample, token, k=sample.d_sae)
    best, worst = table.iloc[0], table.iloc[-1]
    scores = E.token_detector_scores(sample, token, int(best["feature"]))
    assert scores["precision"] == pytest.approx(best["precision"])
    assert scores["f1"] == pytest.approx(best["f1"])
    assert E.check_token_detector(sample, token, None) is None
    assert E.check_token_detector(sample, token, int(best["feature"]))
    # The sample has poor detectors of the token and features that never fire on it: a check
    # that accepted any feature, or scored a silent one above 0, fails here.
    assert worst["f1"] < 0.9 * best["f1"]
    with pytest.raises(AssertionError, match="better"):
        E.check_token_detector(sample, token, int(worst["feature"]))
    never = sorted(set(range(sample.d_sae)) - set(table["feature"]))
    assert never, "every feature fires on the token: the sample cannot test a silent one"
    assert E.token_detector_scores(sample, token, never[0])["f1"] == 0.0
    with pytest.raises(AssertionError, match="better"):
        E.check_token_detector(sample, token, never[0])
    with pytest.raises(IndexError):
        E.check_token_detector(sample, token, sample.d_sae)


def test_pick_exercise_token_falls_back_to_the_most_common(sample):
    assert E.pick_exercise_token(sample, min_chars=50) == sample.token_counts().index[0]


# ---- tutorial 2 --------------------------------------------------------------------------------


def test_check_dead_latents(capsys):
    density = np.array([0.0, 0.2, 0.0, 0.3])
    assert E.check_dead_latents(lambda d: np.flatnonzero(d == 0), density) is True
    assert E.check_dead_latents(None, density) is None

    def unfinished(d):
        raise NotImplementedError

    assert E.check_dead_latents(unfinished, density) is None
    with pytest.raises(AssertionError, match="Hint"):
        E.check_dead_latents(lambda d: np.flatnonzero(d < 1e-3), density)  # "rare" is not dead
    assert "Not answered yet" in capsys.readouterr().out


def test_check_expansion_config():
    from sae_lens import TopKTrainingSAEConfig

    cfg = make_cfg("topk")
    cfg4 = replace(cfg, sae=TopKTrainingSAEConfig(d_in=D_MODEL, d_sae=4 * D_MODEL, k=8))
    assert E.check_expansion_config(cfg4, d_in=D_MODEL, expansion_factor=4, k=8) is True
    assert E.check_expansion_config(None, d_in=D_MODEL, expansion_factor=4, k=8) is None
    with pytest.raises(AssertionError, match="d_sae"):
        E.check_expansion_config(cfg, d_in=D_MODEL, expansion_factor=4, k=8)
    with pytest.raises(AssertionError, match="TopKTrainingSAEConfig"):
        E.check_expansion_config(make_cfg("standard"), d_in=D_MODEL, expansion_factor=4, k=8)


def test_check_ce_loss_score(capsys):
    metrics = {
        "ce_loss_without_sae": 2.0,
        "ce_loss_with_sae": 2.5,
        "ce_loss_zero_ablation": 7.0,
        "ce_loss_score": 0.9,
    }

    def right(without, with_sae, zero):
        return (zero - with_sae) / (zero - without)

    assert E.check_ce_loss_score(right, metrics) is True
    assert "0.9000" in capsys.readouterr().out
    assert E.check_ce_loss_score(None, metrics) is None

    def unfinished(without, with_sae, zero):
        raise NotImplementedError

    assert E.check_ce_loss_score(unfinished, metrics) is None
    assert "Not answered yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Hint"):  # the share of the loss kept, not recovered
        E.check_ce_loss_score(
            lambda without, with_sae, zero: (with_sae - without) / (zero - without), metrics
        )
    with pytest.raises(AssertionError, match="Hint"):  # right on the SAE's losses only
        E.check_ce_loss_score(lambda *losses: 0.9, metrics)


# ---- what each checker prints, its data, and the mistakes it exists to catch -------------------


def test_check_l0_prints_its_verdicts(capsys):
    assert E.check_l0(lambda acts: (acts > 0).sum(-1))
    assert "Correct: your L0 matches on every test case." in capsys.readouterr().out
    assert E.check_l0(None) is None
    assert "Not answered yet" in capsys.readouterr().out
    # at least one of its cases has a token with no active latent (the all-zero case)
    with pytest.raises(AssertionError, match="non-zero"):
        E.check_l0(lambda acts: (acts > 0).sum(-1).clamp(min=1))


def test_check_explained_variance_prints_its_verdicts_and_rejects_mistakes(capsys):
    def right(x, x_hat):
        return 1 - (x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()

    assert E.check_explained_variance(right)
    assert "Correct: your explained variance matches" in capsys.readouterr().out
    assert E.check_explained_variance(None) is None
    assert "Not answered yet" in capsys.readouterr().out
    about_zero = lambda x, x_hat: 1 - (x - x_hat).pow(2).sum(-1).mean() / x.pow(2).sum(-1).mean()  # noqa: E731
    per_token = lambda x, x_hat: (  # noqa: E731
        1 - (x - x_hat).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1)
    ).mean()
    for wrong in (about_zero, per_token):
        with pytest.raises(AssertionError, match="expected"):
            E.check_explained_variance(wrong)


def test_token_detector_scores_of_a_weak_and_a_silent_latent(sample):
    token = E.pick_exercise_token(sample, min_chars=2)
    table = F.features_for_token(sample, token, k=sample.d_sae)
    worst = table.iloc[-1]  # fires on the token, but ranks last: beyond any default k
    assert len(table) > 10
    scores = E.token_detector_scores(sample, token, int(worst["feature"]))
    assert scores == pytest.approx(
        {"precision": worst["precision"], "recall": worst["recall"], "f1": worst["f1"]}
    )
    assert scores["recall"] > 0
    never = sorted(set(range(sample.d_sae)) - set(table["feature"]))[0]
    assert E.token_detector_scores(sample, token, never) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }


def test_check_token_detector_blank(sample, capsys):
    assert E.check_token_detector(sample, "the", None) is None
    assert "Not answered yet" in capsys.readouterr().out


def test_check_dead_latents_prints_the_count_and_truncates_long_lists(capsys):
    density = np.array([0.0, 0.2, 0.0, 0.3])
    assert E.check_dead_latents(lambda d: np.flatnonzero(d == 0), density)
    assert "Correct: 2 of 4 latents never fired" in capsys.readouterr().out

    def message(n_dead, answer):
        with pytest.raises(AssertionError) as error:
            E.check_dead_latents(answer, np.r_[np.zeros(n_dead), 0.5])
        return str(error.value)

    # ten dead latents are listed whole, eleven are cut at ten with "..."
    assert "..." not in message(10, lambda d: np.arange(1, 11))
    assert "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]..." in message(11, lambda d: np.arange(2))
    assert "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]..." in message(2, lambda d: np.arange(11))
    # the made-up densities: exactly zero is dead, one firing in a million is not
    with pytest.raises(AssertionError, match="exactly 0"):
        E.check_dead_latents(lambda d: np.flatnonzero(d < 1e-3), density)


def test_check_expansion_config_names_what_is_wrong(capsys):
    from sae_lens import TopKTrainingSAEConfig

    cfg = make_cfg("topk")

    def with_sae(**fields):
        return replace(
            cfg,
            sae=TopKTrainingSAEConfig(**({"d_in": D_MODEL, "d_sae": 4 * D_MODEL, "k": 8} | fields)),
        )

    assert E.check_expansion_config(with_sae(), d_in=D_MODEL, expansion_factor=4, k=8)
    assert f"Config OK: TopK, d_sae = {4 * D_MODEL} (4 x d_in), k = 8." in capsys.readouterr().out
    assert E.check_expansion_config(None, d_in=D_MODEL, expansion_factor=4, k=8) is None
    assert "Not answered yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"keep k = 8 so that only the width changes, got 4"):
        E.check_expansion_config(with_sae(k=4), d_in=D_MODEL, expansion_factor=4, k=8)
    with pytest.raises(AssertionError, match=rf"d_model \({D_MODEL}\), got {D_MODEL + 1}"):
        E.check_expansion_config(
            with_sae(d_in=D_MODEL + 1, d_sae=4 * D_MODEL), d_in=D_MODEL, expansion_factor=4, k=8
        )
    with pytest.raises(AssertionError, match=rf"4 x {D_MODEL} = {4 * D_MODEL}, got {2 * D_MODEL}"):
        E.check_expansion_config(with_sae(d_sae=2 * D_MODEL), d_in=D_MODEL, expansion_factor=4, k=8)
    with pytest.raises(AssertionError, match="got StandardTrainingSAEConfig"):
        E.check_expansion_config(make_cfg("standard"), d_in=D_MODEL, expansion_factor=4, k=8)


def test_check_ce_loss_score_rejects_a_percentage_and_a_clamp():
    metrics = {
        "ce_loss_without_sae": 2.0,
        "ce_loss_with_sae": 2.5,
        "ce_loss_zero_ablation": 7.0,
        "ce_loss_score": 0.9,
    }
    with pytest.raises(AssertionError, match="Hint"):  # 90 (%) for 0.9
        E.check_ce_loss_score(lambda w, s, z: 100 * (z - s) / (z - w), metrics)
    # one made-up SAE is worse than ablating (a negative score): a clamp to [0, 1] fails there
    with pytest.raises(AssertionError, match="Hint"):
        E.check_ce_loss_score(lambda w, s, z: min(max((z - s) / (z - w), 0.0), 1.0), metrics)


def test_checkers_are_strict_about_numbers():
    # an answer off by 0.01 is wrong: the tolerances are for float rounding, not for mistakes
    def ev(x, x_hat):
        return 1 - (x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()

    with pytest.raises(AssertionError, match="expected"):
        E.check_explained_variance(lambda x, x_hat: ev(x, x_hat) + 0.01)
    metrics = {
        "ce_loss_without_sae": 2.0,
        "ce_loss_with_sae": 2.5,
        "ce_loss_zero_ablation": 7.0,
        "ce_loss_score": 0.9,
    }
    with pytest.raises(AssertionError, match="Hint"):
        E.check_ce_loss_score(lambda w, s, z: (z - s) / (z - w) + 0.01, metrics)


def test_check_l0_data_is_sparse():
    # counting every latent is wrong on the random cases too, not only on the all-zero one
    seen = []

    def spy(acts):
        seen.append(acts)
        return (acts > 0).sum(-1)

    assert E.check_l0(spy)
    assert all((acts == 0).any() and (acts > 0).any() for acts in seen[:2])
    assert not seen[2].any()


def test_check_explained_variance_data():
    # a mean far from zero (so "variance about zero" is wrong) and a reconstruction that is
    # neither perfect nor empty
    seen = []

    def spy(x, x_hat):
        seen.append((x, x_hat))
        return 1 - (x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()

    assert E.check_explained_variance(spy)
    x, noisy = seen[0]
    assert x.mean(0).norm() > 2
    assert 0.5 < float(spy(x, noisy)) < 0.99


def test_check_token_detector_accepts_the_best_latent_at_tolerance_one(sample):
    token = E.pick_exercise_token(sample, min_chars=2)
    best = int(F.features_for_token(sample, token, k=1)["feature"].iloc[0])
    assert E.check_token_detector(sample, token, best, tolerance=1.0)


def test_check_dead_latents_accepts_a_column_of_indices():
    # np.argwhere and torch.nonzero give [n, 1]: the checker flattens them
    density = np.array([0.0, 0.2, 0.0, 0.3])
    assert E.check_dead_latents(lambda d: np.argwhere(d == 0), density)


def test_pick_exercise_token_by_hand(sample):
    # among the 50 commonest tokens, the letters-only ones of at least 3 letters (after the
    # leading space), the one whose best latent (by F1, over every latent) detects it best
    counts = sample.token_counts()
    words = [t for t in counts.index[:50] if t.strip().isalpha() and len(t.strip()) >= 3]
    assert len(words) >= 2

    def best_f1(token):
        return max(E.token_detector_scores(sample, token, f)["f1"] for f in range(sample.d_sae))

    scores = {t: best_f1(t) for t in words}
    expected = max(scores, key=scores.get)
    assert expected != max(words), "the test needs a pick that is not the alphabetically last"
    assert E.pick_exercise_token(sample) == expected
    # a narrower pool: only the 5 commonest tokens may be picked
    pool = [t for t in counts.index[:5] if t.strip().isalpha() and len(t.strip()) >= 3]
    assert not pool or E.pick_exercise_token(sample, n_common=5) in pool
