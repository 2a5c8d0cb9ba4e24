"""Unit tests for utils.features.sample's tokenization and feature-sample store (what
collect_feature_stats keeps, read back through FeatureSample), on a random model (d_model 48) and
random SAEs (d_sae 200), and on samples small enough to work out by hand (feature_helpers.py).
The tables read from a sample: test_features_sample_queries.py."""

from __future__ import annotations

import pytest
import torch
from feature_fixtures import toy  # noqa: F401 (a fixture)
from feature_helpers import CTX, TOY_COUNTED, TOY_TOKENS, VOCAB, CharModel, sample_by_hand
from random_models import D_SAE, HOOK, SAMPLE_TEXTS, build_sae

from utils import features as F

# ---- tokenizing texts -------------------------------------------------------------------------


def test_tokenize_texts_skips_empty_and_pads(model):
    tokens, lengths = F.tokenize_texts(
        model, ["Hello world", "", "The capital of France is Paris. " * 5], 16
    )
    assert tokens.shape == (2, 16)
    assert lengths[1] == 16 and lengths[0] < 16
    assert (tokens[:, 0] == model.tokenizer.bos_token_id).all()


def test_tokenize_texts_bad_input(model):
    with pytest.raises(TypeError, match="list of strings"):
        F.tokenize_texts(model, "just one string", 8)
    with pytest.raises(ValueError, match="n_ctx"):
        F.tokenize_texts(model, ["hi"], 10_000)
    with pytest.raises(ValueError, match="non-empty"):
        F.tokenize_texts(model, ["", "  "], 8)


def test_tokenize_texts_by_hand():
    m = CharModel()
    tokens, lengths = F.tokenize_texts(m, ["abc", "  ", "hello"], 4)  # blank text skipped
    assert tokens.tolist() == [[1, 97, 98, 99], [1, 104, 101, 108]]  # cut to 4 tokens
    assert lengths.tolist() == [4, 4]
    tokens, lengths = F.tokenize_texts(m, ["ab", "hello"], 8)
    assert tokens.tolist() == [[1, 97, 98, 7, 7, 7], [1, 104, 101, 108, 108, 111]]  # pad id 7
    assert lengths.tolist() == [3, 6]
    no_pad_id = CharModel(pad_token_id=None)
    assert F.tokenize_texts(no_pad_id, ["ab", "abc"], 8)[0].tolist() == [
        [1, 97, 98, 0],
        [1, 97, 98, 99],
    ]
    no_pad_attribute = CharModel()
    no_pad_attribute.tokenizer = object()  # a tokenizer with no pad_token_id at all: pad with 0
    assert F.tokenize_texts(no_pad_attribute, ["ab", "abc"], 8)[0].tolist()[0] == [1, 97, 98, 0]
    tokens, lengths = F.tokenize_texts(m, ["ab", "\u200b"], 2, prepend_bos=False)
    assert tokens.tolist() == [[97, 98]] and lengths.tolist() == [2]  # no token: skipped
    # a text that is only BOS once tokenized is skipped too
    assert F.tokenize_texts(m, ["\u200b", "ab"], 8)[0].tolist() == [[1, 97, 98]]
    assert F.tokenize_texts(m, ["ab"], 8)[0].shape == (1, 3)  # context_size = n_ctx is allowed
    m.given.clear()
    F.tokenize_texts(m, ["x" * 10_000], 3)  # a long document: only its first 3 * 64 characters
    assert m.given == ["x" * 192]


def test_tokenize_texts_refusals_say_why():
    m = CharModel()
    with pytest.raises(ValueError, match="at least 2 tokens, got 1"):
        F.tokenize_texts(m, ["abc"], 1)
    with pytest.raises(ValueError, match="context_size=9 is longer .* n_ctx=8"):
        F.tokenize_texts(m, ["abc"], 9)
    with pytest.raises(TypeError, match="must all be strings, got a int"):
        F.tokenize_texts(m, ["abc", 3], 4)
    with pytest.raises(ValueError, match="None of the texts has any tokens"):
        F.tokenize_texts(m, ["\u200b", " "], 4)


