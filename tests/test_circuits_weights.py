"""utils/circuits/weights.py: virtual weights between two transcoders and a latent's
de-embedding by hand, and the latents they accept."""

from __future__ import annotations

import pytest
import torch
from circuit_fixtures import lm, transcoders  # noqa: F401 (fixtures)
from circuit_helpers import randomize_norms_and_biases

from utils import circuits as C


def test_virtual_weights_and_de_embedding_by_hand(lm, transcoders):
    low, high = transcoders
    w = C.virtual_weights(low, high, scale=2.0)
    d = low.W_dec[3] - low.W_dec[3].mean()
    assert float(w[3, 5]) == pytest.approx(float(d @ high.W_enc[:, 5]) / 2, rel=1e-5)
    table = C.de_embedding(lm, low, 4, k=3)
    e = lm.W_E[table["token_id"][0]]
    e = (e - e.mean()) / ((e - e.mean()).pow(2).mean() + 1e-5).sqrt()
    assert table["score"][0] == pytest.approx(float(e @ low.W_enc[:, 4]), rel=1e-5)
    assert table["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="0..63"):
        C.de_embedding(lm, low, 64)


def test_one_virtual_weight_column_is_the_whole_matrix_column(transcoders):
    low, high = transcoders
    column = C.virtual_weights(low, high, scale=2.0, latent=5)
    assert column.shape == (low.cfg.d_sae,)
    centred = low.W_dec - low.W_dec.mean(dim=1, keepdim=True)  # by hand, row by row
    torch.testing.assert_close(column, centred @ high.W_enc[:, 5] / 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(column, C.virtual_weights(low, high, scale=2.0)[:, 5])
    for latent in (0, 63):  # the first and last of high's 64 latents
        assert C.virtual_weights(low, high, latent=latent).shape == (low.cfg.d_sae,)
    for wrong in (True, -1, 64, 2.0):
        with pytest.raises(ValueError, match="0..63"):
            C.virtual_weights(low, high, latent=wrong)


@pytest.mark.parametrize("latent", [True, -1, 64, 2.0])
def test_a_latent_that_is_not_one_of_the_transcoders_is_refused(lm, transcoders, latent):
    with pytest.raises(ValueError, match="0..63"):
        C.de_embedding(lm, transcoders[0], latent)


def test_the_first_and_last_latents_are_accepted(lm, transcoders):
    for latent in (0, 63):
        assert len(C.de_embedding(lm, transcoders[0], latent, k=2)) == 2


def test_de_embedding_default_is_ten_tokens_with_their_strings(lm, transcoders):
    """Columns ``token``, ``token_id``, ``score`` (docstring); ``k`` is 10 unless given; the
    top tokens by hand, best first."""
    table = C.de_embedding(lm, transcoders[0], 7)
    assert list(table.columns) == ["token", "token_id", "score"]
    assert len(table) == 10 < lm.cfg.d_vocab
    e = lm.W_E - lm.W_E.mean(-1, keepdim=True)
    scores = (e / (e.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()) @ transcoders[0].W_enc[:, 7]
    assert table["token_id"].tolist() == scores.argsort(descending=True)[:10].tolist()
    assert table["token"].tolist() == [lm.to_single_str_token(i) for i in table["token_id"]]


def test_virtual_weights_default_scale_is_one(transcoders):
    low, high = transcoders
    centred = low.W_dec - low.W_dec.mean(dim=1, keepdim=True)
    torch.testing.assert_close(C.virtual_weights(low, high), centred @ high.W_enc)
    torch.testing.assert_close(C.virtual_weights(low, high, latent=2), centred @ high.W_enc[:, 2])


def test_virtual_weights_refuse_mismatched_widths_and_a_scale_that_is_not_positive(transcoders):
    low, high = transcoders
    narrow = C.make_transcoder(16, 24, 8, 2, layer=0)
    with pytest.raises(ValueError, match=f"low writes 24 dimensions, high reads {high.cfg.d_in}"):
        C.virtual_weights(narrow, high)
    for scale in (0, 0.0, -1.5):
        with pytest.raises(ValueError, match=f"scale must be positive, got {scale}"):
            C.virtual_weights(low, high, scale=scale)


# ---- mean_scale and latent_inputs on a 3-layer model with transcoders on every layer -------------

D_DEEP, D_SAE_DEEP, K_DEEP, VOCAB_DEEP = 32, 24, 4, 40
LATENT = (
    3  # of the layer-2 transcoder: on 3 of the 12 masked tokens (once at 0.80 < 1) and both BOS
)
ONCE = 12  # of the layer-2 transcoder: on one masked token only (and 3 left out)


@pytest.fixture(scope="module")
def deep():
    """A random 3-layer model (every LayerNorm weight and bias random), a random TopK transcoder
    on each layer ({layer: transcoder}), two rows of 8 tokens starting with BOS (id 0) and a mask
    that leaves out position 0 and the last two positions of the second row."""
    from types import SimpleNamespace

    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=3,
        d_model=D_DEEP,
        n_heads=4,
        d_head=8,
        d_mlp=64,
        n_ctx=16,
        d_vocab=VOCAB_DEEP,
        act_fn="gelu",
        normalization_type="LN",
        seed=3,
    )
    torch.manual_seed(3)
    model = HookedSAETransformer(cfg)
    model.eval()
    randomize_norms_and_biases(model)
    tcs = {}
    for layer in range(3):
        tc = C.make_transcoder(D_DEEP, D_DEEP, D_SAE_DEEP, K_DEEP, layer, seed=layer)
        with torch.no_grad():
            bias = torch.Generator().manual_seed(7 + layer)
            tc.b_enc.copy_(0.1 * torch.randn(D_SAE_DEEP, generator=bias))
        tcs[layer] = tc
    tokens = torch.randint(1, VOCAB_DEEP, (2, 8), generator=torch.Generator().manual_seed(1))
    tokens[:, 0] = 0
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    mask[1, 6:] = False
    return SimpleNamespace(model=model, tcs=tcs, tokens=tokens, mask=mask)


def _mlp_inputs(model, tokens, mask, layer):
    """By hand from the residual stream: layer ``layer``'s LayerNorm scale ``s = sqrt(var + eps)``
    of the centred MLP input and the normalised input a transcoder reads, at the masked tokens."""
    _, cache = model.run_with_cache(tokens)
    resid = cache[f"blocks.{layer}.hook_resid_mid"][mask]  # [n, d_model]: ln2's input
    centred = resid - resid.mean(-1, keepdim=True)
    s = (centred.pow(2).mean(-1) + model.cfg.eps).sqrt()
    return s, centred / s[:, None]  # hook_normalized: before ln2's weight and bias


def _inputs_by_hand(deep, layer, latent, scale, mask=None, tcs=None):
    """Every row latent_inputs could return, by hand (module docstring): {source: (virtual weight
    at ``scale``, mean input over the masked tokens where ``latent`` fires, co-firing share)}."""
    mask = deep.mask if mask is None else mask
    tcs = deep.tcs if tcs is None else tcs
    high = tcs[layer]
    s, x = _mlp_inputs(deep.model, deep.tokens, mask, layer)
    fires = high.encode(x)[:, latent] > 0
    projection = torch.eye(D_DEEP) - torch.full((D_DEEP, D_DEEP), 1 / D_DEEP)  # P: centring
    rows = {}
    for low_layer in sorted(tcs):
        if low_layer >= layer:
            continue
        low = tcs[low_layer]
        _, x_low = _mlp_inputs(deep.model, deep.tokens, mask, low_layer)
        acts = low.encode(x_low)[fires]  # [n_fire, d_sae]
        for i in range(low.cfg.d_sae):
            weight = float(low.W_dec[i] @ projection @ high.W_enc[:, latent])
            per_token = [float(a) * weight / float(t) for a, t in zip(acts[:, i], s[fires])]
            mean = sum(per_token) / len(per_token) if per_token else 0.0
            share = float((acts[:, i] > 0).float().mean()) if len(acts) else 0.0
            rows[f"L{low_layer}/{i}"] = (weight / scale, mean, share)
    return rows


def _chosen_by_hand(rows, k):
    """The top ``k`` by |mean_input| and by |virtual_weight|, one row each (no tie at the k-th)."""
    for column in (0, 1):
        sizes = sorted((abs(row[column]) for row in rows.values()), reverse=True)
        assert sizes[k - 1] > sizes[k] + 1e-4
    by_input = sorted(rows, key=lambda name: -abs(rows[name][1]))[:k]
    by_weight = sorted(rows, key=lambda name: -abs(rows[name][0]))[:k]
    return set(by_input) | set(by_weight)


def _check_rows(table, rows):
    for _, row in table.iterrows():
        weight, mean, share = rows[row["source"]]
        assert row["virtual_weight"] == pytest.approx(weight, rel=1e-4, abs=1e-6)
        assert row["mean_input"] == pytest.approx(mean, rel=1e-4, abs=1e-6)
        assert row["co_firing"] == pytest.approx(share, abs=1e-6)


def test_mean_scale_is_the_masked_mean_of_the_layernorm_scale_by_hand(deep):
    """sqrt(var + eps) of the centred ln2 input, averaged over the masked positions only."""
    for layer in (1, 2):
        s, _ = _mlp_inputs(deep.model, deep.tokens, deep.mask, layer)
        got = C.mean_scale(deep.model, deep.tokens, deep.mask, layer)
        assert isinstance(got, float)
        assert got == pytest.approx(float(s.mean()), rel=1e-5)
        everywhere = torch.ones_like(deep.mask)
        s_all, _ = _mlp_inputs(deep.model, deep.tokens, everywhere, layer)
        assert abs(float(s_all.mean()) - got) > 1e-3  # the mask matters here
        assert C.mean_scale(deep.model, deep.tokens, everywhere, layer) == pytest.approx(
            float(s_all.mean()), rel=1e-5
        )
    assert C.mean_scale(deep.model, deep.tokens, deep.mask, 1) != pytest.approx(
        C.mean_scale(deep.model, deep.tokens, deep.mask, 2), rel=1e-3
    )


def test_latent_inputs_columns_values_and_selection_by_hand(deep):
    """Columns as documented; each row's virtual weight at ``scale``, mean input over the masked
    tokens where the latent fires (a_i * W_dec[i] P W_enc[:, latent] / s, each token's own a_i and
    s) and co-firing share; the top k by |mean_input| and by |virtual_weight|, one row each,
    largest |mean_input| first."""
    s, x = _mlp_inputs(deep.model, deep.tokens, deep.mask, 2)
    acts = deep.tcs[2].encode(x)[:, LATENT]
    fired = acts[acts > 0]
    assert 2 <= len(fired) < len(acts) and float(fired.min()) < 1  # some tokens, not all
    _, x_all = _mlp_inputs(deep.model, deep.tokens, torch.ones_like(deep.mask), 2)
    assert int((deep.tcs[2].encode(x_all)[:, LATENT] > 0).sum()) > len(fired)  # fires on BOS
    rows = _inputs_by_hand(deep, 2, LATENT, scale=2.5)
    for k in (3, 7):
        table = C.latent_inputs(deep.model, deep.tcs, deep.tokens, deep.mask, 2, LATENT, 2.5, k=k)
        assert list(table.columns) == ["source", "virtual_weight", "mean_input", "co_firing"]
        assert table["source"].is_unique
        assert set(table["source"]) == _chosen_by_hand(rows, k)
        assert table["mean_input"].abs().is_monotonic_decreasing
        assert not table["mean_input"].is_monotonic_decreasing  # signs differ: order is by |.|
        assert {name[:3] for name in table["source"]} == {"L0/", "L1/"}
        _check_rows(table, rows)
    shares = [row[2] for row in rows.values()]
    assert any(0 < share < 1 for share in shares)


def test_latent_inputs_default_is_ten_of_each(deep):
    rows = _inputs_by_hand(deep, 2, LATENT, scale=1.0)
    table = C.latent_inputs(deep.model, deep.tcs, deep.tokens, deep.mask, 2, LATENT, 1.0)
    assert set(table["source"]) == _chosen_by_hand(rows, 10)
    assert _chosen_by_hand(rows, 10) != _chosen_by_hand(rows, 11)
    _check_rows(table, rows)


def test_only_lower_layers_are_sources_every_one_with_a_large_k(deep):
    for layer, lower in ((1, [0]), (2, [0, 1])):
        rows = _inputs_by_hand(deep, layer, LATENT, scale=0.5)
        table = C.latent_inputs(
            deep.model, deep.tcs, deep.tokens, deep.mask, layer, LATENT, 0.5, k=1000
        )
        expected = {f"L{low}/{i}" for low in lower for i in range(D_SAE_DEEP)}
        assert len(table) == len(expected) and set(table["source"]) == expected
        _check_rows(table, rows)
    # a sequence, one transcoder per layer, is the same as the dict
    as_list = C.latent_inputs(
        deep.model, list(deep.tcs.values()), deep.tokens, deep.mask, 2, LATENT, 0.5, k=5
    )
    as_dict = C.latent_inputs(deep.model, deep.tcs, deep.tokens, deep.mask, 2, LATENT, 0.5, k=5)
    assert as_list.equals(as_dict)


def test_latent_inputs_of_a_latent_that_fires_once_or_never(deep):
    """One firing token: the mean is that token's input; none: zeros, not NaN."""
    _, x = _mlp_inputs(deep.model, deep.tokens, deep.mask, 2)
    assert int((deep.tcs[2].encode(x)[:, ONCE] > 0).sum()) == 1
    rows = _inputs_by_hand(deep, 2, ONCE, scale=1.5)
    table = C.latent_inputs(deep.model, deep.tcs, deep.tokens, deep.mask, 2, ONCE, 1.5, k=1000)
    assert len(table) == 2 * D_SAE_DEEP
    _check_rows(table, rows)
    assert any(0 < abs(row[1]) for row in rows.values())
    never = deep.mask.clone()
    never[:, :] = False
    never[0, 1] = True
    _, x_never = _mlp_inputs(deep.model, deep.tokens, never, 2)
    assert float(deep.tcs[2].encode(x_never)[0, ONCE]) == 0
    table = C.latent_inputs(deep.model, deep.tcs, deep.tokens, never, 2, ONCE, 1.5, k=1000)
    assert (table["mean_input"] == 0).all() and (table["co_firing"] == 0).all()
    _check_rows(table, _inputs_by_hand(deep, 2, ONCE, scale=1.5, mask=never))


def test_latent_inputs_refuses_a_layer_without_a_transcoder_or_none_below_and_a_bad_latent(deep):
    some = {0: deep.tcs[0], 2: deep.tcs[2]}
    args = (deep.tokens, deep.mask)
    with pytest.raises(ValueError, match=r"\(transcoders for \[0, 2\]\), got 1$"):
        C.latent_inputs(deep.model, some, *args, 1, LATENT, 1.0)
    with pytest.raises(ValueError, match=r"one below it \(transcoders for \[0, 1, 2\]\), got 0$"):
        C.latent_inputs(deep.model, deep.tcs, *args, 0, LATENT, 1.0)
    table = C.latent_inputs(deep.model, some, *args, 2, LATENT, 1.0, k=1000)
    assert {name[:3] for name in table["source"]} == {"L0/"}  # layer 1 has no transcoder
    _check_rows(table, _inputs_by_hand(deep, 2, LATENT, scale=1.0, tcs=some))
    for wrong in (-1, D_SAE_DEEP, True, 2.0):
        with pytest.raises(ValueError, match=f"0..{D_SAE_DEEP - 1}"):
            C.latent_inputs(deep.model, deep.tcs, *args, 2, wrong, 1.0)
    assert len(C.latent_inputs(deep.model, deep.tcs, *args, 2, D_SAE_DEEP - 1, 1.0, k=1))
