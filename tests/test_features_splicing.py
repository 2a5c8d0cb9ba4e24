"""Unit tests for utils.features.splicing (the SAE spliced into the model: next-token losses and
the loss recovered) on a random model (d_model 48) and random SAEs (d_sae 200)."""

from __future__ import annotations

import math

import pytest
import torch
from feature_helpers import CTX
from random_models import D_MODEL, D_SAE, HOOK, SAMPLE_TEXTS, build_sae

from utils import features as F


def identity_sae(d_in: int = D_MODEL, d_sae: int = D_SAE):
    """An SAE that reconstructs its input exactly: features relu(x) and relu(-x), decoded back."""
    sae = build_sae(d_in=d_in, d_sae=d_sae)
    with torch.no_grad():
        eye = torch.eye(d_in)
        sae.W_enc.zero_()
        sae.W_dec.zero_()
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        sae.W_enc[:, :d_in] = eye
        sae.W_enc[:, d_in : 2 * d_in] = -eye
        sae.W_dec[:d_in] = eye
        sae.W_dec[d_in : 2 * d_in] = -eye
    return sae


def test_splice_losses_with_a_perfect_sae(model):
    losses = F.splice_losses(model, identity_sae(), SAMPLE_TEXTS, CTX, progress=False)
    assert losses.sae == pytest.approx(losses.original, abs=1e-4)
    assert losses.recovered_vs_zero == pytest.approx(1, abs=1e-3)
    assert losses.n_tokens > 0
    frame = losses.to_frame()
    assert list(frame.index) == ["original model", "SAE spliced in", "zero-ablated", "mean-ablated"]
    assert frame.loc["original model", "increase"] == 0


def test_splice_losses_with_a_zero_sae_equals_zero_ablation(model):
    dead = build_sae()
    with torch.no_grad():
        dead.W_dec.zero_()
        dead.b_dec.zero_()
    losses = F.splice_losses(model, dead, SAMPLE_TEXTS, CTX, progress=False)
    assert losses.sae == pytest.approx(losses.zero_ablated, abs=1e-5)
    assert losses.recovered_vs_zero == pytest.approx(0, abs=1e-3)


def test_splice_losses_mean_ablation_uses_the_given_vector(model, sae, sample):
    given = F.splice_losses(
        model, sae, SAMPLE_TEXTS, CTX, mean_activation=sample.mean_activation_vector, progress=False
    )
    computed = F.splice_losses(model, sae, SAMPLE_TEXTS, CTX, progress=False)
    assert given.mean_ablated == pytest.approx(computed.mean_ablated, rel=1e-5)
    zero_mean = F.splice_losses(
        model, sae, SAMPLE_TEXTS, CTX, mean_activation=torch.zeros(D_MODEL), progress=False
    )
    assert zero_mean.mean_ablated == pytest.approx(zero_mean.zero_ablated, rel=1e-6)
    with pytest.raises(ValueError, match="mean_activation"):
        F.splice_losses(
            model, sae, SAMPLE_TEXTS, CTX, mean_activation=torch.zeros(D_MODEL + 2), progress=False
        )


def test_splice_losses_matches_run_with_saes_without_bos_exclusion(model, sae):
    """With BOS included, the SAE condition equals SAELens' own splice (run_with_saes)."""
    text = ["The capital of France is Paris. The capital of Italy is Rome."]
    losses = F.splice_losses(model, sae, text, CTX, exclude_bos=False, progress=False)
    tokens, _ = F.tokenize_texts(model, text, CTX)
    per_token = model.run_with_saes(tokens, saes=[sae], return_type="loss", loss_per_token=True)
    assert losses.sae == pytest.approx(per_token.mean().item(), rel=1e-5)


@pytest.mark.parametrize(
    ("original", "spliced", "ablated", "recovered"),
    [
        (2.0, 2.0, 6.0, 1.0),  # the SAE loses nothing
        (2.0, 4.0, 6.0, 0.5),  # it wins back half of the 4 nats that ablating costs
        (2.0, 6.0, 6.0, 0.0),  # no better than ablating
        (3.0, 8.0, 5.0, -1.5),  # worse than ablating: (5 - 8) / (5 - 3)
    ],
)
def test_loss_recovered_by_hand(original, spliced, ablated, recovered):
    assert F.loss_recovered(original, spliced, ablated) == pytest.approx(recovered)
    assert math.isnan(F.loss_recovered(2.0, 3.0, 2.0))  # no gap to recover


def test_recovered_is_nan_when_ablation_changes_nothing():
    losses = F.SpliceLosses(original=2.0, sae=2.0, zero_ablated=2.0, mean_ablated=3.0, n_tokens=5)
    assert math.isnan(losses.recovered_vs_zero)
    assert losses.recovered_vs_mean == pytest.approx(1.0)


