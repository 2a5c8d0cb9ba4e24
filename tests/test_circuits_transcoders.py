"""utils/circuits/transcoders.py against hand computations: a fresh transcoder's weights, the
TopK forward pass and its metrics, the MLP inputs and outputs harvested from the model, the token
mask, and the training loop written out plainly."""

from __future__ import annotations

import re
import time

import pytest
import torch
from circuit_fixtures import lm  # noqa: F401 (fixtures)
from random_models import SAMPLE_TEXTS

from utils import circuits as C


def test_harvest_mlp_io_is_the_cached_mlp_in_and_out_at_the_masked_positions(lm):
    tokens = torch.stack([lm.to_tokens(t)[0, :6] for t in SAMPLE_TEXTS[:3]])
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    mask[1, 4:] = False  # another text's "padding"
    got = C.harvest_mlp_io(lm, tokens, [0], mask=mask, batch_size=2)
    _, cache = lm.run_with_cache(tokens)  # the whole model, every hook
    x, y = got[0]
    assert x.shape == (int(mask.sum()), lm.cfg.d_model)
    torch.testing.assert_close(x, cache["blocks.0.ln2.hook_normalized"][mask])
    torch.testing.assert_close(y, cache["blocks.0.hook_mlp_out"][mask])


def test_fvu_by_hand():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # mean [2, 1]; total variance 1+1+1+1 = 4
    x_hat = torch.tensor([[1.0, 1.0], [3.0, 2.0]])  # one squared error of 1
    assert C.fvu(x_hat, x) == pytest.approx(0.25)
    assert C.fvu(x.mean(0).expand_as(x), x) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        C.fvu(x[:1], x)


def test_token_mask_leaves_out_bos_first_position_and_padding():
    tokens = torch.tensor([[9, 4, 9, 5, 6], [9, 7, 8, 0, 0]])
    mask = C.token_mask(tokens, bos_token_id=9, lengths=torch.tensor([5, 3]))
    assert mask.tolist() == [[False, True, False, True, True], [False, True, True, False, False]]


def test_topk_transcoder_forward_and_metrics_by_hand():
    tc = C.make_transcoder(4, 3, 8, 2, layer=0, seed=1)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    pre = x @ tc.W_enc + tc.b_enc
    top = pre.topk(2, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    assert torch.allclose(tc.encode(x), acts, atol=1e-6)
    assert torch.allclose(tc(x), acts @ tc.W_dec + tc.b_dec, atol=1e-6)
    metrics = C.transcoder_metrics(tc, x, tc(x))
    assert metrics.fvu == pytest.approx(0.0, abs=1e-6)
    assert metrics.l0 == pytest.approx(float((acts != 0).sum()) / 5)
    assert metrics.dead == int((acts != 0).any(0).logical_not().sum())


def test_use_topk_survives_save_and_load(tmp_path):
    from sae_lens import SAE

    tc = C.make_transcoder(4, 4, 8, 3, layer=1, seed=0)
    tc.save_model(tmp_path / "tc")
    loaded = SAE.load_from_disk(str(tmp_path / "tc"))
    x = torch.randn(6, 4)
    assert not torch.allclose(loaded(x), tc(x))  # a plain load has SAELens' ReLU
    C.use_topk(loaded)
    assert torch.allclose(loaded(x), tc(x), atol=1e-6)
    loaded.cfg.metadata.activation_fn = None
    with pytest.raises(ValueError, match="pass k"):
        C.use_topk(loaded)
    with pytest.raises(ValueError, match="1..8"):
        C.use_topk(loaded, 9)


def test_training_lowers_the_loss_and_checks_shapes():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 8, generator=generator)
    y = torch.relu(x @ torch.randn(8, 8, generator=generator))
    tc = C.make_transcoder(8, 8, 32, 4, layer=0, seed=0)
    before = C.transcoder_metrics(tc, x, y).fvu
    run = C.train_transcoder(
        tc, x, y, n_tokens=256 * 60, batch_size=256, lr=1e-2, progress=False, unit_decoder=True
    )
    assert run.n_steps == 60 and run.n_tokens == 256 * 60
    assert C.transcoder_metrics(tc, x, y).fvu < 0.5 * before
    assert torch.allclose(tc.W_dec.norm(dim=-1), torch.ones(32), atol=1e-5)
    with pytest.raises(ValueError, match="d_in=8"):
        C.train_transcoder(tc, x[:, :4], y, n_tokens=512, progress=False)
    with pytest.raises(ValueError, match="at least one batch"):
        C.train_transcoder(tc, x, y, n_tokens=100, batch_size=256, progress=False)
    assert C.train_transcoder(tc, x, y, n_tokens=256, batch_size=256, progress=False).n_steps == 1
    for bad_x, bad_y in ((x[:100], y[:99]), (x[:100, 0], y[:100]), (x[:100], y[:100, 0])):
        with pytest.raises(ValueError, match=r"must be \[n, d\] with the same n"):
            C.train_transcoder(tc, bad_x, bad_y, n_tokens=256, progress=False)


