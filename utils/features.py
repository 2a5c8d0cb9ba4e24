"""Feature analysis for a SAELens SAE attached to a TransformerLens model.

Everything here takes tensors, strings, a model and an SAE as arguments (no globals), works for
any sizes (nothing assumes GPT-2's 768 or 24576) and raises a clear error on bad input.

Shapes use these names: ``pos`` tokens in one prompt, ``d_in`` the SAE's input width (the model's
``d_model`` for residual-stream SAEs), ``d_sae`` the number of SAE features (latents),
``n_texts``/``ctx`` the texts and tokens per text of a dataset sample, ``d_vocab`` the vocabulary.

Main entry points
-----------------
Single prompt
    :func:`sae_hook_name`, :func:`hook_activations`, :func:`encode_prompt`, :func:`l0_per_token`,
    :func:`top_features_per_token`, :func:`reconstruction_metrics`
A sample of a dataset (streamed in batches, never a dense ``[tokens, d_sae]`` matrix)
    :func:`collect_feature_stats` -> :class:`FeatureSample`, then :func:`top_activating_contexts`,
    :func:`feature_top_tokens`, :func:`features_for_token`, :func:`choose_feature`
One feature's effect on the output
    :func:`feature_logit_effects` (the tokens a feature promotes/suppresses through the unembedding)
The SAE inside the model
    :func:`splice_losses` (next-token loss: original, SAE spliced in, zero- and mean-ablated)
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

# --------------------------------------------------------------------------------------------
# Checking input
# --------------------------------------------------------------------------------------------


def sae_hook_name(sae: Any) -> str:
    """The model hook an SAE reads, from ``sae.cfg.metadata.hook_name`` (SAELens 6.x).

    Raises ``ValueError`` when the SAE's metadata does not name one (an SAE built by hand, not
    loaded with ``SAE.from_pretrained``/``SAE.load_from_disk`` or trained by SAELens).
    """
    hook_name = getattr(sae.cfg.metadata, "hook_name", None)
    if not hook_name:
        raise ValueError(
            "This SAE's metadata names no hook (sae.cfg.metadata.hook_name is empty). Load the SAE "
            "with SAE.from_pretrained / SAE.load_from_disk, or set sae.cfg.metadata.hook_name to the "
            "model hook it reads, e.g. 'blocks.8.hook_resid_pre'."
        )
    return hook_name


def sae_prepend_bos(sae: Any) -> bool:
    """Whether the SAE was trained on text that starts with a BOS token (default ``True``)."""
    value = getattr(sae.cfg.metadata, "prepend_bos", None)
    return True if value is None else bool(value)


def check_hook_name(model: Any, hook_name: str) -> None:
    """Raise ``KeyError`` if ``model`` has no hook called ``hook_name``, naming the close ones."""
    if hook_name in model.hook_dict:
        return
    close = difflib.get_close_matches(hook_name, list(model.hook_dict), n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise KeyError(
        f"The model has no hook {hook_name!r}.{hint} Hook names look like "
        f"'blocks.<layer>.hook_resid_pre' with layer in 0..{model.cfg.n_layers - 1}; "
        "list them all with list(model.hook_dict)."
    )


def check_feature_index(feature: int, d_sae: int) -> int:
    """Return ``feature`` as an ``int`` if ``0 <= feature < d_sae``; otherwise raise ``IndexError``."""
    if isinstance(feature, torch.Tensor):
        if feature.numel() != 1:
            raise ValueError(
                f"feature must be one integer, got a tensor of shape {tuple(feature.shape)}"
            )
        feature = feature.item()
    if isinstance(feature, bool) or not float(feature).is_integer():
        raise TypeError(f"feature must be an integer index, got {feature!r}")
    feature = int(feature)
    if not 0 <= feature < d_sae:
        raise IndexError(
            f"Feature {feature} is out of range: this SAE has d_sae={d_sae} features, "
            f"numbered 0..{d_sae - 1}."
        )
    return feature


def check_prompt(prompt: str) -> str:
    """Return ``prompt`` if it is a non-empty string; otherwise raise ``TypeError``/``ValueError``."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("The prompt is empty: give at least one word of text.")
    return prompt


def _check_last_dim(tensor: torch.Tensor, size: int, what: str, name: str) -> None:
    if tensor.ndim == 0 or tensor.shape[-1] != size:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}, but its last dimension must be {what} = {size}."
        )


def _hook_layer(hook_name: str) -> int | None:
    match = re.match(r"blocks\.(\d+)\.", hook_name)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------
