"""Unit tests for utils/interventions/steering.py and the input checks it relies on
(checks.py): steering hooks, steered generation, steering curves; and the presets' sizes
for tutorial 3.

Random models of unusual sizes (d_model 48, d_sae 200), one with a final LayerNorm whose weights
are not all ones (tests/intervention_helpers.py)."""

from __future__ import annotations

import math

import pytest
import torch
from intervention_fixtures import contexts, model, tokenizer  # noqa: F401 (fixtures)
from random_models import D_MODEL, HOOK, build_model

from utils import interventions as I
from utils.interventions import checks

# ---- input checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scale_is_refused(model, bad):
    with pytest.raises(ValueError, match="finite"):
        I.steering_hooks(model, HOOK, I.random_unit_direction(D_MODEL, 0), bad)


def test_scale_must_be_a_number():
    with pytest.raises(TypeError, match="number"):
        I.check_scale("half")


def test_hook_the_model_lacks(model):
    with pytest.raises(KeyError, match="blocks.7.hook_resid_pre"):
        I.steering_hooks(model, "blocks.7.hook_resid_pre", I.random_unit_direction(D_MODEL, 0), 1.0)


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(model, prompt):
    with pytest.raises(ValueError, match="empty"):
        I.generate_steered(model, HOOK, prompt, I.random_unit_direction(D_MODEL, 0), [0.0])


def test_direction_of_the_wrong_width(model):
    with pytest.raises(ValueError, match=r"\[d_in\] = \[48\]"):
        I.steering_hooks(model, HOOK, torch.ones(D_MODEL + 1), 1.0)


def test_scored_mask_by_hand():
    """A prediction is scored when its position is counted and so is the next token: worked out
    by hand for BOS, three real tokens and two of padding, and for a gap in the middle."""
    counted = torch.tensor(
        [[False, True, True, True, False, False], [True, True, False, True, True, False]]
    )
    expected = torch.tensor(
        [[False, True, True, False, False, False], [True, False, False, True, False, False]]
    )
    tokens = torch.zeros(counted.shape, dtype=torch.long)
    assert torch.equal(checks._scored_mask(tokens, counted), expected)


# ---- steering ------------------------------------------------------------------------------------


def test_steering_hook_adds_a_fraction_of_each_norm(model):
    direction = I.random_unit_direction(D_MODEL, 0)
    [(name, hook)] = I.steering_hooks(model, HOOK, direction, 0.5, start_position=1)
    assert name == HOOK
    acts = torch.randn(2, 5, D_MODEL) * torch.arange(1, 6)[:, None]
    out = hook(acts.clone(), None)
    assert torch.equal(out[:, 0], acts[:, 0])  # the first position is left alone
    expected = acts[:, 1:] + 0.5 * acts[:, 1:].norm(dim=-1, keepdim=True) * direction
    assert torch.allclose(out[:, 1:], expected, atol=1e-5)


def test_generation_at_scale_zero_is_the_models(model):
    tokens = model.to_tokens("Hello world")
    plain = model.generate(
        tokens,
        max_new_tokens=5,
        do_sample=False,
        use_past_kv_cache=False,
        verbose=False,
        stop_at_eos=False,
    )
    table = I.generate_steered(
        model,
        HOOK,
        "Hello world",
        I.random_unit_direction(D_MODEL, 0),
        [0.0, 1e3],
        max_new_tokens=5,
    )
    assert list(table["scale"]) == [0.0, 1e3]
    assert table["continuation"].iloc[0] == model.to_string(plain[0, tokens.shape[1] :])
    assert table["continuation"].iloc[0] != table["continuation"].iloc[1]


