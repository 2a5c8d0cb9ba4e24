"""Unit tests for tutorial 3's exercise checkers: right answers pass, wrong ones fail with a hint,
blanks are tolerated."""

from __future__ import annotations

import pytest
import torch
from exercise_answers import most_active_latent, right_ablated

from utils import exercises as E

# `model` and `sae` are tests/conftest.py's random model and SAE.


@pytest.fixture(scope="module")
def tokens(model):
    return model.to_tokens("The capital of France is Paris. Hello world!")


def unfinished(*args):
    raise NotImplementedError


def test_check_steering_hook():
    def right(direction, scale):
        return lambda acts, hook: acts + scale * acts.norm(dim=-1, keepdim=True) * direction

    assert E.check_steering_hook(right)
    assert E.check_steering_hook(None) is None
    assert E.check_steering_hook(unfinished) is None
    assert E.check_steering_hook(lambda d, s: unfinished) is None
    # forgetting the norm gets its own diagnosis, not the generic message
    with pytest.raises(AssertionError, match=r"Your hook adds scale \* direction"):
        E.check_steering_hook(lambda d, s: lambda acts, hook: acts + s * d)
    with pytest.raises(AssertionError, match="last dimension"):  # one norm for the whole tensor
        E.check_steering_hook(lambda d, s: lambda acts, hook: acts + s * acts.norm() * d)
    with pytest.raises(AssertionError, match="shape"):
        E.check_steering_hook(lambda d, s: lambda acts, hook: acts[0])


@pytest.mark.parametrize(
    "wrong",
    [
        lambda d, s: lambda acts, hook: acts + abs(s) * acts.norm(dim=-1, keepdim=True) * d,
        lambda d, s: lambda acts, hook: acts + s * acts.norm(dim=1, keepdim=True) * d,
        lambda d, s: lambda acts, hook: acts + s * acts.norm(dim=-1).mean() * d,
        lambda d, s: lambda acts, hook: s * acts.norm(dim=-1, keepdim=True) * d,
    ],
    ids=["sign of the scale dropped", "norm over positions", "one mean norm", "push only"],
)
def test_check_steering_hook_rejects_common_mistakes(wrong):
    # each caught only if the cases have a negative scale, several positions of different norms
    # (in more than one batch row) and non-zero activations: what the checker's data is for
    with pytest.raises(AssertionError, match="last dimension"):
        E.check_steering_hook(wrong)


def test_check_ablated_activation(model, sae, tokens):
    _, latent = most_active_latent(model, sae, tokens)
    right = right_ablated

    def no_error_term(x, sae, f):
        latent_acts = sae.encode(x)
        latent_acts[:, f] = 0
        return sae.decode(latent_acts)

    def wrong_latent(x, sae, f):
        return right(x, sae, (f + 1) % sae.cfg.d_sae) - 0.5 * sae.W_dec[f]

    with torch.no_grad():
        assert E.check_ablated_activation(right, model, sae, tokens, latent)
        assert E.check_ablated_activation(None, model, sae, tokens, latent) is None
        assert E.check_ablated_activation(unfinished, model, sae, tokens, latent) is None
        with pytest.raises(AssertionError, match="You returned the SAE's reconstruction"):
            E.check_ablated_activation(no_error_term, model, sae, tokens, latent)
        with pytest.raises(AssertionError, match="differs"):
            E.check_ablated_activation(wrong_latent, model, sae, tokens, latent)


def test_check_ablated_activation_refuses_tokens_where_the_latent_is_silent(model, sae, tokens):
    """Where the latent never fires, removing it changes nothing, so the commonest mistake
    (returning x) would match: the checker refuses such tokens instead of printing "Correct"."""
    x = model.run_with_cache(tokens)[1]["blocks.1.hook_resid_pre"][0]
    fires = sae.encode(x) > 0  # [pos, d_sae]
    silent = int((~fires.any(0)).nonzero()[0, 0])
    firing = int(fires.sum(0).argmax())
    assert not fires[:, silent].any() and fires[:, firing].any()

    def unchanged(x, sae, f):
        return x

    with torch.no_grad():
        with pytest.raises(ValueError, match=f"Latent {silent} does not fire.*Pass tokens where"):
            E.check_ablated_activation(unchanged, model, sae, tokens, silent)
        with pytest.raises(AssertionError, match="unchanged"):
            E.check_ablated_activation(unchanged, model, sae, tokens, firing)


