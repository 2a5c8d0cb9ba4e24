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
