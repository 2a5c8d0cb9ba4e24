"""What a transcoder latent means from the weights alone, with no text run through the model.

Because a transcoder's latents read from and write to the residual stream through fixed vectors
(``W_enc[:, i]`` in, ``W_dec[i]`` out), two of their connections need no activations
(Dunefsky et al. 2024 call them input-invariant):

* **de-embedding** of a layer-0 latent: how much each vocabulary token's embedding, on its own,
  drives the latent: ``LN(W_E[t]) . W_enc[:, i]``, where ``LN`` centres the embedding and divides it
  by its standard deviation, as the MLP's LayerNorm would if the embedding were the whole residual
  stream (position embedding and attention left out);
* **virtual weights** from the latents of a lower layer to those of a higher one:
  ``W_dec_low @ P @ W_enc_high / s``, with ``P`` the centring LayerNorm applies and ``s`` a typical
  LayerNorm scale (the division by the standard deviation depends on the input; pass the mean
  scale of the higher layer's MLP input to put the weights in the units of activations).

A latent's actual input from another latent on a token is the virtual weight times the lower
latent's activation there, divided by that token's own scale: :func:`latent_inputs` averages it
over the tokens where the higher latent fires, to compare with the weights.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from .replacement import Transcoders, check_transcoders
from .transcoders import mlp_in_hook


def _center(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=-1, keepdim=True)


def _check_latent(latent: int, d_sae: int) -> int:
    if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < d_sae:
        raise ValueError(f"latent must be a whole number in 0..{d_sae - 1}, got {latent!r}")
    return latent


def de_embedding(model: Any, transcoder: Any, latent: int, k: int = 10) -> pd.DataFrame:
    """The ``k`` tokens whose embedding drives ``latent`` of a layer-0 transcoder most, by
    ``LN(W_E[t]) . W_enc[:, latent]`` (module docstring): columns ``token``, ``token_id``,
    ``score``."""
    with torch.no_grad():
        latent = _check_latent(latent, transcoder.cfg.d_sae)
        embeddings = _center(model.W_E.float())
        normalized = embeddings / embeddings.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt()
        scores = normalized @ transcoder.W_enc[:, latent].float()
        top = scores.topk(min(k, len(scores)))
        ids = top.indices.tolist()
        return pd.DataFrame(
            {
                "token": [model.to_single_str_token(i) for i in ids],
                "token_id": ids,
                "score": top.values.tolist(),
            }
        )


def virtual_weights(
    low: Any, high: Any, scale: float = 1.0, latent: int | None = None
) -> torch.Tensor:
    """``[d_sae_low, d_sae_high]``: how much a unit of each lower latent adds to each higher
    latent's input, through the residual stream and LayerNorm's centring, divided by ``scale``.

    With ``latent``, only that higher latent's column, ``[d_sae_low]``, computed without the whole
    matrix (for two of GPT-2 small's 24,576-latent transcoders that matrix alone is 2.4 GB)."""
    with torch.no_grad():
        if low.cfg.d_out != high.cfg.d_in:
            raise ValueError(f"low writes {low.cfg.d_out} dimensions, high reads {high.cfg.d_in}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        reads = (
            high.W_enc if latent is None else high.W_enc[:, _check_latent(latent, high.cfg.d_sae)]
        )
        return _center(low.W_dec.float()) @ reads.float() / scale


def mean_scale(model: Any, tokens: torch.Tensor, mask: torch.Tensor, layer: int) -> float:
    """The mean LayerNorm scale (standard deviation) of layer ``layer``'s MLP input over the
    masked positions of ``tokens [n, ctx]``."""
    with torch.no_grad():
        name = f"blocks.{layer}.ln2.hook_scale"
        _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=[name])
        return float(cache[name][..., 0][mask.to(cache[name].device)].mean())


def latent_inputs(
    model: Any,
    transcoders: Transcoders,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    layer: int,
    latent: int,
    scale: float,
    k: int = 10,
) -> pd.DataFrame:
    """The lower-layer latents that feed ``latent`` of layer ``layer`` (at the same position), by
    virtual weight and by what they actually add where ``latent`` fires.

    Columns: ``source`` ("L{layer}/{i}"), ``virtual_weight`` (at ``scale``), ``mean_input`` (the
    mean, over the masked tokens where ``latent`` fires, of ``a_i * W_dec[i] P W_enc[:, latent] /
    s`` with the token's own activation and scale), ``co_firing`` (share of those tokens where the
    source fires too). The ``k`` sources with the largest ``|mean_input|`` and the ``k`` with the
    largest ``|virtual_weight|``, one row each.
    """
    with torch.no_grad():
        transcoders = check_transcoders(model, transcoders)
        lower = [i for i in transcoders if i < layer]
        if layer not in transcoders or not lower:
            raise ValueError(
                f"layer must have a transcoder and one below it (transcoders for {sorted(transcoders)}),"
                f" got {layer}"
            )
        high = transcoders[layer]
        latent = _check_latent(latent, high.cfg.d_sae)
        names = [mlp_in_hook(i) for i in [*lower, layer]] + [f"blocks.{layer}.ln2.hook_scale"]
        _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=names)
        keep = mask.to(cache[names[0]].device)
        fires = high.encode(cache[mlp_in_hook(layer)][keep])[:, latent] > 0
        scales = cache[f"blocks.{layer}.ln2.hook_scale"][keep][:, 0][fires]
        frames = []
        for low_layer in lower:
            low = transcoders[low_layer]
            weights = virtual_weights(low, high, latent=latent)  # per unit, scale 1
            acts = low.encode(cache[mlp_in_hook(low_layer)][keep])[fires]  # [n_fire, d_sae_low]
            n_fire = max(1, int(fires.sum()))
            mean_input = (acts / scales[:, None]).sum(0) * weights / n_fire
            frames.append(
                pd.DataFrame(
                    {
                        "source": [f"L{low_layer}/{i}" for i in range(low.cfg.d_sae)],
                        "virtual_weight": (weights / scale).tolist(),
                        "mean_input": mean_input.tolist(),
                        "co_firing": ((acts > 0).float().sum(0) / n_fire).tolist(),
                    }
                )
            )
        frame = pd.concat(frames, ignore_index=True)
        by_input = frame["mean_input"].abs().nlargest(k).index
        by_weight = frame["virtual_weight"].abs().nlargest(k).index
        chosen = list(dict.fromkeys([*by_input, *by_weight]))
        return frame.loc[chosen].sort_values("mean_input", key=abs, ascending=False)