def test_check_attribution(model, sae, tokens):
    from utils.interventions import next_token_attribution

    target = tokens.shape[1] - 3

    def right(model, sae, tokens, target_position):
        return next_token_attribution(model, sae, tokens, [target_position]).attribution[0]

    def gradient_only(model, sae, tokens, target_position):
        result = next_token_attribution(model, sae, tokens, [target_position])
        acts = result.feature_acts[0]
        return torch.where(acts > 0, result.attribution[0] / acts.clamp(min=1e-9), 0.0) + 1e-3

    assert E.check_attribution(right, model, sae, tokens, target)
    assert E.check_attribution(None, model, sae, tokens, target) is None
    assert E.check_attribution(unfinished, model, sae, tokens, target) is None
    with pytest.raises(AssertionError, match="wrong sign"):
        E.check_attribution(lambda *a: -right(*a), model, sae, tokens, target)
    with pytest.raises(AssertionError, match="differs"):
        E.check_attribution(gradient_only, model, sae, tokens, target)
    with pytest.raises(AssertionError, match="shape"):
        E.check_attribution(lambda *a: right(*a)[:-1], model, sae, tokens, target)
    # a batch of two copies is not one context's [pos, d_sae] answer, even if its first matches
    with pytest.raises(AssertionError, match="shape"):
        E.check_attribution(lambda *a: torch.stack([right(*a)] * 2), model, sae, tokens, target)


def test_checkers_print_their_counts_and_reminders(model, sae, tokens, capsys):
    from utils.interventions import next_token_attribution

    x, latent = most_active_latent(model, sae, tokens)
    n_firing = int((sae.encode(x)[:, latent] > 0).sum())

    with torch.no_grad():
        assert E.check_ablated_activation(right_ablated, model, sae, tokens, latent)
    assert (
        f"matches the spliced model's at all {x.shape[0]} positions (latent {latent} fires at "
        f"{n_firing} of them)" in capsys.readouterr().out
    )
    with torch.no_grad():
        assert E.check_ablated_activation(None, model, sae, tokens[0], latent) is None
    assert "Not answered yet" in capsys.readouterr().out

    target = tokens.shape[1] - 3

    def batched(model, sae, tokens, target_position):  # [1, pos, d_sae] is accepted too
        return next_token_attribution(model, sae, tokens, [target_position]).attribution

    assert E.check_attribution(batched, model, sae, tokens[0], target)
    assert (
        f"matches at all {tokens.shape[1]} positions x {sae.cfg.d_sae} latents"
        in capsys.readouterr().out
    )
    assert E.check_attribution(None, model, sae, tokens, target) is None
    assert "Not answered yet" in capsys.readouterr().out

    assert E.check_steering_hook(None) is None
    assert "Not answered yet" in capsys.readouterr().out
    assert E.check_steering_hook(
        lambda d, s: lambda acts, hook: acts + s * acts.norm(dim=-1, keepdim=True) * d
    )
    assert "Correct: your hook steers by a fraction" in capsys.readouterr().out


def test_check_steering_hook_is_strict():
    # a push 1% too large is a different hook: the tolerance is for float rounding only
    with pytest.raises(AssertionError, match="last dimension"):
        E.check_steering_hook(
            lambda d, s: lambda acts, hook: acts + 1.01 * s * acts.norm(dim=-1, keepdim=True) * d
        )


def test_check_ablated_activation_takes_one_dimensional_tokens(model, sae, tokens, capsys):
    _, latent = most_active_latent(model, sae, tokens)

    with torch.no_grad():
        assert E.check_ablated_activation(right_ablated, model, sae, tokens[0], latent)
    assert f"at all {tokens.shape[1]} positions" in capsys.readouterr().out


def test_check_ablated_activation_takes_any_float_dtype(model, sae, tokens):
    _, latent = most_active_latent(model, sae, tokens)

    def right_in_double(x, sae, f):
        return right_ablated(x, sae, f).double()

    with torch.no_grad():
        assert E.check_ablated_activation(right_in_double, model, sae, tokens, latent)
