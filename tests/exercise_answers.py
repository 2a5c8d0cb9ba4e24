"""Answers to the exercises that more than one test file gives the checkers (the checkers' own
tests and the tests of their messages in both languages)."""

from __future__ import annotations

import torch


def right_ablated(x, sae, f):
    """The right answer to exercise 2: latent f removed, the error term kept."""
    latent_acts = sae.encode(x)
    error = x - sae.decode(latent_acts)
    latent_acts[:, f] = 0
    return sae.decode(latent_acts) + error


def most_active_latent(model, sae, tokens):
    """The SAE's input on ``tokens`` and the latent with the largest total activation there."""
    x = model.run_with_cache(tokens)[1]["blocks.1.hook_resid_pre"][0]
    return x, int(sae.encode(x).sum(0).argmax())


# Tutorial 5


def right_forward(x, w_enc, b_enc, w_dec, b_dec, k):
    pre = x @ w_enc + b_enc
    top = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    return acts @ w_dec + b_dec


def right_virtual_weight(w_dec_low, w_enc_high, i, j):
    row = w_dec_low[i]
    return float((row - row.mean()) @ w_enc_high[:, j])


def right_edge(activation, w_dec_row, final_scale, ln_w, w_u_top, w_u_second):
    centred = w_dec_row - w_dec_row.mean()
    return float(activation * (centred / final_scale * ln_w) @ (w_u_top - w_u_second))


def dense_relu(x, w_enc, b_enc, w_dec, b_dec, k):
    return (x @ w_enc + b_enc).relu() @ w_dec + b_dec