def test_splice_losses_table_by_hand():
    losses = F.SpliceLosses(original=2.0, sae=2.5, zero_ablated=6.0, mean_ablated=4.0, n_tokens=7)
    frame = losses.to_frame()
    assert frame.index.name == "condition"
    assert frame.index.tolist() == [
        "original model",
        "SAE spliced in",
        "zero-ablated",
        "mean-ablated",
    ]
    assert frame["ce_loss"].tolist() == [2.0, 2.5, 6.0, 4.0]
    assert frame["increase"].tolist() == [0.0, 0.5, 4.0, 2.0]
    assert losses.recovered_vs_zero == pytest.approx((6.0 - 2.5) / (6.0 - 2.0))
    assert losses.recovered_vs_mean == pytest.approx((4.0 - 2.5) / (4.0 - 2.0))


# ---- spliced_losses against a hand computation ---------------------------------------------------

CONDITIONS = ("original", "sae", "zero_ablated", "mean_ablated")


def hand_losses(model, sae, tokens, counted, valid, zero_all=False, mean=None):
    """The four losses by a direct loop, in one batch: replace the hook's activations at the
    counted positions (zero-ablation: every real position when ``zero_all``), cross-entropy by
    hand of the prediction at p against token p + 1, over p counted with p + 1 real."""
    attention = valid.long()
    with torch.no_grad():
        if mean is None:
            seen = {}

            def grab(acts, hook):
                seen["acts"] = acts.clone()

            model.run_with_hooks(tokens, fwd_hooks=[(HOOK, grab)], attention_mask=attention)
            mean = seen["acts"][counted].double().mean(0).float()
        makes = {
            "original": None,
            "sae": lambda a: sae.decode(sae.encode(a.to(sae.dtype))).to(a.dtype),
            "zero_ablated": lambda a: torch.zeros_like(a),
            "mean_ablated": lambda a: mean.to(a.dtype).expand_as(a),
        }
        scored = counted[:, :-1] & valid[:, 1:]
        out = {}
        for name, make in makes.items():
            where = valid if (name == "zero_ablated" and zero_all) else counted

            def hook(acts, hook, make=make, where=where):
                out_acts = acts.clone()
                out_acts[where] = make(acts)[where]
                return out_acts

            hooks = [] if make is None else [(HOOK, hook)]
            logits = model.run_with_hooks(tokens, fwd_hooks=hooks, attention_mask=attention)
            logp = torch.log_softmax(logits[:, :-1].double(), -1)
            nll = -logp.gather(-1, tokens[:, 1:, None])[..., 0]
            out[name] = nll[scored].sum().item() / int(scored.sum())
    return out, int(scored.sum())


def layout(n_rows=7, ctx=6, seed=1, d_vocab=300):
    """``n_rows`` rows of ``ctx`` tokens (more rows than columns): BOS (id 0) at the first real
    position, left padding in row 1, right padding in rows 2 and 4, a row of BOS and one token."""
    gen = torch.Generator().manual_seed(seed)
    rows = max(n_rows, 7)
    tokens = torch.randint(1, d_vocab, (rows, ctx), generator=gen)
    valid = torch.ones(rows, ctx, dtype=torch.bool)
    valid[1, :2] = False  # left padding: the attention mask moves the positions
    valid[2, 4:] = False
    valid[4, 2:] = False  # BOS and one token: nothing to score
    counted = valid.clone()
    for row in range(rows):
        first = int(valid[row].nonzero()[0])
        tokens[row, first] = 0
        counted[row, first] = False
    tokens[~valid] = 0
    return tokens[:n_rows], counted[:n_rows], valid[:n_rows]


def assert_matches(losses, expected, n):
    for name in CONDITIONS:
        assert getattr(losses, name) == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name
    assert losses.n_tokens == n


@pytest.mark.parametrize("zero_all", [False, True])
@pytest.mark.parametrize("batch_size", [3, 7])  # several batches with a short last one, and one
def test_spliced_losses_by_hand(model, sae, batch_size, zero_all):
    tokens, counted, valid = layout()
    losses = F.spliced_losses(
        model,
        sae,
        tokens,
        counted,
        valid,
        batch_size=batch_size,
        zero_ablate_all=zero_all,
        progress=False,
    )
    expected, n = hand_losses(model, sae, tokens, counted, valid, zero_all=zero_all)
    assert n == 4 + 2 + 2 + 4 + 0 + 4 + 4  # the shift by one, padding, and the short row 4
    assert_matches(losses, expected, n)
    assert losses.sae != pytest.approx(losses.original, rel=1e-3)  # the SAE changes something


def test_spliced_losses_counted_as_integers_and_valid_by_default(model, sae):
    tokens, counted, _ = layout(n_rows=3)
    tokens[:, 0] = 0
    counted = torch.ones_like(counted, dtype=torch.long)
    counted[:, 0] = 0
    losses = F.spliced_losses(model, sae, tokens, counted, batch_size=2, progress=False)
    expected, n = hand_losses(
        model, sae, tokens, counted.bool(), torch.ones_like(counted, dtype=torch.bool)
    )
    assert_matches(losses, expected, n)


