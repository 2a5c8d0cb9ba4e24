"""utils/circuits/replacement.py: every MLP replaced by its transcoder, the replacement model
with error terms equal to the model, its losses and the next-token loss by hand."""

from __future__ import annotations

import pytest
import torch
from circuit_fixtures import lm, prompt, transcoders  # noqa: F401 (fixtures)

from utils import circuits as C


def test_every_mlp_is_replaced_by_its_transcoder_reading_the_live_input(lm, transcoders, prompt):
    with lm.hooks(fwd_hooks=C.replacement_hooks(transcoders)):
        _, cache = lm.run_with_cache(prompt[None])
    _, clean = lm.run_with_cache(prompt[None])
    by_layer = transcoders if isinstance(transcoders, dict) else dict(enumerate(transcoders))
    assert sorted(by_layer) == [0, 1]
    for layer, tc in by_layer.items():
        with torch.no_grad():
            expected = tc(cache[f"blocks.{layer}.ln2.hook_normalized"])
        assert torch.allclose(cache[f"blocks.{layer}.hook_mlp_out"], expected, atol=1e-5)
        assert not torch.allclose(clean[f"blocks.{layer}.hook_mlp_out"], expected, atol=1e-3)


def test_with_error_terms_the_replacement_model_is_the_model(lm, transcoders, prompt):
    tokens = prompt[None]
    clean = lm(tokens)
    errors = C.mlp_errors(lm, transcoders, tokens)
    spliced = lm.run_with_hooks(tokens, fwd_hooks=C.replacement_hooks(transcoders, errors))
    assert torch.allclose(spliced, clean, atol=1e-4)
    replaced = lm.run_with_hooks(tokens, fwd_hooks=C.replacement_hooks(transcoders))
    assert not torch.allclose(replaced, clean, atol=1e-2)
    mask = C.token_mask(tokens, None)
    losses = C.replacement_losses(lm, transcoders, tokens, mask)
    assert losses.with_errors == pytest.approx(losses.clean, abs=1e-4)
    logprobs = clean[0, :-1].log_softmax(-1)
    by_hand = -logprobs[torch.arange(len(prompt) - 1), prompt[1:]][mask[0, 1:]].mean().detach()
    assert losses.clean == pytest.approx(float(by_hand), abs=1e-5)
    assert losses.recovered == pytest.approx(
        (losses.zero_ablated - losses.replaced) / (losses.zero_ablated - losses.clean)
    )


def test_transcoders_must_match_the_layers(lm, transcoders):
    with pytest.raises(ValueError, match="one transcoder per layer"):
        C.replacement_losses(
            lm,
            transcoders[:1],
            torch.zeros(1, 3, dtype=torch.long),
            torch.ones(1, 3, dtype=torch.bool),
        )
    with pytest.raises(ValueError, match="layer order"):
        C.mlp_errors(lm, transcoders[::-1], torch.zeros(1, 3, dtype=torch.long))


def test_next_token_loss_sums_the_masked_predictions_by_hand():
    from utils.circuits.replacement import _next_token_loss

    logits = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[0, 3, 1, 5], [0, 2, 2, 4]])
    mask = torch.tensor([[False, True, False, True], [False, True, True, True]])
    expected = 0.0
    for b in range(2):
        for p in range(1, 4):  # the prediction of token p comes from position p - 1
            if mask[b, p]:
                expected -= float(logits[b, p - 1].log_softmax(-1)[tokens[b, p]])
    assert float(_next_token_loss(logits, tokens, mask)) == pytest.approx(expected, rel=1e-5)


def test_transcoders_are_checked_against_the_model_s_layers(lm):
    """An empty set is refused, and so is a layer past the last; the layer is read from the
    input hook's number after blocks."""
    from utils.circuits.replacement import check_transcoders
    from utils.circuits.transcoders import transcoder_layer

    with pytest.raises(ValueError, match="no transcoders given"):
        check_transcoders(lm, {})
    d = lm.cfg.d_model
    n = lm.cfg.n_layers
    past = C.make_transcoder(d, d, 8, 2, layer=n)
    with pytest.raises(ValueError, match=rf"layer {n} is not in 0\.\.{n - 1}"):
        check_transcoders(lm, {n: past})
    for hook, layer in (("blocks.3.ln2.hook_normalized", 3), ("blocks.12", 12)):
        past.cfg.metadata.hook_name = hook
        assert transcoder_layer(past) == layer
    for hook in ("hook_embed", "ln_final.hook_scale", "resid.3.x", "blocks.x.y", ""):
        past.cfg.metadata.hook_name = hook
        with pytest.raises(
            ValueError, match=f"cannot read a layer from the transcoder's hook_name '{hook}'"
        ):
            transcoder_layer(past)


