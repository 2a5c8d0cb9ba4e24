"""Helpers shared by the tests of utils/circuits/ (tests/test_circuits_*.py, but for the loading
ones): the sizes of their random transcoders and a three-node attribution graph whose edges are
written down, small enough to work out by hand. The module-scoped fixtures built with them (the
random model, its transcoders, a prompt and its graph) are in ``circuit_fixtures.py``."""

from __future__ import annotations

import pandas as pd
import torch

from utils.circuits.graph import AttributionGraph

D_SAE, K = 64, 6  # the random TopK transcoders' latents and k


def randomize_norms_and_biases(model, seed: int = 5) -> None:
    """Make every LayerNorm weight (in [0.5, 1.5)) and bias, and the attention and MLP biases,
    random in place, so a hand computation that forgets one of them fails."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith((".w", ".b", "b_V", "b_O", "b_Q", "b_K", "b_in", "b_out")):
                if "ln" in name and name.endswith(".w"):
                    param.copy_(0.5 + torch.rand(param.shape, generator=generator))
                else:
                    param.copy_(0.1 * torch.randn(param.shape, generator=generator))


def hand_graph() -> AttributionGraph:
    """bias, embedding e, latent l (value 2), error r, target T. Edges: e -> l 2, bias -> l 0;
    l -> T 3, r -> T 1, e -> T -1, bias -> T 0.5."""
    nodes = pd.DataFrame(
        [
            dict(kind="bias", layer=-1, position=0, latent=-1, value=1.0, label="bias"),
            dict(kind="embedding", layer=-1, position=1, latent=-1, value=1.0, label="e"),
            dict(kind="latent", layer=0, position=1, latent=5, value=2.0, label="l"),
            dict(kind="error", layer=0, position=1, latent=-1, value=1.0, label="r"),
            dict(kind="target", layer=1, position=1, latent=-1, value=3.5, label="T"),
        ]
    )
    adjacency = torch.zeros(5, 5)
    adjacency[2, 1] = 2.0
    adjacency[4, 2], adjacency[4, 3], adjacency[4, 1], adjacency[4, 0] = 3.0, 1.0, -1.0, 0.5
    return AttributionGraph(
        tokens=torch.tensor([0, 1]),
        str_tokens=["<bos>", "a"],
        nodes=nodes,
        adjacency=adjacency,
        target="logit_diff",
        target_tokens=(1, 2),
        target_str=("x", "y"),
        n_layers=1,
        node_input=torch.tensor([0, 0, 2.0, 0, 3.5]),
    )