def test_steering_curve(model, contexts):
    tokens, counted = contexts
    direction = I.random_unit_direction(D_MODEL, 3)
    own = I.promoted_token_ids(model, direction, 5)
    frame = I.steering_curve(
        model,
        HOOK,
        tokens,
        counted,
        direction,
        [0.0, 1.0, 100.0],
        {"own": own, "other": torch.tensor([0, 1])},
        batch_size=3,
    )
    assert len(frame) == 6 and set(frame["scored"]) == {"own", "other"}
    at_zero = frame[frame["scale"] == 0]
    assert (at_zero["logprob_gain"] == 0).all() and (at_zero["loss_increase"] == 0).all()
    # scale 0 scores the model itself: compare with a plain forward pass
    logp = model(tokens).log_softmax(-1)
    scored = counted[:, :-1] & counted[:, 1:]
    expected = logp[:, :-1][scored][:, own].mean().item()
    assert math.isclose(at_zero.set_index("scored").loc["own", "logprob"], expected, rel_tol=1e-4)
    # ... and the loss with torch's own cross-entropy over the same positions
    logits = model(tokens)[:, :-1][scored]  # [n_scored, d_vocab]
    loss = torch.nn.functional.cross_entropy(logits, tokens[:, 1:][scored]).item()
    assert math.isclose(at_zero["loss"].iloc[0], loss, rel_tol=1e-4)
    steered = frame[frame["scale"] == 100.0]
    assert list(steered["loss_increase"]) == pytest.approx(list(steered["loss"] - loss), rel=1e-4)
    # pushed 100 times its norm, the residual stream is the direction: its tokens win
    big = frame[(frame["scale"] == 100.0) & (frame["scored"] == "own")]
    assert big["logprob_gain"].iloc[0] > 1.0
    with pytest.raises(ValueError, match="score_tokens"):
        I.steering_curve(model, HOOK, tokens, counted, direction, [0.0], {})


def test_steering_curve_starts_at_the_hooks_layer(model, contexts):
    """Steering at blocks.1.hook_resid_pre: block 0 runs once per batch (the push cannot change
    it), not once per batch and scale, and the numbers equal passes from the tokens. Some
    positions are left out of `counted` so the scored mask is not everything."""
    tokens, counted = contexts
    counted = counted.clone()
    counted[0, 5:] = False
    direction = I.random_unit_direction(D_MODEL, 4)
    scored = {"own": I.promoted_token_ids(model, direction, 5), "other": torch.tensor([2, 7])}
    calls = []
    handle = model.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    try:
        args = (model, HOOK, tokens, counted, direction, [0.0, 0.5, 3.0], scored)
        fast = I.steering_curve(*args, batch_size=3)  # 4 contexts: 2 batches
        assert len(calls) == 2
        calls.clear()
        full = I.steering_curve(*args, batch_size=3, from_hook=False)
        assert len(calls) == 2 * 3
    finally:
        handle.remove()
    assert fast["scale"].tolist() == full["scale"].tolist()
    assert fast["scored"].tolist() == full["scored"].tolist()
    for column in ("logprob", "loss", "logprob_gain", "loss_increase"):
        assert fast[column].tolist() == pytest.approx(full[column].tolist(), abs=1e-5), column
    assert fast["logprob_gain"].abs().max() > 0.01  # the push changed something to compare


def test_steering_hooks_defaults_bounds_and_dtype(model):
    direction = I.random_unit_direction(D_MODEL, 3)
    ((name, hook),) = I.steering_hooks(model, HOOK, direction, 0.5)
    acts = torch.randn(2, 5, D_MODEL, dtype=torch.bfloat16)
    out = hook(acts, None)
    assert out.dtype == torch.bfloat16  # the direction is cast to the activations' dtype
    assert not torch.equal(out[:, 0], acts[:, 0])  # the default starts at position 0
    with pytest.raises(ValueError, match="start_position must be >= 0, got -1"):
        I.steering_hooks(model, HOOK, direction, 0.5, start_position=-1)
    for bad in (torch.zeros(D_MODEL), torch.full((D_MODEL,), float("nan"))):
        with pytest.raises(ValueError, match="finite, non-zero"):
            I.steering_hooks(model, HOOK, bad, 0.5)


