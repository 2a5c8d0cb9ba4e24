"""utils/circuits/weights.py: virtual weights between two transcoders and a latent's
de-embedding by hand, and the latents they accept."""

from __future__ import annotations

import pytest
import torch
from circuit_fixtures import lm, transcoders  # noqa: F401 (fixtures)

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