def test_vocabulary_strings_by_hand():
    # 3 ids the tokenizer decodes, 2 more rows of the unembedding that it does not
    assert F.vocabulary_strings(CharModel(n_tokenizer=3, d_vocab=5)) == [
        "\x00",
        "\x01",
        "\x02",
        "<3>",
        "<4>",
    ]
    assert F.vocabulary_strings(CharModel(n_tokenizer=4, d_vocab=2)) == ["\x00", "\x01"]


def test_position_masks_at_bos_and_padding_by_hand():
    # lengths 3 and 1 in a context of 4: real tokens first, then padding
    valid, counted = F.sample._position_masks(torch.tensor([3, 1]), 4, exclude_bos=True)
    assert valid.tolist() == [[True, True, True, False], [True, False, False, False]]
    assert counted.tolist() == [[False, True, True, False], [False, False, False, False]]
    valid, counted = F.sample._position_masks(torch.tensor([3, 1]), 4, exclude_bos=False)
    assert counted.tolist() == valid.tolist() == [[True, True, True, False], [True] + [False] * 3]


def test_tokenize_for_sae_marks_bos_only_when_there_is_one():
    m = CharModel()
    m.hook_dict = {HOOK: None}
    m.cfg.n_layers = 2
    hook, tokens, lengths, valid, counted = F.sample._tokenize_for_sae(
        m, build_sae(), ["ab", "cde"], 4, exclude_bos=True
    )
    assert hook == HOOK
    assert tokens.tolist() == [[1, 97, 98, 7], [1, 99, 100, 101]] and lengths.tolist() == [3, 4]
    assert valid.tolist() == [[True, True, True, False], [True] * 4]
    assert counted.tolist() == [[False, True, True, False], [False, True, True, True]]
    counted_bos = F.sample._tokenize_for_sae(m, build_sae(), ["ab", "cde"], 4, exclude_bos=False)[4]
    assert counted_bos.tolist() == valid.tolist()
    # an SAE trained without BOS: position 0 is a real token, counted even with exclude_bos
    _, tokens, _, valid, counted = F.sample._tokenize_for_sae(
        m, build_sae(prepend_bos=False), ["ab", "cde"], 4, exclude_bos=True
    )
    assert tokens.tolist() == [[97, 98, 7], [99, 100, 101]]
    assert counted.tolist() == valid.tolist() == [[True, True, False], [True, True, True]]
    with pytest.raises(KeyError, match="no hook 'blocks.5.hook_resid_pre'"):
        F.sample._tokenize_for_sae(m, build_sae(hook="blocks.5.hook_resid_pre"), ["ab"], 4, True)


# ---- the sample on the random model -----------------------------------------------------------


def test_sample_matches_dense_computation(model, sae, sample):
    """The sparse, batched statistics equal a dense computation on the same tokens."""
    acts = F.hook_activations(model, sample.tokens, HOOK)
    feature_acts = sae.encode(acts)
    counted = sample.counted
    assert not counted[:, 0].any()  # BOS excluded
    assert counted.sum() == (sample.lengths - 1).sum()
    dense = feature_acts * counted[..., None]
    assert torch.equal(sample.l0, F.l0_per_token(dense).int())
    assert torch.equal(sample.firing_counts, (dense != 0).sum((0, 1)))
    torch.testing.assert_close(sample.max_activation, dense.amax((0, 1)))
    for feature in (0, 5, D_SAE - 1):
        torch.testing.assert_close(sample.activation_grid(feature), dense[..., feature])
    metrics = F.reconstruction_metrics(acts[counted], sae.decode(feature_acts)[counted])
    for key, value in metrics.items():
        assert sample.metrics[key] == pytest.approx(value, rel=1e-4)
    torch.testing.assert_close(sample.mean_activation_vector, acts[counted].mean(0))


def test_sample_properties(sample):
    assert sample.d_sae == D_SAE
    assert sample.density.shape == (D_SAE,)
    assert ((sample.density >= 0) & (sample.density <= 1)).all()
    assert sample.l0_values.shape == (sample.n_tokens,)
    assert sample.str_tokens(0)[0] == "<|endoftext|>"
    assert sample.token_counts().sum() == sample.n_tokens
    with pytest.raises(IndexError):
        sample.str_tokens(sample.n_texts)
    with pytest.raises(IndexError, match="d_sae=200"):
        sample.feature_activations(D_SAE)


def test_sample_can_keep_bos(model, sae):
    kept = F.collect_feature_stats(model, sae, SAMPLE_TEXTS, CTX, exclude_bos=False, progress=False)
    assert kept.counted[:, 0].all()