def test_steering_curves_by_hand_and_in_shared_passes(model, contexts):
    """Three directions, each with its own token sets, steered in shared passes: every number
    equals one computed by hand from plain hooked passes from the tokens (steering_hooks), the
    unsteered pass runs once per batch of contexts, not once per direction, and the steered
    (direction, scale) pairs share passes (block 1, after the hook, counts the passes)."""
    tokens, counted = contexts
    counted = counted.clone()
    counted[1, 7:] = False
    directions = [I.random_unit_direction(D_MODEL, s) for s in (5, 6, 7)]
    sets = [
        {"own": I.promoted_token_ids(model, d, 4), "other": torch.tensor([3, 9])}
        for d in directions
    ]
    sets[2] = {"own": I.promoted_token_ids(model, directions[2], 2)}
    scales = [0.0, 0.5, -2.0]
    calls = []
    handle = model.blocks[1].register_forward_hook(lambda *args: calls.append(1))
    try:
        # 4 contexts, 12 rows a pass: 3 (direction, scale) pairs per pass, so one pass mixes
        # two directions; 6 pairs -> 2 passes, plus one unsteered pass
        frame = I.steering_curves(
            model, HOOK, tokens, counted, directions, scales, sets, batch_size=12
        )
        assert len(calls) == 1 + 2
    finally:
        handle.remove()
    scored = counted[:, :-1] & counted[:, 1:]
    for i, (direction, named) in enumerate(zip(directions, sets)):
        mine = frame[frame["direction"] == i]
        assert sorted(set(mine["scored"])) == sorted(named)
        for c in scales:
            with model.hooks(fwd_hooks=I.steering_hooks(model, HOOK, direction, c, 1)):
                logp = model(tokens).log_softmax(-1)[:, :-1][scored]  # [n_scored, d_vocab]
            loss = -logp.gather(1, tokens[:, 1:][scored][:, None]).mean().item()
            for name, ids in named.items():
                row = mine[(mine["scale"] == c) & (mine["scored"] == name)].iloc[0]
                assert row["logprob"] == pytest.approx(logp[:, ids].mean().item(), abs=1e-5)
                assert row["loss"] == pytest.approx(loss, abs=1e-5)
    gains = frame[frame["scale"] != 0]["logprob_gain"]
    assert gains.abs().min() > 1e-3  # every push moved something, so the comparison means it
    # one direction at a time (steering_curve) gives the same rows
    one = I.steering_curve(model, HOOK, tokens, counted, directions[1], scales, sets[1])
    assert one["logprob"].tolist() == pytest.approx(
        frame[frame["direction"] == 1]["logprob"].tolist(), abs=1e-5
    )
    with pytest.raises(ValueError, match="one dict of token sets per direction"):
        I.steering_curves(model, HOOK, tokens, counted, directions, scales, sets[:2])


# ---- steering by hand: greedy loops, curves, defaults, progress, dtypes, RMSNorm --------------


def _greedy_by_hand(model, tokens, hooks, n_new):
    """``n_new`` greedy tokens after ``tokens``, each from a full hooked pass (no cache)."""
    for _ in range(n_new):
        with model.hooks(fwd_hooks=hooks):
            logits = model(tokens)
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens


def _curve_by_hand(model, tokens, counted, direction, c, sets, start_position=1, hook=HOOK):
    """Mean log-probability of each set and the loss over the scored positions (counted and
    followed by a counted token), steered by a plain ``steering_hooks`` pass from the tokens."""
    scored = counted[:, :-1] & counted[:, 1:]
    with model.hooks(fwd_hooks=I.steering_hooks(model, hook, direction, c, start_position)):
        logp = model(tokens).float().log_softmax(-1)[:, :-1][scored]  # [n_scored, d_vocab]
    loss = -logp.gather(1, tokens[:, 1:][scored][:, None]).mean().item()
    return {
        name: logp[:, torch.as_tensor(ids).long()].mean().item() for name, ids in sets.items()
    }, loss


def _check_against_hand(model, frame, tokens, counted, direction, scales, sets, **kwargs):
    for c in scales:
        lps, loss = _curve_by_hand(model, tokens, counted, direction, c, sets, **kwargs)
        for name, lp in lps.items():
            row = frame[(frame["scale"] == c) & (frame["scored"] == name)].iloc[0]
            assert row["logprob"] == pytest.approx(lp, abs=1e-4), (c, name)
            assert row["loss"] == pytest.approx(loss, abs=1e-4), c


class _Calls:
    """Counts the forward passes through a module."""

    def __init__(self, module):
        self.n = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, *args):
        self.n += 1


