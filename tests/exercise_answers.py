"""Answers to the exercises that more than one test file gives the checkers (the checkers' own
tests and the tests of their messages in both languages)."""

from __future__ import annotations


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