# ---- samples worked out by hand ---------------------------------------------------------------


def test_toy_sample_counts_and_densities_by_hand(toy):
    assert toy.n_tokens == 5
    assert toy.firing_counts.tolist() == [3, 2, 1]
    assert toy.density.tolist() == pytest.approx([3 / 5, 2 / 5, 1 / 5])
    assert toy.token_counts().to_dict() == {" a": 3, " be": 1, " cat": 1}
    assert toy.str_tokens(1) == ["<bos>", " cat", " a"]  # the padding is not a token of the text
    text, pos, value = toy.feature_activations(1)
    assert (text.tolist(), pos.tolist(), value.tolist()) == ([0, 1], [2, 2], [3.0, 0.5])
    assert toy.activation_grid(0).tolist() == [[0, 2, 0, 4], [0, 0, 1, 0]]
    assert toy.nz_token_ids.tolist() == [1, 1, 1, 2, 1, 3]  # ' a' ' a' ' a' | ' be' ' a' | ' cat'


def test_str_tokens_out_of_range_names_the_range(toy):
    with pytest.raises(IndexError, match=r"text_index 2 is out of range 0\.\.1"):
        toy.str_tokens(2)
    with pytest.raises(IndexError, match="out of range"):
        toy.str_tokens(-1)


def test_activation_grid_keeps_the_stored_values_exactly():
    """float64 activations come back as stored, not rounded through float32."""
    dense = torch.zeros(2, 4, 3, dtype=torch.float64)
    dense[0, 1, 0] = 0.1
    dense[1, 2, 2] = 1 + 1e-12
    grid = sample_by_hand(TOY_TOKENS, [4, 3], TOY_COUNTED, dense, VOCAB).activation_grid
    assert grid(0)[0, 1].item() == 0.1 and grid(0).dtype == torch.float64
    assert grid(2)[1, 2].item() == 1 + 1e-12


def test_density_of_one_counted_token_and_of_none():
    dense = torch.zeros(1, 2, 2)
    dense[0, 1, 0] = 3.0
    one = sample_by_hand(torch.tensor([[0, 1]]), [2], torch.tensor([[False, True]]), dense, VOCAB)
    assert one.n_tokens == 1 and one.density.tolist() == [1.0, 0.0]
    assert one.l0_values.tolist() == [1]
    none = sample_by_hand(
        torch.tensor([[0, 1]]), [2], torch.tensor([[False, False]]), torch.zeros(1, 2, 2), VOCAB
    )
    assert none.n_tokens == 0 and none.density.tolist() == [0.0, 0.0]


def test_token_counts_most_common_first(toy):
    counts = toy.token_counts()
    assert counts.index[0] == " a" and counts.iloc[0] == 3 and counts.name == "count"
    assert counts.tolist() == [3, 1, 1]


# ---- collect_feature_stats against a text-by-text computation ---------------------------------


def stats_by_hand(model, sae, texts, ctx, exclude_bos=True):
    """What collect_feature_stats should keep, worked out one text at a time (no batches, no
    padding): a direct forward pass and sae.encode per text, then a plain loop over its tokens.
    Returns (firing counts, max activations, per-feature [(text, pos, value)] in text-then-position
    order, l0 rows, number of counted tokens)."""
    d_sae = sae.cfg.d_sae
    counts, maxes = [0] * d_sae, [0.0] * d_sae
    fired: list[list[tuple[int, int, float]]] = [[] for _ in range(d_sae)]
    l0_rows = []
    n_counted = 0
    for text in texts:
        if not text.strip():
            continue
        ids = model.to_tokens(text, prepend_bos=True)[0][:ctx]
        _, cache = model.run_with_cache(ids[None], names_filter=[HOOK])
        acts = sae.encode(cache[HOOK][0]).tolist()  # [len, d_sae]
        t = len(l0_rows)
        row = [0] * len(ids)
        for p in range(1 if exclude_bos else 0, len(ids)):
            n_counted += 1
            for j, v in enumerate(acts[p]):
                if v != 0:
                    counts[j] += 1
                    maxes[j] = max(maxes[j], v)
                    fired[j].append((t, p, v))
                    row[p] += 1
        l0_rows.append(row)
    return counts, maxes, fired, l0_rows, n_counted