def test_generate_steered_is_a_greedy_loop_by_hand(model, capsys):
    """Each continuation equals a greedy loop by hand under steering_hooks: the default 20 new
    tokens, BOS left alone (start 1) with prepend_bos, every new token steered (full passes, no
    cache), no progress bar; without BOS, position 0 is steered too; one new token is allowed."""
    prompt = "Hello world"
    direction = I.random_unit_direction(D_MODEL, 1)  # scale 1: BOS steered or not differs
    table = I.generate_steered(model, HOOK, prompt, direction, [0.0, 1.0])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    tokens = model.to_tokens(prompt, prepend_bos=True)
    for c, text in zip([0.0, 1.0], table["continuation"]):
        out = _greedy_by_hand(model, tokens, I.steering_hooks(model, HOOK, direction, c, 1), 20)
        assert text == model.to_string(out[0, tokens.shape[1] :]), c
    one = I.generate_steered(
        model, HOOK, prompt, direction, [1.0], max_new_tokens=1, prepend_bos=False
    )
    bare = model.to_tokens(prompt, prepend_bos=False)
    assert bare.shape[1] == tokens.shape[1] - 1
    out = _greedy_by_hand(model, bare, I.steering_hooks(model, HOOK, direction, 1.0, 0), 1)
    assert one["continuation"].iloc[0] == model.to_string(out[0, bare.shape[1] :])
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1, got 0"):
        I.generate_steered(model, HOOK, prompt, direction, [0.0], max_new_tokens=0)


def test_generate_steered_does_not_stop_at_eos(model):
    """Steered hard towards the EOS token, generation still gives every new token asked for."""
    eos = model.tokenizer.eos_token_id
    toward = (model.W_U[:, eos] * model.ln_final.w).detach()
    toward = toward - toward.mean()
    direction = toward / toward.norm()
    table = I.generate_steered(model, HOOK, "Hello world", direction, [50.0], max_new_tokens=4)
    tokens = model.to_tokens("Hello world")
    out = _greedy_by_hand(model, tokens, I.steering_hooks(model, HOOK, direction, 50.0, 1), 4)
    new = out[0, tokens.shape[1] :]
    assert new[0].item() == eos  # the push does make EOS the first token
    assert table["continuation"].iloc[0] == model.to_string(new)


def test_steering_curves_default_batch_and_start(model, contexts, capsys):
    """The defaults: 16 rows a pass (one context, 17 steered scales -> 2 steered passes and the
    unsteered one), passes from the hook (block 0 once), no progress bar."""
    tokens, counted = contexts
    tokens, counted = tokens[:1], counted[:1]
    direction = I.random_unit_direction(D_MODEL, 8)
    scales = [0.0] + [0.1 * k for k in range(1, 18)]
    sets = {"other": torch.tensor([3, 9])}
    for run in (
        lambda: I.steering_curve(model, HOOK, tokens, counted, direction, scales, sets),
        lambda: I.steering_curves(model, HOOK, tokens, counted, [direction], scales, [sets]),
    ):
        block0, block1 = _Calls(model.blocks[0]), _Calls(model.blocks[1])
        try:
            frame = run()
        finally:
            block0.handle.remove()
            block1.handle.remove()
        assert (block0.n, block1.n) == (1, 1 + 2)
        assert len(frame) == len(scales)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_steering_curves_progress_bar(model, contexts, capsys):
    """progress=True: a bar named Steering over the steered passes (2 contexts, 4 rows a pass:
    2 pairs a pass, 3 pairs -> 2 passes)."""
    tokens, counted = contexts
    direction = I.random_unit_direction(D_MODEL, 8)
    I.steering_curves(
        model,
        HOOK,
        tokens[:2],
        counted[:2],
        [direction],
        [0.0, 0.5, 1.0, 2.0],
        [{"other": torch.tensor([3, 9])}],
        batch_size=4,
        progress=True,
    )
    err = capsys.readouterr().err
    assert "Steering" in err
    assert " 2/2 " in err


def test_steering_curve_from_position_zero_one_row_a_pass(model, contexts):
    """start_position=0 steers every position and batch_size=1 is allowed; token ids given as
    floats are read as ids: all equal to the hand computation."""
    tokens, counted = contexts
    direction = I.random_unit_direction(D_MODEL, 9)
    sets = {"own": I.promoted_token_ids(model, direction, 3), "floats": torch.tensor([3.0, 9.0])}
    scales = [0.0, 2.0]
    frame = I.steering_curve(
        model, HOOK, tokens, counted, direction, scales, sets, start_position=0, batch_size=1
    )
    _check_against_hand(model, frame, tokens, counted, direction, scales, sets, start_position=0)
    assert frame[frame["scale"] == 2.0]["logprob_gain"].abs().min() > 1e-3