def test_training_s_defaults_and_its_progress_bar(capsys):
    """The defaults the docstring reports as measured best (batch 2,048, rate 2e-3, seed 0, a
    log every 25 steps, no decay, free decoder norms) and a progress bar named by the layer."""
    import copy

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(2048 * 27, 4, generator=generator)
    y = torch.relu(x @ torch.randn(4, 3, generator=generator))
    tc = C.make_transcoder(4, 3, 8, 2, layer=3, seed=0)
    explicit = copy.deepcopy(tc)
    run = C.train_transcoder(tc, x, y, n_tokens=2048 * 27)
    assert re.search(r"(?<![A-Za-z])layer 3:", capsys.readouterr().err)  # the bar's label
    same = C.train_transcoder(
        explicit, x, y, n_tokens=2048 * 27, batch_size=2048, lr=2e-3, seed=0, log_every=25,
        progress=False, decay_fraction=0.0, unit_decoder=False,
    )  # fmt: skip
    assert (
        (run.steps, run.fvu, run.n_steps)
        == (same.steps, same.fvu, same.n_steps)
        == ([0, 25, 26], same.fvu, 27)
    )
    for name, param in tc.named_parameters():
        assert torch.equal(param, dict(explicit.named_parameters())[name]), name
    assert not torch.allclose(tc.W_dec.norm(dim=-1), torch.ones(8))


def _training_by_hand(tc, x, y, n_tokens, batch_size, lr, seed, log_every, decay_fraction, unit):
    """The training loop written out plainly: Adam, the rate set by hand each step, batches from
    a seeded permutation that is redrawn when it runs out, loss = squared error / batch variance."""
    generator = torch.Generator().manual_seed(seed)
    n_steps = n_tokens // batch_size
    with torch.no_grad():
        tc.b_dec.copy_(y.mean(dim=0))
    optimizer = torch.optim.Adam(tc.parameters(), lr=lr)
    decay_from = n_steps - int(decay_fraction * n_steps)
    order, cursor, logged = torch.randperm(len(x), generator=generator), 0, []
    with torch.enable_grad():
        for step in range(n_steps):
            factor = 1.0 if step < decay_from else (n_steps - step) / (n_steps - decay_from)
            optimizer.param_groups[0]["lr"] = lr * factor
            if cursor + batch_size > len(x):
                order, cursor = torch.randperm(len(x), generator=generator), 0
            rows = order[cursor : cursor + batch_size]
            cursor += batch_size
            error = (tc(x[rows]) - y[rows]).pow(2).sum()
            loss = error / (y[rows] - y[rows].mean(dim=0)).pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if unit:
                with torch.no_grad():
                    tc.W_dec /= tc.W_dec.norm(dim=-1, keepdim=True)
            if step % log_every == 0 or step == n_steps - 1:
                logged.append((step, float(loss)))
    return logged


