"""Ablation: removing one latent everywhere with the SAE spliced in and its error term kept, and
what that does to the predictions where it fired (:func:`ablate_latent`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .. import features as F
from .checks import _acts_post_name, _check_tokens, _scored_mask


@dataclass
class AblationEffect:
    """What removing one latent did at the positions where it fired.

    Attributes:
        latent: the latent removed.
        n_positions: predictions measured (positions where it fired, followed by a real token).
        loss_clean, loss_ablated: mean next-token cross-entropy there, before and after.
        logprob_change: ``[d_vocab]`` mean change of each token's log-probability there
            (ablated minus clean; negative: the latent was raising that token).
    """

    latent: int
    n_positions: int
    loss_clean: float
    loss_ablated: float
    logprob_change: torch.Tensor

    @property
    def loss_increase(self) -> float:
        return self.loss_ablated - self.loss_clean

    def tokens_losing_most(self, vocab: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` tokens whose log-probability fell most, with the change (rank 1 first)."""
        values, ids = self.logprob_change.topk(k, largest=False)
        return pd.DataFrame(
            {
                "token": [vocab[i] for i in ids.tolist()],
                "token_id": ids.tolist(),
                "logprob_change": values.tolist(),
            },
            index=pd.RangeIndex(1, k + 1, name="rank"),
        )


def ablate_latent(
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    counted: torch.Tensor,
    latent: int,
    batch_size: int = 16,
    direct_path: bool = True,
) -> AblationEffect:
    """Remove ``latent`` (set its activation to 0 everywhere) with the SAE spliced in and
    its error term kept, and measure the predictions at the positions where the latent fired.

    With ``use_error_term=True`` the spliced model computes exactly what the model does; setting
    one latent to zero then subtracts just its contribution ``a * W_dec[latent]`` from the
    activation, and nothing else changes.

    With ``direct_path=False`` the removed contribution is added back to the last residual stream
    (``blocks.{n_layers - 1}.hook_resid_post``, just before the final LayerNorm), so the removed
    vector's own path to the unembedding is left intact: what changes the logits is only how the
    blocks after the SAE's hook respond to the removal (the part of the effect that is not the
    direct path). Only for residual-stream hooks.

    Args:
        tokens: ``[n, ctx]`` contexts; ``counted``: ``[n, ctx]`` bool, the real positions.
    Raises ``ValueError`` if the latent never fires at a scored position of these contexts.
    """
    with torch.no_grad():
        latent = F.check_feature_index(latent, sae.cfg.d_sae)
        tokens = _check_tokens(tokens)
        scored = _scored_mask(tokens, counted.bool())
        acts_name = _acts_post_name(sae)
        out_name = F.sae_hook_name(sae) + ".hook_sae_output"
        last_resid = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
        if not direct_path and "hook_resid" not in F.sae_hook_name(sae):
            raise ValueError(
                f"direct_path=False needs an SAE on the residual stream; this one reads "
                f"{F.sae_hook_name(sae)}"
            )
        d_vocab = model.cfg.d_vocab
        change = torch.zeros(d_vocab, dtype=torch.float64)
        loss_clean = loss_ablated = 0.0
        n = 0
        store: dict[str, torch.Tensor] = {}

        def record(acts: torch.Tensor, hook: Any) -> torch.Tensor:
            store["fired"] = acts[..., latent] > 0
            return acts

        def remove(acts: torch.Tensor, hook: Any) -> torch.Tensor:
            acts = acts.clone()
            acts[..., latent] = 0
            return acts

        def keep(name: str):
            def hook(acts: torch.Tensor, hook: Any) -> torch.Tensor:
                store[name] = acts
                return acts

            return hook

        def restore(resid: torch.Tensor, hook: Any) -> torch.Tensor:
            return resid + (store["clean_out"] - store["ablated_out"])  # + a * W_dec[latent]

        clean_hooks = [(acts_name, record)]
        ablated_hooks = [(acts_name, remove)]
        if not direct_path:
            clean_hooks.append((out_name, keep("clean_out")))
            ablated_hooks += [(out_name, keep("ablated_out")), (last_resid, restore)]
        with model.saes(saes=[sae], use_error_term=True):
            for start in range(0, tokens.shape[0], batch_size):
                batch = tokens[start : start + batch_size].to(model.cfg.device)
                clean = model.run_with_hooks(batch, fwd_hooks=clean_hooks)
                mask = store["fired"] & scored[start : start + batch_size].to(batch.device)
                if not mask.any():
                    continue
                ablated = model.run_with_hooks(batch, fwd_hooks=ablated_hooks)
                next_ids = batch[:, 1:][mask[:, :-1]][:, None]
                lp_clean = clean.float().log_softmax(-1)[mask]  # [n_fired, d_vocab]
                lp_ablated = ablated.float().log_softmax(-1)[mask]
                change += (lp_ablated - lp_clean).double().sum(0).cpu()
                loss_clean -= lp_clean.gather(1, next_ids).sum().item()
                loss_ablated -= lp_ablated.gather(1, next_ids).sum().item()
                n += int(mask.sum())
                store.clear()
        if n == 0:
            raise ValueError(
                f"Latent {latent} never fires at a scored position of these contexts: pass contexts "
                "where it fires (e.g. the sample's texts from sample.feature_activations(latent))."
            )
        return AblationEffect(latent, n, loss_clean / n, loss_ablated / n, (change / n).float())