def assert_matches_hand(got, expected):
    counts, maxes, fired, l0_rows, n_counted = expected
    assert got.hook_name == HOOK
    assert got.firing_counts.dtype == torch.long and got.firing_counts.tolist() == counts
    assert got.n_tokens == n_counted
    assert got.density.tolist() == pytest.approx([c / n_counted for c in counts])
    assert got.max_activation.tolist() == pytest.approx(maxes, abs=1e-5)
    assert len(got.feature_offsets) == len(counts) + 1
    for j, firings in enumerate(fired):
        text, pos, value = got.feature_activations(j)
        assert list(zip(text.tolist(), pos.tolist())) == [(t, p) for t, p, _ in firings], j
        assert value.tolist() == pytest.approx([v for _, _, v in firings], abs=1e-5)
    for t, row in enumerate(l0_rows):
        assert got.l0[t, : len(row)].tolist() == row
        assert not got.l0[t, len(row) :].any()


@pytest.fixture(scope="module")
def quiet_end_sae():
    """A random SAE whose last two features can never fire (bincount's length is then short)."""
    sae = build_sae(seed=1)
    with torch.no_grad():
        sae.b_enc[-2:] = -1e4
    return sae


HAND_TEXTS = [*SAMPLE_TEXTS, "a"]  # 'a' is <bos> plus one token: a batch of one counted token


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_collect_matches_text_by_text_computation(model, quiet_end_sae, batch_size):
    """Single-text batches, a short last batch and one batch all give the per-text statistics;
    firings of a feature come in text-then-position order; never-firing last features count 0."""
    expected = stats_by_hand(model, quiet_end_sae, HAND_TEXTS, CTX)
    assert expected[0][-2:] == [0, 0] and expected[4] == sum(len(r) - 1 for r in expected[3])
    assert sum(expected[3][-1]) > 0  # the one-token text fires something
    got = F.collect_feature_stats(
        model, quiet_end_sae, HAND_TEXTS, CTX, batch_size=batch_size, progress=False
    )
    assert_matches_hand(got, expected)


def test_collect_one_counted_token(model, quiet_end_sae):
    """A sample of a single counted token is enough (density over 1 token)."""
    got = F.collect_feature_stats(model, quiet_end_sae, ["a"], CTX, progress=False)
    assert got.n_tokens == 1
    assert_matches_hand(got, stats_by_hand(model, quiet_end_sae, ["a"], CTX))


def test_collect_default_batches_of_16_with_padding_masked(model, sae, monkeypatch):
    """The default batch_size is 16 texts per forward pass, and each pass is told which positions
    are padding."""
    seen = []
    real = F.sample.hook_activations

    def spy(model_, tokens, hook_name, attention_mask=None):
        seen.append((tokens.shape[0], attention_mask))
        return real(model_, tokens, hook_name, attention_mask=attention_mask)

    monkeypatch.setattr(F.sample, "hook_activations", spy)
    texts = [f"Hello world {i}" + " a" * (i % 3) for i in range(17)]
    got = F.collect_feature_stats(model, sae, texts, CTX, progress=False)
    assert [n for n, _ in seen] == [16, 1]
    valid = torch.arange(got.context_size)[None, :] < got.lengths[:, None]
    assert not valid.all()  # there is padding to mask
    masks = torch.cat([m for _, m in seen])
    assert masks is not None and masks.tolist() == valid.long().tolist()


def test_collect_progress_bar_by_default(model, sae, capsys):
    F.collect_feature_stats(model, sae, ["Hello world"], CTX)
    assert "Encoding the sample" in capsys.readouterr().err
    F.collect_feature_stats(model, sae, ["Hello world"], CTX, progress=False)
    assert capsys.readouterr().err == ""


def test_collect_refusals_say_why(model, sae):
    with pytest.raises(ValueError, match="^batch_size must be at least 1, got 0$"):
        F.collect_feature_stats(model, sae, ["Hello world"], CTX, batch_size=0, progress=False)
    with pytest.raises(
        ValueError,
        match=r"^The activations at blocks\.1\.hook_resid_pre has shape \(1, \d+, 48\), but its "
        r"last dimension must be the SAE's d_in = 40\.$",
    ):
        F.collect_feature_stats(model, build_sae(d_in=40), ["Hello world"], CTX, progress=False)