@pytest.mark.parametrize(
    ("decay_fraction", "unit", "rows"), [(0.0, False, 100), (0.5, True, 100), (1.0, False, 96)]
)
def test_training_is_the_loop_written_out_by_hand(decay_fraction, unit, rows):
    """7 steps of 32 rows from 100 (the permutation is redrawn at step 3) or from exactly 96
    (the third batch still uses the first permutation's last rows), logged every 4 steps and at
    the last: the same weights and logged losses as the plain loop above."""
    import copy

    generator = torch.Generator().manual_seed(1)
    x = torch.randn(rows, 4, generator=generator)
    y = torch.relu(x @ torch.randn(4, 3, generator=generator)) + 0.5
    tc = C.make_transcoder(4, 3, 12, 3, layer=1, seed=2)
    by_hand = copy.deepcopy(tc)
    started = time.perf_counter()
    run = C.train_transcoder(
        tc,
        x,
        y,
        n_tokens=7 * 32 + 5,
        batch_size=32,
        lr=3e-2,
        seed=4,
        log_every=4,
        progress=False,
        decay_fraction=decay_fraction,
        unit_decoder=unit,
    )
    took = time.perf_counter() - started
    logged = _training_by_hand(by_hand, x, y, 7 * 32 + 5, 32, 3e-2, 4, 4, decay_fraction, unit)
    assert (run.n_steps, run.n_tokens) == (7, 7 * 32)
    assert run.steps == [s for s, _ in logged] == [0, 4, 6]
    assert run.fvu == pytest.approx([v for _, v in logged], rel=1e-5)
    for name, param in tc.named_parameters():
        assert torch.allclose(param, dict(by_hand.named_parameters())[name], atol=1e-6), name
    assert not tc.training and 0 < run.seconds <= took
    with pytest.raises(ValueError, match=r"decay_fraction must be in \[0, 1\], got 1.5"):
        C.train_transcoder(tc, x, y, n_tokens=64, batch_size=32, progress=False, decay_fraction=1.5)


def test_token_mask_drops_position_zero_even_when_it_is_not_bos():
    tokens = torch.tensor([[3, 4, 9, 5]])
    assert C.token_mask(tokens, bos_token_id=9).tolist() == [[False, True, False, True]]
    assert C.token_mask(tokens, bos_token_id=None).tolist() == [[False, True, True, True]]


def test_a_fresh_transcoder_by_hand():
    """Decoder rows: seeded normal draws scaled to unit length; encoder: their transpose when
    d_in == d_out, else the next normal draws over sqrt(d_in); zero biases; TopK; the hooks, model
    name and BOS setting recorded."""
    tc = C.make_transcoder(5, 3, 7, 2, layer=4, model_name="m", seed=11)
    generator = torch.Generator().manual_seed(11)
    w_dec = torch.randn(7, 3, generator=generator)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
    w_enc = torch.randn(5, 7, generator=generator) / 5**0.5
    assert torch.allclose(tc.W_dec, w_dec) and torch.allclose(tc.W_enc, w_enc)
    assert not tc.b_enc.any() and not tc.b_dec.any()
    square = C.make_transcoder(3, 3, 7, 2, layer=0, seed=11)
    assert torch.allclose(square.W_enc, square.W_dec.T)
    meta = tc.cfg.metadata
    assert (meta.hook_name, meta.hook_name_out) == (
        "blocks.4.ln2.hook_normalized",
        "blocks.4.hook_mlp_out",
    )
    assert meta.model_name == "m" and meta.prepend_bos is True
    assert tc.cfg.apply_b_dec_to_input is False
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert ((tc.encode(x) != 0).sum(-1) <= 2).all()
    assert C.make_transcoder(3, 3, 7, 1, layer=0).cfg.d_sae == 7  # k = 1 and k = d_sae are allowed
    assert C.make_transcoder(3, 3, 7, 7, layer=0).cfg.d_sae == 7
    one = C.make_transcoder(1, 1, 1, 1, layer=0)  # every size may be 1
    assert (one.cfg.d_in, one.cfg.d_out, one.cfg.d_sae) == (1, 1, 1)
    default = C.make_transcoder(5, 3, 7, 2, layer=4)  # defaults: no model name, seed 0
    assert default.cfg.metadata.model_name == ""
    assert torch.equal(default.W_dec, C.make_transcoder(5, 3, 7, 2, layer=4, seed=0).W_dec)
    assert not torch.equal(default.W_dec, C.make_transcoder(5, 3, 7, 2, layer=4, seed=1).W_dec)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(d_in=0), "d_in must be a positive whole number, got 0"),
        (dict(d_out=True), "d_out must be a positive whole number, got True"),
        (dict(d_sae=2.0), "d_sae must be a positive whole number, got 2.0"),
        (dict(k=0), r"k must be a whole number of latents in 1..7 \(d_sae\), got 0"),
        (dict(k=8), r"in 1..7 \(d_sae\), got 8"),
        (dict(k=True), "got True"),
    ],
)
def test_a_transcoder_of_impossible_sizes_is_refused(kwargs, message):
    sizes = dict(d_in=3, d_out=3, d_sae=7, k=2) | kwargs
    with pytest.raises(ValueError, match=message):
        C.make_transcoder(**sizes, layer=0)