def test_spliced_losses_with_a_float64_sae(model, monkeypatch):
    """The SAE's reconstruction goes back to the model's dtype: the rest of the model runs in it."""
    sae64 = build_sae().to(torch.float64)
    tokens, counted, valid = layout(n_rows=3)
    dtypes = set()
    run = model.run_with_hooks

    def spy(tokens, *args, fwd_hooks=(), **kwargs):
        def record(acts, hook):
            dtypes.add(acts.dtype)

        return run(
            tokens, *args, fwd_hooks=[*fwd_hooks, ("ln_final.hook_normalized", record)], **kwargs
        )

    monkeypatch.setattr(model, "run_with_hooks", spy)
    losses = F.spliced_losses(model, sae64, tokens, counted, valid, progress=False)
    monkeypatch.undo()
    assert dtypes == {torch.float32}
    expected, n = hand_losses(model, sae64, tokens, counted, valid)
    assert_matches(losses, expected, n)


def test_spliced_losses_rejects_bad_arguments(model, sae):
    tokens, counted, valid = layout(n_rows=3)
    with pytest.raises(ValueError, match="must all be"):
        F.spliced_losses(model, sae, tokens, counted[:, :-1], valid, progress=False)
    with pytest.raises(ValueError, match="must all be"):
        F.spliced_losses(model, sae, tokens, counted, valid[:, :-1], progress=False)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        F.spliced_losses(model, sae, tokens, counted, valid, batch_size=0, progress=False)
    short = torch.zeros_like(counted)
    short[:, 0] = True  # BOS-like single counted position at the end of nothing real
    short_valid = short.clone()
    with pytest.raises(ValueError, match="too short"):
        F.spliced_losses(model, sae, tokens, short, short_valid, progress=False)
    with pytest.raises(ValueError, match="last dimension must be the SAE's d_in = 48"):
        F.spliced_losses(
            model, sae, tokens, counted, valid, mean_activation=torch.zeros(3), progress=False
        )
    one = F.spliced_losses(model, sae, tokens, counted, valid, batch_size=1, progress=False)
    expected, n = hand_losses(model, sae, tokens, counted, valid)
    assert_matches(one, expected, n)


def batch_sizes_seen(monkeypatch, model):
    """Record the number of rows of each batch the model computes losses on."""
    seen = []
    run = model.run_with_hooks

    def spy(tokens, *args, **kwargs):
        if kwargs.get("return_type") == "loss":
            seen.append(tokens.shape[0])
        return run(tokens, *args, **kwargs)

    monkeypatch.setattr(model, "run_with_hooks", spy)
    return seen


def test_spliced_losses_batches_of_16_by_default(model, sae, monkeypatch):
    tokens, counted, valid = layout(n_rows=17, ctx=3)
    seen = batch_sizes_seen(monkeypatch, model)
    F.spliced_losses(model, sae, tokens, counted, valid, progress=False)
    assert seen == [16] * 4 + [1] * 4  # four conditions per batch


def test_splice_losses_passes_batch_size_and_defaults_to_16(model, sae, monkeypatch):
    texts = [f"Hello world {i}" for i in range(17)]
    seen = batch_sizes_seen(monkeypatch, model)
    F.splice_losses(model, sae, texts, 8, progress=False)
    assert seen == [16] * 4 + [1] * 4
    seen.clear()
    F.splice_losses(model, sae, texts[:5], 8, batch_size=2, progress=False)
    assert seen == [2] * 4 + [2] * 4 + [1] * 4


def test_splice_losses_by_hand_with_padding(model, sae):
    """Texts of different lengths: padding is neither attended to, replaced nor scored."""
    texts = ["Hello world", "The capital of France is Paris.", "def add(a, b): return a + b"]
    losses = F.splice_losses(model, sae, texts, CTX, batch_size=2, progress=False)
    tokens, lengths = F.tokenize_texts(model, texts, CTX)
    positions = torch.arange(tokens.shape[1])
    valid = positions[None] < lengths[:, None]
    counted = valid & (positions[None] > 0)
    assert not valid.all()  # there is padding
    expected, n = hand_losses(model, sae, tokens, counted, valid)
    assert n == int((lengths - 2).sum())
    assert_matches(losses, expected, n)


@pytest.mark.parametrize("through_texts", [False, True])
def test_spliced_losses_progress_bar(model, sae, capsys, through_texts):
    tokens, counted, valid = layout(n_rows=2, ctx=4)

    def call(**kwargs):
        if through_texts:
            return F.splice_losses(model, sae, ["Hello world"], 8, **kwargs)
        return F.spliced_losses(model, sae, tokens, counted, valid, **kwargs)

    call(progress=False)
    assert "Cross-entropy" not in capsys.readouterr().err
    call()  # progress by default
    assert "Cross-entropy under 4 conditions" in capsys.readouterr().err
    call(progress=True)
    assert "Cross-entropy under 4 conditions" in capsys.readouterr().err
