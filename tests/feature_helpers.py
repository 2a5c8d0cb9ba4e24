"""Helpers shared by the tests of utils.features (tests/test_features_*.py): the context size
of their samples, a stand-in model whose token ids a reader can write down, and feature samples
built from dense activations small enough to work out by hand. The fixture built from them is in
``feature_fixtures.py``.
"""

from __future__ import annotations

import torch
from random_models import HOOK

from utils import features as F

CTX = 24  # tokens per text where a test collects a sample or splices an SAE itself


# ---- a feature sample small enough to work out by hand ----------------------------------------
#
# Two texts of ctx 4 over the vocabulary <bos>, ' a', ' be', ' cat' (id 0 is both BOS and padding):
#   text 0: <bos> ' a'   ' be'  ' a'      length 4
#   text 1: <bos> ' cat' ' a'   <pad>     length 3
# Counted: every real token but BOS, so 5 tokens: ' a' 3 times, ' be' once, ' cat' once.
# Three features, active only at counted positions (flat position = text * 4 + pos):
#   feature 0 on every ' a':        t0p1 = 2.0, t0p3 = 4.0, t1p2 = 1.0    fires 3, density 3/5
#   feature 1 on ' be' and one ' a': t0p2 = 3.0, t1p2 = 0.5                fires 2, density 2/5
#   feature 2 on ' cat':            t1p1 = 0.5                            fires 1, density 1/5
# Densities are over the 5 counted tokens: not over the 7 real tokens or the 8 positions.
VOCAB = ["<bos>", " a", " be", " cat"]
TOY_TOKENS = torch.tensor([[0, 1, 2, 1], [0, 3, 1, 0]])
TOY_COUNTED = torch.tensor([[False, True, True, True], [False, True, True, False]])


def sample_by_hand(tokens, lengths, counted, dense, vocab):
    """A FeatureSample stored from dense ``[n_texts, ctx, d_sae]`` activations (zero wherever a
    position is not counted), the way collect_feature_stats stores one: non-zeros sorted by
    feature, flat positions ``text * ctx + pos``."""
    n_texts, ctx, d_sae = dense.shape
    assert not dense[~counted].any()
    positions, values, offsets = [], [], [0]
    for f in range(d_sae):
        for t in range(n_texts):
            for p in range(ctx):
                if dense[t, p, f] != 0:
                    positions.append(t * ctx + p)
                    values.append(dense[t, p, f].item())
        offsets.append(len(positions))
    return F.FeatureSample(
        tokens=tokens,
        lengths=torch.tensor(lengths),
        counted=counted,
        l0=(dense != 0).sum(-1).int(),
        firing_counts=(dense != 0).sum((0, 1)),
        max_activation=dense.amax((0, 1)),
        mean_activation_vector=torch.zeros(2),
        metrics={},
        vocab=vocab,
        hook_name=HOOK,
        nz_positions=torch.tensor(positions, dtype=torch.int64),
        nz_values=torch.tensor(values, dtype=dense.dtype),
        feature_offsets=torch.tensor(offsets),
    )


def one_firing_sample():
    """One text, <bos> ' a': feature 0 fires once (3.0) on the ' a', feature 1 never."""
    dense = torch.zeros(1, 2, 2)
    dense[0, 1, 0] = 3.0
    return sample_by_hand(torch.tensor([[0, 1]]), [2], torch.tensor([[False, True]]), dense, VOCAB)


class CharModel:
    """A stand-in model whose tokenizer reads one printable character as one token (its code
    point) after an optional BOS (id 1): token ids a reader can write down."""

    def __init__(self, n_ctx=8, pad_token_id=7, n_tokenizer=3, d_vocab=5):
        from types import SimpleNamespace

        self.cfg = SimpleNamespace(n_ctx=n_ctx, d_vocab=d_vocab)
        self.tokenizer = type(
            "Tok", (), {"pad_token_id": pad_token_id, "__len__": lambda s: n_tokenizer}
        )()
        self.given: list[str] = []

    def to_tokens(self, text, prepend_bos=True, truncate=True):
        assert truncate is False  # tokenize_texts cuts the tokens itself
        self.given.append(text)
        return torch.tensor([[1] * prepend_bos + [ord(c) for c in text if c.isprintable()]])

    def to_str_tokens(self, ids):
        return [chr(i) for i in ids.tolist()]
