"""The module-scoped fixtures the tests of utils/circuits/ share (tests/test_circuits_*.py, but for
the loading ones): the random 2-layer model with every LayerNorm and bias made random, one random
TopK transcoder per layer, a 7-token prompt and its attribution graph. Each test module that
imports them builds them once: a few hundredths of a second after the session's first build (which
pays for the imports, about 3 s).

A test module imports the fixtures it uses, and those they are built on (pytest finds fixtures in
a module's namespace): ``graph`` needs ``lm``, ``transcoders`` and ``prompt`` imported too."""

from __future__ import annotations

import pytest
import torch
from circuit_helpers import D_SAE, K, randomize_norms_and_biases
from random_models import SAMPLE_TEXTS, build_model, build_tokenizer

from utils import circuits as C


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """The random 2-layer model with every LayerNorm weight and bias and the attention and MLP
    biases made random too, so a hand computation that forgets one of them fails."""
    model = build_model(build_tokenizer(tmp_path_factory.mktemp("tok")))
    randomize_norms_and_biases(model)
    return model


@pytest.fixture(scope="module")
def transcoders(lm):
    """One random TopK transcoder per layer, with non-zero biases."""
    out = []
    for layer in range(lm.cfg.n_layers):
        tc = C.make_transcoder(lm.cfg.d_model, lm.cfg.d_model, D_SAE, K, layer, seed=layer)
        with torch.no_grad():
            tc.b_enc.copy_(0.1 * torch.randn(D_SAE, generator=torch.Generator().manual_seed(7)))
            tc.b_dec.copy_(0.1 * torch.randn(lm.cfg.d_model, generator=torch.Generator()))
        out.append(tc)
    return out


@pytest.fixture(scope="module")
def prompt(lm):
    return lm.to_tokens(SAMPLE_TEXTS[0])[0, :7]


@pytest.fixture(scope="module")
def graph(lm, transcoders, prompt):
    return C.build_graph(lm, transcoders, prompt, batch_size=16)