def _rows(lm, n_rows, ctx, seed=0):
    """``n_rows`` random token rows of ``ctx`` tokens and a mask with some predictions left out
    (never position 0, which nothing predicts)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, lm.cfg.d_vocab, (n_rows, ctx), generator=generator)
    mask = torch.rand(n_rows, ctx, generator=generator) > 0.3
    mask[:, 0] = False
    mask[0, 1] = True  # at least one prediction counted
    return tokens, mask


def _hand_mean_loss(logits, tokens, mask):
    logprobs = logits[:, :-1].log_softmax(dim=-1).double()
    nll = -logprobs.gather(-1, tokens[:, 1:, None])[..., 0]
    return float(nll[mask[:, 1:]].sum() / mask[:, 1:].sum())


def test_losses_over_several_batches_are_the_means_over_every_masked_prediction(lm, transcoders):
    """Five rows in batches of two (the last one short): each batch counted once, the means
    taken over all the masked predictions, ``n_tokens`` their number."""
    tokens, mask = _rows(lm, 5, 6)
    losses = C.replacement_losses(lm, transcoders, tokens, mask, batch_size=2)
    n = int(mask[:, 1:].sum())
    assert losses.n_tokens == n
    with torch.no_grad():
        clean = _hand_mean_loss(lm(tokens), tokens, mask)
        zeros = [(f"blocks.{i}.hook_mlp_out", lambda out, hook: out * 0) for i in range(2)]
        zeroed = _hand_mean_loss(lm.run_with_hooks(tokens, fwd_hooks=zeros), tokens, mask)
    assert losses.clean == pytest.approx(clean, rel=1e-5)
    assert losses.with_errors == pytest.approx(clean, rel=1e-4)
    assert losses.zero_ablated == pytest.approx(zeroed, rel=1e-5)
    assert losses.as_dict()["n_tokens"] == n


def test_losses_are_summed_and_divided_in_double_precision(lm, transcoders):
    """One batch: the clean loss is that batch's float32 sum divided by the count in float64,
    exactly (a float32 total would round the mean to float32)."""
    tokens, mask = _rows(lm, 3, 7, seed=1)
    losses = C.replacement_losses(lm, transcoders, tokens, mask)
    with torch.no_grad():
        logprobs = lm(tokens)[:, :-1].log_softmax(dim=-1)
        nll = -logprobs.gather(-1, tokens[:, 1:, None])[..., 0]
        summed = float((nll * mask[:, 1:].float()).sum())  # float32, as the model computes it
    n = int(mask[:, 1:].sum())
    assert n % 2 == 1  # so the mean is not a float32 number by chance
    assert losses.clean == summed / n


def test_losses_run_sixteen_rows_at_a_time_by_default(lm, transcoders, monkeypatch):
    """17 rows: a batch of 16 and a batch of 1, each run four ways (clean, replaced, with error
    terms, zero-ablated)."""
    tokens, mask = _rows(lm, 17, 4, seed=2)
    seen = []
    run = lm.run_with_hooks

    def counting(batch, *args, **kwargs):
        seen.append(len(batch))
        return run(batch, *args, **kwargs)

    monkeypatch.setattr(lm, "run_with_hooks", counting)
    C.replacement_losses(lm, transcoders, tokens, mask)
    assert seen == [16] * 4 + [1] * 4


def test_losses_progress_bar_is_off_by_default_and_leaves_no_trace(lm, transcoders, capsys):
    tokens, mask = _rows(lm, 3, 5, seed=3)
    quiet = C.replacement_losses(lm, transcoders, tokens, mask, batch_size=2)
    assert capsys.readouterr().err == ""
    shown = C.replacement_losses(lm, transcoders, tokens, mask, batch_size=2, progress=True)
    assert shown == quiet
    err = capsys.readouterr().err
    assert err.startswith("\rlosses: ")  # the bar is labelled "losses"
    assert "0/2" in err  # one step per batch
    assert "\n" not in err and err.endswith("\r")  # leave=False: the line is wiped at the end
    assert err.split("\r")[-2].strip() == ""


def test_tokens_and_mask_of_different_shapes_are_refused(lm, transcoders):
    tokens, mask = _rows(lm, 2, 5)
    with pytest.raises(ValueError, match=r"tokens \(2, 5\) and mask \(2, 4\) differ"):
        C.replacement_losses(lm, transcoders, tokens, mask[:, :4])