# One prompt
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def hook_activations(
    model: Any,
    tokens: torch.Tensor,
    hook_name: str,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The model's activations at ``hook_name`` for ``tokens``.

    Runs the model only as far as it needs to (``stop_at_layer``), caching just that hook.

    Args:
        model: a TransformerLens ``HookedTransformer`` (e.g. SAELens' ``HookedSAETransformer``).
        tokens: ``[batch, pos]`` token ids (or ``[pos]``, treated as a batch of one).
        hook_name: e.g. ``sae.cfg.metadata.hook_name``.
        attention_mask: optional ``[batch, pos]``, 1 for real tokens and 0 for padding.

    Returns:
        ``[batch, pos, d_model]`` activations (``[batch, pos, ...]`` for non-residual hooks).
    """
    check_hook_name(model, hook_name)
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(
            f"tokens must have shape [batch, pos] with pos >= 1, got {tuple(tokens.shape)}"
        )
    layer = _hook_layer(hook_name)
    # Blocks 0..layer are all that is needed for a hook inside block `layer` (and no unembedding).
    stop_at_layer = layer + 1 if layer is not None else None
    kwargs: dict[str, Any] = {}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask.to(model.cfg.device)
    _, cache = model.run_with_cache(
        tokens.to(model.cfg.device), names_filter=[hook_name], stop_at_layer=stop_at_layer, **kwargs
    )
    return cache[hook_name]


@dataclass
class PromptFeatures:
    """A prompt encoded by an SAE.

    Attributes:
        str_tokens: the ``pos`` tokens as strings (with the BOS token if the SAE uses one).
        tokens: ``[pos]`` token ids.
        activations: ``[pos, d_in]`` model activations at the SAE's hook.
        feature_acts: ``[pos, d_sae]`` SAE feature activations (mostly zeros).
        reconstruction: ``[pos, d_in]`` the SAE's reconstruction of ``activations``.
        has_bos: whether position 0 is a BOS token.
    """

    str_tokens: list[str]
    tokens: torch.Tensor
    activations: torch.Tensor
    feature_acts: torch.Tensor
    reconstruction: torch.Tensor
    has_bos: bool


@torch.no_grad()
def encode_prompt(model: Any, sae: Any, prompt: str) -> PromptFeatures:
    """Run ``prompt`` through ``model`` up to the SAE's hook and encode it with ``sae``.

    Uses the SAE's metadata for the hook name and whether to prepend a BOS token.
    Returns a :class:`PromptFeatures` (shapes ``[pos, ...]``, batch dimension removed).
    """
    check_prompt(prompt)
    hook_name = sae_hook_name(sae)
    prepend_bos = sae_prepend_bos(sae)
    tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
    acts = hook_activations(model, tokens, hook_name)[0]
    _check_last_dim(acts, sae.cfg.d_in, "the SAE's d_in", f"The activations at {hook_name}")
    feature_acts = sae.encode(acts.to(sae.device))
    reconstruction = sae.decode(feature_acts)
    return PromptFeatures(
        str_tokens=list(model.to_str_tokens(tokens[0])),
        tokens=tokens[0].cpu(),
        activations=acts.cpu(),
        feature_acts=feature_acts.cpu(),
        reconstruction=reconstruction.cpu(),
        has_bos=prepend_bos,
    )


def l0_per_token(feature_acts: torch.Tensor) -> torch.Tensor:
    """How many features are active (non-zero) at each token.

    Args:
        feature_acts: ``[..., d_sae]`` SAE feature activations.
    Returns:
        ``[...]`` integer counts (the L0 "norm" of each token's feature vector).
    """
    if feature_acts.ndim == 0:
        raise ValueError("feature_acts must have a last dimension of d_sae features, got a scalar")
    return (feature_acts != 0).sum(dim=-1)


def top_features_per_token(
    feature_acts: torch.Tensor,
    str_tokens: Sequence[str],
    k: int = 5,
    wide: bool = False,
) -> pd.DataFrame:
    """The ``k`` strongest features at each token, as a table.

    Args:
        feature_acts: ``[pos, d_sae]`` (or ``[1, pos, d_sae]``) SAE feature activations.
        str_tokens: the ``pos`` tokens as strings (``model.to_str_tokens``).
        k: how many features per token (1..d_sae).
        wide: ``False`` gives one row per (token, rank) with columns ``position, token, rank,
            feature, activation``; features that are not active are left out, so a token with
            fewer than ``k`` active features has fewer rows. ``True`` gives one row per token and
            one column per rank, each cell ``"feature (activation)"`` (blank if inactive).
    """
    if feature_acts.ndim == 3 and feature_acts.shape[0] == 1:
        feature_acts = feature_acts[0]
    if feature_acts.ndim != 2:
        raise ValueError(
            f"feature_acts must have shape [pos, d_sae] (or [1, pos, d_sae]), got {tuple(feature_acts.shape)}"
        )
    n_pos, d_sae = feature_acts.shape
    if len(str_tokens) != n_pos:
        raise ValueError(
            f"Got {len(str_tokens)} token strings for {n_pos} positions of feature_acts: "
            "pass model.to_str_tokens(...) of the same tokens."
        )
    if not 1 <= k <= d_sae:
        raise ValueError(f"k must be between 1 and d_sae={d_sae}, got {k}")
    values, indices = feature_acts.detach().float().cpu().topk(k, dim=-1)
    rows = []
    for pos in range(n_pos):
        for rank in range(k):
            value = values[pos, rank].item()
            if value == 0:
                continue
            rows.append(
                {
                    "position": pos,
                    "token": str_tokens[pos],
                    "rank": rank + 1,
                    "feature": indices[pos, rank].item(),
                    "activation": value,
                }
            )
    table = pd.DataFrame(rows, columns=["position", "token", "rank", "feature", "activation"])
    if not wide:
        return table
    wide_table = pd.DataFrame(
        {"position": range(n_pos), "token": [repr(t) for t in str_tokens]}
    ).set_index(["position", "token"])
    for rank in range(1, k + 1):
        column = [""] * n_pos
        for row in table[table["rank"] == rank].itertuples():
            column[row.position] = f"{row.feature} ({row.activation:.2f})"
        wide_table[f"top {rank}"] = column
    return wide_table


def reconstruction_metrics(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """How well ``x_hat`` reconstructs ``x``.

    Args:
        x: ``[..., d_in]`` activations (at least two vectors).
        x_hat: ``[..., d_in]`` their reconstructions, same shape.

    Returns:
        ``mse``: mean squared error over every element (the seed tutorial's number);
        ``explained_variance``: 1 - E||x - x_hat||^2 / E||x - mean(x)||^2 (1 is perfect, 0 is no
        better than always predicting the mean vector, negative is worse);
        ``cosine_similarity``: mean over vectors of cos(x, x_hat) (1 means same direction).
    """
    if x.shape != x_hat.shape:
        raise ValueError(
            f"x has shape {tuple(x.shape)} but x_hat has shape {tuple(x_hat.shape)}: they must match."
        )
    if x.ndim == 0:
        raise ValueError("x must have a last dimension d_in, got a scalar")
    x2 = x.detach().reshape(-1, x.shape[-1]).double().cpu()
    x_hat2 = x_hat.detach().reshape(-1, x.shape[-1]).double().cpu()
    if x2.shape[0] < 2:
        raise ValueError(
            f"Need at least two activation vectors to measure variance, got {x2.shape[0]}."
        )
    residual = (x2 - x_hat2).pow(2).sum(-1).mean()
    variance = (x2 - x2.mean(0)).pow(2).sum(-1).mean()
    cos = torch.nn.functional.cosine_similarity(x2, x_hat2, dim=-1)
    return {
        "mse": (x2 - x_hat2).pow(2).mean().item(),
        "explained_variance": (1 - residual / variance).item() if variance > 0 else float("nan"),
        "cosine_similarity": cos.mean().item(),
    }


# --------------------------------------------------------------------------------------------
# A sample of a dataset
# --------------------------------------------------------------------------------------------


def vocabulary_strings(model: Any) -> list[str]:
    """Every token id of ``model`` decoded on its own: ``vocabulary_strings(model)[id]``."""
    n_tok = min(model.cfg.d_vocab, len(model.tokenizer))
    strings = list(model.to_str_tokens(torch.arange(n_tok)))
    strings += [f"<{i}>" for i in range(n_tok, model.cfg.d_vocab)]
    return strings


def tokenize_texts(
    model: Any, texts: Sequence[str], context_size: int, prepend_bos: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize each text on its own and cut it to ``context_size`` tokens.

    Texts with no tokens are skipped. Short texts are padded on the right with the tokenizer's
    pad token (or 0).

    Returns:
        ``tokens`` ``[n_texts, ctx]`` and ``lengths`` ``[n_texts]`` (real tokens in each row), where
        ``ctx`` is ``context_size`` or the longest text if all are shorter.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string: wrap it as [text].")
    if context_size < 2:
        raise ValueError(f"context_size must be at least 2 tokens, got {context_size}")
    if context_size > model.cfg.n_ctx:
        raise ValueError(
            f"context_size={context_size} is longer than the model's context window n_ctx={model.cfg.n_ctx}."
        )
    rows: list[torch.Tensor] = []
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must all be strings, got a {type(text).__name__}")
        if not text.strip():
            continue
        # A generous character cut first, so very long documents are not tokenized in full.
        ids = model.to_tokens(text[: context_size * 64], prepend_bos=prepend_bos, truncate=False)[0]
        ids = ids[:context_size].cpu()
        if len(ids) > int(prepend_bos):
            rows.append(ids)
    if not rows:
        raise ValueError("None of the texts has any tokens: give at least one non-empty text.")
    ctx = max(len(r) for r in rows)
    pad_id = getattr(model.tokenizer, "pad_token_id", None) or 0
    tokens = torch.full((len(rows), ctx), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    return tokens, lengths


def _position_masks(
    lengths: torch.Tensor, ctx: int, exclude_bos: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``valid`` (real tokens) and ``counted`` (real tokens minus position 0 if BOS is excluded)."""
    positions = torch.arange(ctx)[None, :]
    valid = positions < lengths[:, None]
    counted = valid.clone()
    if exclude_bos:
        counted[:, 0] = False
    return valid, counted


def _tokenize_for_sae(model, sae, texts: Sequence[str], context_size: int, exclude_bos: bool):
    """Tokenize ``texts`` the way ``sae`` was trained (with or without BOS) and mark the positions.

    Checks first that the model has the SAE's hook. Returns ``(hook_name, tokens [n, ctx],
    lengths [n], valid [n, ctx], counted [n, ctx])``, as :func:`tokenize_texts` and
    :func:`_position_masks` (BOS is left out of ``counted`` when ``exclude_bos`` and it is there).
    """
    hook_name = sae_hook_name(sae)
    check_hook_name(model, hook_name)
    prepend_bos = sae_prepend_bos(sae)
    tokens, lengths = tokenize_texts(model, texts, context_size, prepend_bos=prepend_bos)
    valid, counted = _position_masks(lengths, tokens.shape[1], exclude_bos and prepend_bos)
    return hook_name, tokens, lengths, valid, counted


@dataclass
class FeatureSample:
    """SAE feature statistics over a sample of text, stored sparsely.

    Built by :func:`collect_feature_stats`. Only "counted" positions (real tokens; not the BOS
    token, not padding) enter the statistics.

    Attributes:
        tokens: ``[n_texts, ctx]`` token ids (padded on the right).
        lengths: ``[n_texts]`` real tokens per text.
        counted: ``[n_texts, ctx]`` bool, the positions the statistics count.
        l0: ``[n_texts, ctx]`` active features per token (0 at positions not counted).
        firing_counts: ``[d_sae]`` how many counted tokens each feature fired on.
        max_activation: ``[d_sae]`` each feature's largest activation (0 if it never fired).
        mean_activation_vector: ``[d_in]`` the mean model activation at the hook (counted tokens);
            the replacement used by mean-ablation in :func:`splice_losses`.
        metrics: reconstruction metrics over counted tokens (``mse``, ``explained_variance``,
            ``cosine_similarity``, as in :func:`reconstruction_metrics`).
        vocab: ``[d_vocab]`` token strings (``vocab[token_id]``).
        hook_name: the hook the SAE reads.
        nz_positions, nz_values, feature_offsets: the non-zero activations, sorted by feature:
            feature ``f``'s flat positions (``text * ctx + pos``) and values are
            ``nz_positions[feature_offsets[f]:feature_offsets[f + 1]]`` and likewise ``nz_values``.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    counted: torch.Tensor
    l0: torch.Tensor
    firing_counts: torch.Tensor
    max_activation: torch.Tensor
    mean_activation_vector: torch.Tensor
    metrics: dict[str, float]
    vocab: list[str]
    hook_name: str
    nz_positions: torch.Tensor
    nz_values: torch.Tensor
    feature_offsets: torch.Tensor
    _token_cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_texts(self) -> int:
        return self.tokens.shape[0]

    @property
    def context_size(self) -> int:
        return self.tokens.shape[1]

    @property
    def d_sae(self) -> int:
        return self.firing_counts.shape[0]

    @property
    def n_tokens(self) -> int:
        """Counted tokens (the denominator of :attr:`density`)."""
        return int(self.counted.sum().item())

    @property
    def density(self) -> torch.Tensor:
        """``[d_sae]`` fraction of counted tokens on which each feature fires."""
        return self.firing_counts.double() / max(self.n_tokens, 1)

    @property
    def l0_values(self) -> torch.Tensor:
        """``[n_tokens]`` L0 of every counted token."""
        return self.l0[self.counted]

    def check_feature(self, feature: int) -> int:
        """``feature`` as an int, or ``IndexError`` if it is not in ``0..d_sae-1``."""
        return check_feature_index(feature, self.d_sae)

    def feature_activations(self, feature: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Where ``feature`` fired: ``(text_index, position, value)``, three ``[n_fired]`` tensors."""
        feature = self.check_feature(feature)
        start, end = self.feature_offsets[feature].item(), self.feature_offsets[feature + 1].item()
        flat = self.nz_positions[start:end].long()
        return flat // self.context_size, flat % self.context_size, self.nz_values[start:end]

    def activation_grid(self, feature: int) -> torch.Tensor:
        """``[n_texts, ctx]`` activations of one feature over the whole sample (zeros elsewhere)."""
        text, pos, value = self.feature_activations(feature)
        grid = torch.zeros(self.tokens.shape, dtype=self.nz_values.dtype)
        grid[text, pos] = value
        return grid

    def str_tokens(self, text_index: int) -> list[str]:
        """The real tokens of one sampled text, as strings."""
        if not 0 <= text_index < self.n_texts:
            raise IndexError(f"text_index {text_index} is out of range 0..{self.n_texts - 1}")
        ids = self.tokens[text_index, : self.lengths[text_index]].tolist()
        return [self.vocab[i] for i in ids]

    @property
    def nz_features(self) -> torch.Tensor:
        """``[n_nonzero]`` the feature of each stored non-zero activation (aligned with ``nz_values``)."""
        if "nz_features" not in self._token_cache:
            sizes = self.feature_offsets[1:] - self.feature_offsets[:-1]
            self._token_cache["nz_features"] = torch.repeat_interleave(
                torch.arange(self.d_sae), sizes
            )
        return self._token_cache["nz_features"]

    @property
    def nz_token_ids(self) -> torch.Tensor:
        """``[n_nonzero]`` the token id at each stored non-zero activation."""
        if "nz_token_ids" not in self._token_cache:
            self._token_cache["nz_token_ids"] = self.tokens.flatten()[self.nz_positions]
        return self._token_cache["nz_token_ids"]

    def token_counts(self) -> pd.Series:
        """How often each token string occurs at counted positions, most common first."""
        if "counts" not in self._token_cache:
            ids, counts = self.tokens[self.counted].unique(return_counts=True)
            series = pd.Series(
                counts.tolist(), index=[self.vocab[i] for i in ids.tolist()], name="count"
            )
            self._token_cache["counts"] = series.groupby(level=0).sum().sort_values(ascending=False)
        return self._token_cache["counts"]


@torch.no_grad()
def collect_feature_stats(
    model: Any,
    sae: Any,
    texts: Sequence[str],
    context_size: int,
    batch_size: int = 16,
    exclude_bos: bool = True,
    progress: bool = True,
) -> FeatureSample:
    """Encode a sample of texts with ``sae`` and keep what dashboards and histograms need.

    Streams the texts through the model in batches (stopping at the SAE's layer) and keeps only
    the non-zero feature activations, so memory grows with the number of *active* features, never
    with ``n_tokens x d_sae``.

    Args:
        model: a TransformerLens model with the hook ``sae.cfg.metadata.hook_name``.
        sae: a SAELens SAE.
        texts: documents; each is tokenized on its own (with BOS if the SAE's metadata says so)
            and cut to ``context_size`` tokens.
        context_size: tokens per text (<= the model's ``n_ctx``).
        batch_size: texts per forward pass.
        exclude_bos: leave the BOS position out of every statistic (its activations are outliers
            that many features respond to, or that the SAE reconstructs badly).
        progress: show a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    hook_name, tokens, lengths, valid, counted = _tokenize_for_sae(
        model, sae, texts, context_size, exclude_bos
    )
    n_texts, ctx = tokens.shape
    d_sae = sae.cfg.d_sae

    l0 = torch.zeros(n_texts, ctx, dtype=torch.int32)
    firing_counts = torch.zeros(d_sae, dtype=torch.long)
    max_activation = torch.zeros(d_sae)
    sum_x = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    sum_sq = sum_resid = sum_cos = 0.0
    nz_pos: list[torch.Tensor] = []
    nz_feat: list[torch.Tensor] = []
    nz_val: list[torch.Tensor] = []

    starts = range(0, n_texts, batch_size)
    for start in tqdm(starts, desc="Encoding the sample", disable=not progress):
        batch = slice(start, start + batch_size)
        acts = hook_activations(model, tokens[batch], hook_name, attention_mask=valid[batch].long())
        if start == 0:
            _check_last_dim(acts, sae.cfg.d_in, "the SAE's d_in", f"The activations at {hook_name}")
        mask = counted[batch].to(acts.device)
        x = acts[mask].to(sae.device, sae.dtype)  # [n_counted, d_in]
        if x.shape[0] == 0:
            continue
        f = sae.encode(x)  # [n_counted, d_sae]
        x_hat = sae.decode(f)
        active = f != 0
        rows, feats = active.nonzero(as_tuple=True)
        flat = (
            torch.arange(start, start + mask.shape[0])[:, None] * ctx + torch.arange(ctx)[None, :]
        )
        flat_counted = flat[mask.cpu()]
        nz_pos.append(flat_counted[rows.cpu()].to(torch.int64))
        nz_feat.append(feats.cpu().to(torch.int64))
        nz_val.append(f[rows, feats].float().cpu())
        l0[batch][mask.cpu()] = active.sum(-1).int().cpu()
        firing_counts += active.sum(0).cpu()
        max_activation = torch.maximum(max_activation, f.max(0).values.float().cpu())
        xd, xhd = x.double(), x_hat.double()
        sum_x += xd.sum(0).cpu()
        sum_sq += xd.pow(2).sum().item()
        sum_resid += (xd - xhd).pow(2).sum().item()
        sum_cos += torch.nn.functional.cosine_similarity(xd, xhd, dim=-1).sum().item()

    n = int(counted.sum().item())
    if n == 0:
        raise ValueError("No tokens to count: every text is only a BOS token. Give longer texts.")
    positions = torch.cat(nz_pos) if nz_pos else torch.zeros(0, dtype=torch.int64)
    features = torch.cat(nz_feat) if nz_feat else torch.zeros(0, dtype=torch.int64)
    values = torch.cat(nz_val) if nz_val else torch.zeros(0)
    order = torch.argsort(features, stable=True)
    offsets = torch.zeros(d_sae + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.bincount(features, minlength=d_sae), 0)
    mean_x = sum_x / n
    variance = sum_sq / n - mean_x.pow(2).sum().item()
    metrics = {
        "mse": sum_resid / (n * sae.cfg.d_in),
        "explained_variance": 1 - (sum_resid / n) / variance if variance > 0 else float("nan"),
        "cosine_similarity": sum_cos / n,
    }
    return FeatureSample(
        tokens=tokens,
        lengths=lengths,
        counted=counted,
        l0=l0,
        firing_counts=firing_counts,
        max_activation=max_activation,
        mean_activation_vector=mean_x.float(),
        metrics=metrics,
        vocab=vocabulary_strings(model),
        hook_name=hook_name,
        nz_positions=positions[order],
        nz_values=values[order],
        feature_offsets=offsets,
    )


def top_activating_contexts(
    sample: FeatureSample,
    feature: int,
    k: int = 10,
    left: int = 12,
    right: int = 4,
    one_per_text: bool = False,
) -> pd.DataFrame:
    """The ``k`` tokens in the sample where ``feature`` fires most strongly, with their contexts.

    Args:
        sample: from :func:`collect_feature_stats`.
        feature: a feature index in ``0..d_sae-1``.
        k: how many contexts (fewer if the feature fired on fewer tokens; none if it never did).
        left, right: tokens of context to keep before and after the firing token.
        one_per_text: keep only the strongest token of each text.

    Returns:
        One row per context, strongest first, with columns ``text`` (index into the sample),
        ``position``, ``token``, ``activation``, ``context_tokens`` (list of strings),
        ``context_activations`` (list of this feature's activations on them) and ``highlight``
        (the index of the firing token inside ``context_tokens``).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if left < 0 or right < 0:
        raise ValueError(f"left and right must be >= 0, got left={left}, right={right}")
    text_idx, pos_idx, values = sample.feature_activations(feature)
    columns = [
        "text",
        "position",
        "token",
        "activation",
        "context_tokens",
        "context_activations",
        "highlight",
    ]
    if len(values) == 0:
        return pd.DataFrame(columns=columns)
    # Pick the k strongest firings (at most one per text if asked).
    chosen: list[int] = []
    texts_seen: set[int] = set()
    for i in torch.argsort(values, descending=True).tolist():
        text = int(text_idx[i])
        if one_per_text and text in texts_seen:
            continue
        texts_seen.add(text)
        chosen.append(i)
        if len(chosen) == k:
            break
    # This feature's activations over every chosen text, to shade the context tokens.
    grids = {text: torch.zeros(sample.context_size) for text in texts_seen}
    in_chosen = torch.isin(text_idx, torch.tensor(sorted(texts_seen)))
    for t, p, v in zip(
        text_idx[in_chosen].tolist(), pos_idx[in_chosen].tolist(), values[in_chosen].tolist()
    ):
        grids[t][p] = v
    records = []
    for i in chosen:
        text, pos = int(text_idx[i]), int(pos_idx[i])
        lo, hi = max(0, pos - left), min(int(sample.lengths[text]), pos + right + 1)
        str_tokens = sample.str_tokens(text)
        records.append(
            {
                "text": text,
                "position": pos,
                "token": str_tokens[pos],
                "activation": float(values[i]),
                "context_tokens": str_tokens[lo:hi],
                "context_activations": grids[text][lo:hi].tolist(),
                "highlight": pos - lo,
            }
        )
    return pd.DataFrame(records, columns=columns)


def feature_top_tokens(sample: FeatureSample, feature: int, k: int = 10) -> pd.DataFrame:
    """The tokens ``feature`` fires on most often in the sample.

    Returns a table with one row per token string: ``fires`` (how many times the feature fired
    on it), ``share_of_firings`` (fires / all of this feature's firings), ``occurrences`` (how
    often the token occurs at counted positions), ``fires_per_occurrence`` and
    ``mean_activation``; the ``k`` most frequent first.
    """
    text, pos, values = sample.feature_activations(feature)
    columns = [
        "token",
        "fires",
        "share_of_firings",
        "occurrences",
        "fires_per_occurrence",
        "mean_activation",
    ]
    if len(values) == 0:
        return pd.DataFrame(columns=columns)
    ids = sample.tokens[text, pos].tolist()
    frame = pd.DataFrame({"token": [sample.vocab[i] for i in ids], "activation": values.tolist()})
    grouped = (
        frame.groupby("token")["activation"]
        .agg(["count", "mean"])
        .rename(columns={"count": "fires", "mean": "mean_activation"})
    )
    grouped["share_of_firings"] = grouped["fires"] / len(values)
    grouped["occurrences"] = sample.token_counts().reindex(grouped.index).fillna(0).astype(int)
    grouped["fires_per_occurrence"] = grouped["fires"] / grouped["occurrences"].clip(lower=1)
    grouped = grouped.sort_values(["fires", "mean_activation"], ascending=False).head(k)
    return grouped.reset_index()[columns]


def token_concentrated_features(
    sample: FeatureSample,
    k: int = 4,
    min_fires: int = 20,
    max_density: float = 0.05,
    min_letters: int = 3,
) -> pd.DataFrame:
    """The features whose firings concentrate most on a single token: the clearest token detectors.

    For every feature that fired at least ``min_fires`` times in the sample and on at most
    ``max_density`` of its tokens: ``top_token`` (the token it fires on most often) and
    ``share_on_top_token`` (the fraction of its firings that are on that token). Keeps features
    whose top token is a word (at least ``min_letters`` letters; 0 keeps every token), one feature
    per top token, and returns the ``k`` with the highest share (ties: more firings first). The table also
    has ``fires`` and ``density``; its attribute ``frame.attrs["eligible"]`` holds the share of every
    feature that met the firing thresholds (a ``pd.Series`` indexed by feature), so a reader can
    see how typical the chosen ones are.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0 < max_density <= 1:
        raise ValueError(f"max_density must be in (0, 1], got {max_density}")
    eligible = ((sample.firing_counts >= min_fires) & (sample.density <= max_density)).nonzero()
    eligible = eligible.flatten()
    columns = ["feature", "top_token", "share_on_top_token", "fires", "density"]
    if len(eligible) == 0:
        frame = pd.DataFrame(columns=columns)
        frame.attrs["eligible"] = pd.Series(dtype=float, name="share_on_top_token")
        return frame
    vocab_size = len(sample.vocab)
    keys = sample.nz_features.long() * vocab_size + sample.nz_token_ids.long()
    pairs, pair_counts = keys.unique(return_counts=True)
    pair_features, pair_tokens = pairs // vocab_size, pairs % vocab_size
    # Most frequent token per feature: sort by (feature, count) and take each feature's last row.
    order = torch.argsort(pair_features * (pair_counts.max() + 1) + pair_counts)
    pair_features, pair_tokens, pair_counts = (
        pair_features[order],
        pair_tokens[order],
        pair_counts[order],
    )
    last = torch.ones_like(pair_features, dtype=torch.bool)
    last[:-1] = pair_features[1:] != pair_features[:-1]
    top_token = torch.full((sample.d_sae,), -1, dtype=torch.long)
    top_count = torch.zeros(sample.d_sae, dtype=torch.long)
    top_token[pair_features[last]] = pair_tokens[last]
    top_count[pair_features[last]] = pair_counts[last]
    share = top_count[eligible].double() / sample.firing_counts[eligible].double()
    frame = pd.DataFrame(
        {
            "feature": eligible.tolist(),
            "top_token": [sample.vocab[t] for t in top_token[eligible].tolist()],
            "share_on_top_token": share.tolist(),
            "fires": sample.firing_counts[eligible].tolist(),
            "density": sample.density[eligible].tolist(),
        }
    )
    all_shares = frame.set_index("feature")["share_on_top_token"]
    letters = frame["top_token"].str.count(r"[^\W\d_]")
    frame = frame[letters >= min_letters]
    frame = frame.sort_values(["share_on_top_token", "fires"], ascending=False)
    frame = frame.drop_duplicates("top_token").head(k).reset_index(drop=True)[columns]
    frame.attrs["eligible"] = all_shares
    return frame


def features_for_token(sample: FeatureSample, token: str, k: int = 10) -> pd.DataFrame:
    """Which features detect the token string ``token`` best.

    For every feature that fires on ``token`` at least once: ``recall`` (the fraction of the
    token's occurrences on which the feature fires), ``precision`` (the fraction of the
    feature's firings that are on this token) and ``mean_activation`` on it. Sorted by
    ``f1`` = 2 * precision * recall / (precision + recall): a clean detector scores near 1.

    Raises ``KeyError`` if the token never occurs at a counted position of the sample.
    """
    counts = sample.token_counts()
    if token not in counts.index:
        common = ", ".join(repr(t) for t in counts.index[:10])
        raise KeyError(
            f"The token {token!r} does not occur in the sample. Token strings include their leading "
            f"space, e.g. ' the'. The most common ones are: {common}."
        )
    token_ids = torch.tensor([i for i, s in enumerate(sample.vocab) if s == token])
    hits = torch.isin(sample.nz_token_ids, token_ids)
    hit_features = sample.nz_features[hits]
    fires_on_token = torch.bincount(hit_features, minlength=sample.d_sae)
    sum_on_token = torch.zeros(sample.d_sae).index_add_(
        0, hit_features, sample.nz_values[hits].float()
    )
    candidates = fires_on_token.nonzero(as_tuple=True)[0]
    n_occurrences = int(counts[token])
    recall = fires_on_token[candidates].double() / n_occurrences
    precision = fires_on_token[candidates].double() / sample.firing_counts[candidates].double()
    f1 = 2 * precision * recall / (precision + recall)
    table = pd.DataFrame(
        {
            "feature": candidates.tolist(),
            "f1": f1.tolist(),
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "fires_on_token": fires_on_token[candidates].tolist(),
            "mean_activation": (sum_on_token[candidates] / fires_on_token[candidates]).tolist(),
        }
    )
    return table.sort_values("f1", ascending=False).head(k).reset_index(drop=True)


def choose_feature(
    candidate_acts: torch.Tensor,
    sample: FeatureSample,
    min_fires: int = 20,
    max_density: float = 0.05,
) -> int:
    """Pick a feature worth a dashboard, by code rather than by hand.

    Among features that fired at least ``min_fires`` times in ``sample`` and on at most
    ``max_density`` of its tokens, the one most active in ``candidate_acts``.

    Args:
        candidate_acts: ``[d_sae]`` activations to rank by (e.g. one token's features), or
            ``[pos, d_sae]`` (e.g. a prompt's): then the last position with any qualifying active
            feature is used, so the last token is preferred and earlier ones are fallbacks.
    Raises ``ValueError`` if no active feature qualifies at any position.
    """
    acts = candidate_acts.detach().float().cpu()
    if acts.ndim == 1:
        acts = acts[None]
    if acts.ndim != 2 or acts.shape[-1] != sample.d_sae:
        raise ValueError(
            f"candidate_acts must have shape [d_sae] or [pos, d_sae] with d_sae={sample.d_sae}, "
            f"got {tuple(candidate_acts.shape)}"
        )
    qualifies = (sample.firing_counts >= min_fires) & (sample.density <= max_density)
    for row in reversed(acts):
        ok = qualifies & (row > 0)
        if ok.any():
            return int(torch.where(ok, row, torch.tensor(-float("inf"))).argmax())
    raise ValueError(
        f"No active feature fired at least {min_fires} times with density <= {max_density} in the "
        "sample: lower min_fires, raise max_density, or use a larger sample."
    )


# --------------------------------------------------------------------------------------------
# A feature's effect on the output
# --------------------------------------------------------------------------------------------


def _final_norm_direction(model: Any, direction: torch.Tensor) -> torch.Tensor:
    """Apply the linear part of the model's final normalisation to residual directions [..., d_model]."""
    from transformer_lens.components import LayerNorm, LayerNormPre, RMSNorm

    ln = getattr(model, "ln_final", None)
    if isinstance(ln, (LayerNorm, LayerNormPre)):
        direction = direction - direction.mean(-1, keepdim=True)
    if isinstance(ln, (LayerNorm, RMSNorm)):
        direction = direction * ln.w.to(direction.device, direction.dtype)
    return direction


@torch.no_grad()
def feature_logit_effects(
    model: Any, sae: Any, feature: int, k: int = 10, vocab: Sequence[str] | None = None
) -> pd.DataFrame:
    """The tokens a feature's decoder direction most promotes and suppresses (direct logit effect).

    Computes ``W_dec[feature] @ W_U``: the change in each token's logit if the feature's decoder
    direction were added straight into the final residual stream. The final LayerNorm's centring
    and per-dimension scale are applied first (its division by the norm is ignored), as in
    feature dashboards built from a model with the LayerNorm folded into ``W_U``. Only
    meaningful for SAEs on the residual stream (``d_in == d_model``).

    Returns ``k`` rows (rank 1 first) with columns ``promoted``, ``promoted_logit``,
    ``suppressed``, ``suppressed_logit``. ``vocab`` (token strings, e.g. ``sample.vocab``) saves
    decoding the vocabulary again.
    """
    feature = check_feature_index(feature, sae.cfg.d_sae)
    if not 1 <= k <= model.cfg.d_vocab:
        raise ValueError(f"k must be between 1 and d_vocab={model.cfg.d_vocab}, got {k}")
    if sae.cfg.d_in != model.cfg.d_model:
        raise ValueError(
            f"The SAE's d_in ({sae.cfg.d_in}) is not the model's d_model ({model.cfg.d_model}): direct "
            "logit effects need an SAE on the residual stream."
        )
    direction = sae.W_dec[feature].to(model.W_U.device, model.W_U.dtype)
    logits = (_final_norm_direction(model, direction) @ model.W_U).float().cpu()  # [d_vocab]
    vocab = vocabulary_strings(model) if vocab is None else vocab
    if len(vocab) != model.cfg.d_vocab:
        raise ValueError(
            f"vocab has {len(vocab)} strings but the model has d_vocab={model.cfg.d_vocab}"
        )
    top = logits.topk(k)
    bottom = logits.topk(k, largest=False)
    return pd.DataFrame(
        {
            "promoted": [vocab[i] for i in top.indices.tolist()],
            "promoted_logit": top.values.tolist(),
            "suppressed": [vocab[i] for i in bottom.indices.tolist()],
            "suppressed_logit": bottom.values.tolist(),
        },
        index=pd.RangeIndex(1, k + 1, name="rank"),
    )


# --------------------------------------------------------------------------------------------
# The SAE spliced into the model: downstream loss
# --------------------------------------------------------------------------------------------


@dataclass
class SpliceLosses:
    """Mean next-token cross-entropy (nats per token) on the same tokens under four conditions.

    ``original``: the model as it is. ``sae``: the activations at the SAE's hook replaced by the
    SAE's reconstruction. ``zero_ablated``: replaced by zeros. ``mean_ablated``: replaced by their
    mean over the data (one fixed vector). ``n_tokens``: the predictions averaged over.
    """

    original: float
    sae: float
    zero_ablated: float
    mean_ablated: float
    n_tokens: int

    @staticmethod
    def _recovered(original: float, spliced: float, ablated: float) -> float:
        if math.isclose(ablated, original):
            return float("nan")
        return (ablated - spliced) / (ablated - original)

    @property
    def recovered_vs_zero(self) -> float:
        """Fraction of the loss gap between zero-ablation and the original that the SAE closes."""
        return self._recovered(self.original, self.sae, self.zero_ablated)

    @property
    def recovered_vs_mean(self) -> float:
        """The same against mean-ablation: a stricter baseline, since the mean is a better guess than zero."""
        return self._recovered(self.original, self.sae, self.mean_ablated)

    def to_frame(self) -> pd.DataFrame:
        """One row per condition: ``ce_loss`` and its increase over the original model."""
        names = ["original model", "SAE spliced in", "zero-ablated", "mean-ablated"]
        losses = [self.original, self.sae, self.zero_ablated, self.mean_ablated]
        return pd.DataFrame(
            {"ce_loss": losses, "increase": [loss - self.original for loss in losses]},
            index=pd.Index(names, name="condition"),
        )


@torch.no_grad()
def splice_losses(
    model: Any,
    sae: Any,
    texts: Sequence[str],
    context_size: int,
    batch_size: int = 16,
    mean_activation: torch.Tensor | None = None,
    exclude_bos: bool = True,
    progress: bool = True,
    zero_ablate_bos: bool = False,
) -> SpliceLosses:
    """Next-token loss of ``model`` on ``texts`` with the SAE's hook left alone, replaced by the
    SAE's reconstruction, zero-ablated and mean-ablated.

    The replacement happens at every counted position (real tokens; not BOS when ``exclude_bos``,
    because BOS activations are outliers the model relies on and SAEs are usually not asked to
    reconstruct). The loss is averaged over predictions made *at* those positions, so all four
    numbers are on the same tokens.

    The book's ablations replace exactly the positions the SAE replaces, so the baseline and the
    SAE are compared like for like. SAELens' ``run_evals`` zero-ablates *every* position, BOS
    included (while its SAE leaves BOS alone), a harsher baseline: ``zero_ablate_bos=True`` zeroes
    the BOS position too, which is SAELens' definition of zero-ablation, on the same tokens.

    Args:
        mean_activation: ``[d_in]`` the vector used by mean-ablation, e.g.
            ``sample.mean_activation_vector`` from :func:`collect_feature_stats`. If ``None`` it is
            the mean over the counted positions of ``texts``.
    """
    from tqdm.auto import tqdm

    hook_name, tokens, lengths, valid, counted = _tokenize_for_sae(
        model, sae, texts, context_size, exclude_bos
    )
    n_texts, ctx = tokens.shape
    # A prediction at position p is scored against token p + 1, so p + 1 must be a real token.
    scored = counted[:, :-1] & valid[:, 1:]
    if not scored.any():
        raise ValueError("The texts are too short: need at least two real tokens after BOS.")
    batches = [slice(s, s + batch_size) for s in range(0, n_texts, batch_size)]

    if mean_activation is None:
        total, count = None, 0
        for batch in batches:
            acts = hook_activations(
                model, tokens[batch], hook_name, attention_mask=valid[batch].long()
            )
            picked = acts[counted[batch].to(acts.device)].double()
            total = picked.sum(0) if total is None else total + picked.sum(0)
            count += picked.shape[0]
        mean_activation = (total / count).float()
    _check_last_dim(mean_activation, sae.cfg.d_in, "the SAE's d_in", "mean_activation")

    def replace_with(make: Any, mask: torch.Tensor):
        def hook(acts: torch.Tensor, hook: Any) -> torch.Tensor:
            new = make(acts).to(acts.dtype)
            return torch.where(mask.to(acts.device)[..., None], new, acts)

        return hook

    def reconstruct(acts: torch.Tensor) -> torch.Tensor:
        return sae.decode(sae.encode(acts.to(sae.device, sae.dtype))).to(acts.device)

    conditions = {
        "original": None,
        "sae": reconstruct,
        "zero_ablated": torch.zeros_like,
        "mean_ablated": lambda acts: mean_activation.to(acts.device).expand_as(acts),
    }
    sums = dict.fromkeys(conditions, 0.0)
    n_scored = 0
    for batch in tqdm(batches, desc="Cross-entropy under 4 conditions", disable=not progress):
        batch_tokens = tokens[batch].to(model.cfg.device)
        mask = counted[batch]
        # SAELens' zero-ablation: every real position, BOS included (padding is never scored).
        zero_mask = valid[batch] if zero_ablate_bos else mask
        score_mask = scored[batch].to(model.cfg.device)
        n_scored += int(score_mask.sum().item())
        for name, make in conditions.items():
            where = zero_mask if name == "zero_ablated" else mask
            hooks = [] if make is None else [(hook_name, replace_with(make, where))]
            loss = model.run_with_hooks(
                batch_tokens,
                return_type="loss",
                loss_per_token=True,
                fwd_hooks=hooks,
                attention_mask=valid[batch].long().to(model.cfg.device),
            )  # [batch, ctx - 1]
            sums[name] += loss[score_mask].double().sum().item()
    return SpliceLosses(
        **{name: total / n_scored for name, total in sums.items()}, n_tokens=n_scored
    )