def test_harvest_mlp_io_s_default_mask_drops_position_zero_and_every_bos(lm):
    """Without a mask: the tokenizer's BOS positions (also one in the middle of a text) and position
    0 are left out; every layer asked for, the last one too, is the cached MLP in and out."""
    bos = lm.tokenizer.bos_token_id
    tokens = torch.stack([lm.to_tokens(t)[0, :6] for t in SAMPLE_TEXTS[:3]])
    tokens[1, 3] = bos  # a document boundary inside a text
    tokens[2, 0] = tokens[2, 1]  # position 0 is dropped even when it is not BOS
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    mask[1, 3] = False
    assert (tokens == bos).sum() == 3 and not (tokens[mask] == bos).any()
    got = C.harvest_mlp_io(lm, tokens, [1, 0])
    _, cache = lm.run_with_cache(tokens)
    assert sorted(got) == [0, 1]
    for layer in (0, 1):
        x, y = got[layer]
        assert x.shape == y.shape == (int(mask.sum()), lm.cfg.d_model) == (14, lm.cfg.d_model)
        torch.testing.assert_close(x, cache[f"blocks.{layer}.ln2.hook_normalized"][mask])
        torch.testing.assert_close(y, cache[f"blocks.{layer}.hook_mlp_out"][mask])


def test_harvest_mlp_io_without_a_tokenizer_masks_only_position_zero(lm, monkeypatch):
    bos = lm.tokenizer.bos_token_id
    tokens = torch.stack([lm.to_tokens(t)[0, :5] for t in SAMPLE_TEXTS[:2]])
    tokens[0, 2] = bos
    monkeypatch.setattr(lm, "tokenizer", None)
    x, y = C.harvest_mlp_io(lm, tokens, [0])[0]
    _, cache = lm.run_with_cache(tokens)
    torch.testing.assert_close(x, cache["blocks.0.ln2.hook_normalized"][:, 1:].flatten(0, 1))
    torch.testing.assert_close(y, cache["blocks.0.hook_mlp_out"][:, 1:].flatten(0, 1))


def test_harvest_mlp_io_refuses_tokens_not_2d_and_layers_outside_the_model(lm):
    tokens = lm.to_tokens(SAMPLE_TEXTS[0])[:, :4]
    with pytest.raises(ValueError, match=r"tokens must be \[n_texts, ctx\], got shape \(4,\)"):
        C.harvest_mlp_io(lm, tokens[0], [0])
    for layer in (2, -1):  # the model has layers 0 and 1
        with pytest.raises(ValueError, match=rf"layer {layer} is not in 0\.\.1$"):
            C.harvest_mlp_io(lm, tokens, [0, layer])


def test_harvest_mlp_io_runs_32_texts_a_pass_by_default_without_a_bar(lm, monkeypatch, capsys):
    """The default batch is 32 texts (33 texts: two passes, of 32 and 1) and no progress bar."""
    tokens = lm.to_tokens(SAMPLE_TEXTS[1])[:, :3].repeat(33, 1)
    passes = []
    run_with_cache = lm.run_with_cache

    def counting(batch, **kwargs):
        passes.append(len(batch))
        return run_with_cache(batch, **kwargs)

    monkeypatch.setattr(lm, "run_with_cache", counting)
    x, _ = C.harvest_mlp_io(lm, tokens, [0])[0]
    assert passes == [32, 1] and len(x) == 33 * 2
    assert capsys.readouterr().err == ""


