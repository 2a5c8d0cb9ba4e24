"""The replacement model: every MLP replaced by its transcoder, inside the real model.

``transcoders`` everywhere is ``{layer: transcoder}`` (as ``utils.circuits.loading.load_transcoders``
returns them; layers without one keep their MLP) or a list with one per layer; each reads
``blocks.L.ln2.hook_normalized`` and writes ``blocks.L.hook_mlp_out`` (see :mod:`.transcoders`).

Three ways to run the model, as forward hooks on ``hook_mlp_out``:

* **replaced**: each MLP's output is the transcoder's prediction from the live MLP input;
* **replaced with error terms**: the prediction plus the error ``mlp_out - prediction`` measured on
  a clean run of the same tokens: this is the exact model again (a test checks it), and the setting
  in which one latent can be ablated while everything the transcoder misses is held fixed;
* **zero-ablated**: every MLP's output set to zero (how much the MLPs matter at all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .transcoders import mlp_in_hook, mlp_out_hook, transcoder_layer

Transcoders = Mapping[int, Any] | Sequence[Any]


def check_transcoders(model: Any, transcoders: Transcoders) -> dict[int, Any]:
    """``transcoders`` as ``{layer: transcoder}``, checked: a mapping from layers to transcoders
    (some layers may have none: their MLPs stay as they are), or a sequence with one transcoder per
    layer of ``model`` in order; each reads its own layer and maps ``d_model`` to ``d_model``."""
    if isinstance(transcoders, Mapping):
        by_layer = {int(layer): tc for layer, tc in transcoders.items()}
    else:
        listed = list(transcoders)
        if len(listed) != model.cfg.n_layers:
            raise ValueError(
                f"give one transcoder per layer: the model has {model.cfg.n_layers} layers, "
                f"got {len(listed)} transcoders (or pass a dict {{layer: transcoder}})"
            )
        by_layer = dict(enumerate(listed))
    if not by_layer:
        raise ValueError("no transcoders given")
    for layer, transcoder in sorted(by_layer.items()):
        if not 0 <= layer < model.cfg.n_layers:
            raise ValueError(f"layer {layer} is not in 0..{model.cfg.n_layers - 1}")
        if transcoder_layer(transcoder) != layer:
            raise ValueError(
                f"the transcoder given for layer {layer} reads "
                f"{transcoder.cfg.metadata.hook_name!r}, not {mlp_in_hook(layer)!r}: "
                "put them in layer order"
            )
        if (transcoder.cfg.d_in, transcoder.cfg.d_out) != (model.cfg.d_model,) * 2:
            raise ValueError(
                f"transcoder {layer} maps {transcoder.cfg.d_in} -> {transcoder.cfg.d_out}, "
                f"the model's MLPs {model.cfg.d_model} -> {model.cfg.d_model}"
            )
    return dict(sorted(by_layer.items()))


def mlp_errors(
    model: Any, transcoders: Transcoders, tokens: torch.Tensor
) -> dict[int, torch.Tensor]:
    """Each replaced layer's error term on a clean run: ``{layer: mlp_out - transcoder(mlp_in)}``,
    ``[batch, pos, d_model]`` each (the transcoder reads the clean MLP input)."""
    with torch.no_grad():
        transcoders = check_transcoders(model, transcoders)
        names = {mlp_in_hook(i) for i in transcoders} | {mlp_out_hook(i) for i in transcoders}
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        return {
            i: cache[mlp_out_hook(i)] - tc(cache[mlp_in_hook(i)]) for i, tc in transcoders.items()
        }


LatentEdit = Callable[[int, torch.Tensor], torch.Tensor]


def replacement_hooks(
    transcoders: Transcoders,
    errors: Mapping[int, torch.Tensor] | None = None,
    edit: LatentEdit | None = None,
) -> list[tuple[str, Callable[..., Any]]]:
    """Forward hooks that replace each MLP of ``transcoders`` (``{layer: transcoder}``, or a list
    with one per layer) by its transcoder.

    ``errors`` (``{layer: [batch, pos, d_model]}``, from :func:`mlp_errors`) are added back;
    ``edit(layer, acts [batch, pos, d_sae]) -> acts`` may change the latents before decoding (an
    ablation). The MLP input is read live, so a change upstream reaches every later transcoder.
    """
    if not isinstance(transcoders, Mapping):
        transcoders = dict(enumerate(transcoders))
    seen: dict[int, torch.Tensor] = {}
    hooks: list[tuple[str, Callable[..., Any]]] = []
    for layer, transcoder in transcoders.items():

        def read(x: torch.Tensor, hook: Any, layer: int = layer) -> None:
            seen[layer] = x

        def write(out: torch.Tensor, hook: Any, layer: int = layer, tc: Any = transcoder):
            acts = tc.encode(seen.pop(layer))
            if edit is not None:
                acts = edit(layer, acts)
            new = tc.decode(acts)
            if errors is not None:
                new = new + errors[layer]
            return new.to(out.dtype)

        hooks += [(mlp_in_hook(layer), read), (mlp_out_hook(layer), write)]
    return hooks


def _zero(out: torch.Tensor, hook: Any) -> torch.Tensor:
    return torch.zeros_like(out)


def _next_token_loss(
    logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Summed next-token cross-entropy over positions whose *predicted* token is in ``mask``."""
    logprobs = logits[:, :-1].log_softmax(dim=-1)
    nll = -logprobs.gather(-1, tokens[:, 1:, None])[..., 0]
    return (nll * mask[:, 1:]).sum()