def test_steering_curves_without_scale_zero_and_bad_arguments(model, contexts):
    """Without scale 0 the gains are NaN (float columns); the table has a fresh 0..n-1 index over
    all directions; the argument checks say what is wrong."""
    tokens, counted = contexts
    directions = [I.random_unit_direction(D_MODEL, s) for s in (1, 2)]
    sets = [{"a": torch.tensor([3, 9]), "b": torch.tensor([4])}] * 2
    frame = I.steering_curves(model, HOOK, tokens, counted, directions, [0.5], sets)
    assert list(frame.index) == list(range(len(frame))) == list(range(4))
    for column in ("logprob_gain", "loss_increase"):
        assert frame[column].dtype == "float64" and frame[column].isna().all(), column
    with_zero = I.steering_curves(model, HOOK, tokens, counted, directions, [0.0, 0.5], sets)
    assert list(with_zero.index) == list(range(8))
    args = (model, HOOK, tokens, counted)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        I.steering_curves(*args, directions, [0.5], sets, batch_size=0)
    with pytest.raises(ValueError, match="start_position must be >= 0, got -1"):
        I.steering_curves(*args, directions, [0.5], sets, start_position=-1)
    with pytest.raises(ValueError, match="directions is empty"):
        I.steering_curves(*args, [], [0.5], [])
    with pytest.raises(ValueError, match="No position to score"):
        I.steering_curves(model, HOOK, tokens, torch.zeros_like(counted), directions, [0.5], sets)


def test_steering_curves_in_bfloat16(tokenizer, contexts):
    """In a bfloat16 model (no normalization: TransformerLens' LayerNorm upcasts on CPU) the push
    is cast to the activations' dtype: the numbers equal the hand computation in that model."""
    half = build_model(tokenizer, normalization_type=None, dtype=torch.bfloat16)
    tokens, counted = contexts
    direction = I.random_unit_direction(D_MODEL, 3)
    sets = {"other": torch.tensor([3, 9])}
    frame = I.steering_curves(half, HOOK, tokens, counted, [direction], [0.0, 1.0], [sets])
    for c in (0.0, 1.0):
        lps, loss = _curve_by_hand(half, tokens, counted, direction, c, sets)
        row = frame[frame["scale"] == c].iloc[0]
        assert row["logprob"] == pytest.approx(lps["other"], abs=2e-2), c
        assert row["loss"] == pytest.approx(loss, abs=2e-2), c


def test_steering_curves_leave_early_positions_alone_in_an_rms_model(tokenizer, contexts):
    """With RMSNorm (no centring, unlike LayerNorm) anything added before start_position reaches
    the later positions: the numbers must equal steering_hooks' from position 1."""
    rms = build_model(tokenizer, normalization_type="RMS")
    tokens, counted = contexts
    direction = I.random_unit_direction(D_MODEL, 3)
    sets = {"other": torch.tensor([3, 9])}
    scales = [0.0, 1.0]
    frame = I.steering_curves(rms, HOOK, tokens, counted, [direction], scales, [sets])
    _check_against_hand(rms, frame, tokens, counted, direction, scales, sets)


# ---- the presets' sizes for tutorial 3 -----------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny", "gpt2-small"])
def test_preset_intervention_sizes(name):
    """What tutorial 3's cells rely on: scale 0 (the baseline) and 0.5 (the scale its table reads)
    among the steering scales, contexts no longer than the sample's, a sensible density range."""
    from utils.presets import InterventionSizes, get_preset

    preset = get_preset(name)
    sizes = preset.interventions
    assert isinstance(sizes, InterventionSizes)
    assert 0.0 in sizes.steering_scales and 0.5 in sizes.steering_scales
    assert list(sizes.steering_scales) == sorted(sizes.steering_scales)
    assert 0 < sizes.min_density < sizes.max_density < 1
    assert 2 <= sizes.context_size <= preset.sample_context
    assert min(sizes.n_latents, sizes.top_tokens, sizes.random_directions, sizes.batch_size) >= 1
    assert sizes.attribution_top >= 1 and sizes.attribution_random >= 1