def test_harvest_mlp_io_s_progress_bar_is_named_and_erased(lm, capsys):
    tokens = lm.to_tokens(SAMPLE_TEXTS[1])[:, :3].repeat(3, 1)
    x, _ = C.harvest_mlp_io(lm, tokens, [0], batch_size=1, progress=True)[0]
    assert len(x) == 3 * 2
    err = capsys.readouterr().err
    assert re.search(r"(?<![A-Za-z])harvest: .*/3 ", err)  # the bar's label, one step a batch
    assert not err.endswith("\n")  # leave=False: the finished bar is wiped, not left behind


def test_harvest_mlp_io_in_float16_by_hand(lm):
    tokens = torch.stack([lm.to_tokens(t)[0, :5] for t in SAMPLE_TEXTS[:2]])
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 2:] = True
    x, y = C.harvest_mlp_io(lm, tokens, [1], mask=mask, dtype=torch.float16)[1]
    _, cache = lm.run_with_cache(tokens)
    assert x.dtype == y.dtype == torch.float16 and x.device.type == "cpu"
    torch.testing.assert_close(x, cache["blocks.1.ln2.hook_normalized"][mask].half())
    torch.testing.assert_close(y, cache["blocks.1.hook_mlp_out"][mask].half())


def test_transcoder_metrics_add_up_over_batches_by_hand():
    """5 rows in batches of 2: L0 counts every batch's active latents, a latent is dead only if
    it fired in no batch, and the tokens scored are all 5."""
    tc = C.make_transcoder(4, 3, 8, 2, layer=0, seed=3)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(4))
    y = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    pre = x @ tc.W_enc + tc.b_enc
    top = pre.topk(2, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    active = acts != 0
    dead = int((~active.any(0)).sum())
    assert dead != int((~active[4:].any(0)).sum())  # the last batch alone would differ
    y_hat = acts @ tc.W_dec + tc.b_dec
    fvu = float((y - y_hat).pow(2).sum().detach() / (y - y.mean(0)).pow(2).sum())
    metrics = C.transcoder_metrics(tc, x, y, batch_size=2)
    assert metrics.l0 == pytest.approx(float(active.sum()) / 5)
    assert metrics.dead == dead and metrics.n_tokens == 5
    assert metrics.fvu == pytest.approx(fvu, rel=1e-5)
    assert metrics.as_dict() == {"fvu": metrics.fvu, "l0": metrics.l0, "dead": dead, "n_tokens": 5}


def test_transcoder_metrics_refuses_mismatched_or_no_rows_and_one_has_no_variance():
    tc = C.make_transcoder(4, 3, 8, 2, layer=0, seed=3)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(4))
    y = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    with pytest.raises(ValueError, match="same, non-zero number of rows: 5 vs 4"):
        C.transcoder_metrics(tc, x, y[:4])
    with pytest.raises(ValueError, match="same, non-zero number of rows: 0 vs 0"):
        C.transcoder_metrics(tc, x[:0], y[:0])
    with pytest.raises(ValueError, match="at least two activation vectors"):
        C.transcoder_metrics(tc, x[:1], y[:1])  # one row is not refused as empty: it has no FVU


def test_transcoder_metrics_scores_8192_rows_a_batch_by_default(monkeypatch):
    tc = C.make_transcoder(4, 3, 8, 2, layer=0, seed=3)
    x = torch.randn(8193, 4, generator=torch.Generator().manual_seed(4))
    y = tc(x).detach()
    batches = []
    encode = tc.encode

    def counting(rows):
        batches.append(len(rows))
        return encode(rows)

    monkeypatch.setattr(tc, "encode", counting)
    metrics = C.transcoder_metrics(tc, x, y)
    assert batches == [8192, 1] and metrics.n_tokens == 8193