@dataclass
class ReplacementLosses:
    """Mean next-token loss (nats) of the model as it is (``clean``), with every MLP that has a
    transcoder replaced by it (``replaced``), replaced with the error terms added back
    (``with_errors``, equal to ``clean`` up to float error) and with those MLPs' outputs zeroed
    (``zero_ablated``)."""

    clean: float
    replaced: float
    with_errors: float
    zero_ablated: float
    n_tokens: int

    @property
    def recovered(self) -> float:
        """Share of the zero-ablation loss increase that the transcoders recover:
        ``(zero - replaced) / (zero - clean)``."""
        return (self.zero_ablated - self.replaced) / (self.zero_ablated - self.clean)

    def as_dict(self) -> dict[str, float]:
        return {
            "clean": self.clean,
            "replaced": self.replaced,
            "with_errors": self.with_errors,
            "zero_ablated": self.zero_ablated,
            "recovered": self.recovered,
            "n_tokens": self.n_tokens,
        }


def replacement_losses(
    model: Any,
    transcoders: Transcoders,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    batch_size: int = 16,
    progress: bool = False,
) -> ReplacementLosses:
    """Next-token losses of :class:`ReplacementLosses` on ``tokens [n, ctx]``, averaged over the
    predictions of tokens where ``mask [n, ctx]`` is true (use :func:`.transcoders.token_mask`: no
    BOS, no padding)."""
    with torch.no_grad():
        transcoders = check_transcoders(model, transcoders)
        if tokens.shape != mask.shape:
            raise ValueError(f"tokens {tuple(tokens.shape)} and mask {tuple(mask.shape)} differ")
        totals = torch.zeros(4, dtype=torch.float64)
        zero_hooks = [(mlp_out_hook(i), _zero) for i in transcoders]
        starts = range(0, len(tokens), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="losses", leave=False)
        for start in starts:
            batch = tokens[start : start + batch_size].to(model.cfg.device)
            keep = mask[start : start + batch_size].to(model.cfg.device).float()
            errors = mlp_errors(model, transcoders, batch)
            runs = [
                [],
                replacement_hooks(transcoders),
                replacement_hooks(transcoders, errors),
                zero_hooks,
            ]
            for i, hooks in enumerate(runs):
                logits = model.run_with_hooks(batch, fwd_hooks=hooks)
                totals[i] += float(_next_token_loss(logits, batch, keep))
        n = int(mask[:, 1:].sum())
        clean, replaced, with_errors, zero = (totals / n).tolist()
        return ReplacementLosses(clean, replaced, with_errors, zero, n)
