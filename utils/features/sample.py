"""The feature-sample store: one pass over a dataset sample (:func:`collect_feature_stats`)
kept as a :class:`FeatureSample` (sparse, never a dense ``[tokens, d_sae]`` matrix), and the
questions asked of it: top-activating contexts, the tokens a feature fires on, the features a
token fires, density, and a feature picked by a stated rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from .checks import (
    _check_last_dim,
    check_feature_index,
    check_hook_name,
    sae_hook_name,
    sae_prepend_bos,
)
from .prompt import hook_activations
from .reconstruction import ReconstructionSums


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
    with torch.no_grad():
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
        reconstruction = ReconstructionSums()
        nz_pos: list[torch.Tensor] = []
        nz_feat: list[torch.Tensor] = []
        nz_val: list[torch.Tensor] = []

        starts = range(0, n_texts, batch_size)
        for start in tqdm(starts, desc="Encoding the sample", disable=not progress):
            batch = slice(start, start + batch_size)
            acts = hook_activations(
                model, tokens[batch], hook_name, attention_mask=valid[batch].long()
            )
            if start == 0:
                _check_last_dim(
                    acts, sae.cfg.d_in, "the SAE's d_in", f"The activations at {hook_name}"
                )
            mask = counted[batch].to(acts.device)
            x = acts[mask].to(sae.device, sae.dtype)  # [n_counted, d_in]
            if x.shape[0] == 0:
                continue
            f = sae.encode(x)  # [n_counted, d_sae]
            x_hat = sae.decode(f)
            active = f != 0
            rows, feats = active.nonzero(as_tuple=True)
            flat = (
                torch.arange(start, start + mask.shape[0])[:, None] * ctx
                + torch.arange(ctx)[None, :]
            )
            flat_counted = flat[mask.cpu()]
            nz_pos.append(flat_counted[rows.cpu()].to(torch.int64))
            nz_feat.append(feats.cpu().to(torch.int64))
            nz_val.append(f[rows, feats].float().cpu())
            l0[batch][mask.cpu()] = active.sum(-1).int().cpu()
            firing_counts += active.sum(0).cpu()
            max_activation = torch.maximum(max_activation, f.max(0).values.float().cpu())
            reconstruction.add(x, x_hat)

        n = int(counted.sum().item())
        if n == 0:
            raise ValueError(
                "No tokens to count: every text is only a BOS token. Give longer texts."
            )
        positions = torch.cat(nz_pos) if nz_pos else torch.zeros(0, dtype=torch.int64)
        features = torch.cat(nz_feat) if nz_feat else torch.zeros(0, dtype=torch.int64)
        values = torch.cat(nz_val) if nz_val else torch.zeros(0)
        order = torch.argsort(features, stable=True)
        offsets = torch.zeros(d_sae + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.bincount(features, minlength=d_sae), 0)
        measured = reconstruction.result()
        metrics = {
            name: measured[name] for name in ("mse", "explained_variance", "cosine_similarity")
        }
        return FeatureSample(
            tokens=tokens,
            lengths=lengths,
            counted=counted,
            l0=l0,
            firing_counts=firing_counts,
            max_activation=max_activation,
            mean_activation_vector=reconstruction.mean.float(),
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
    if min_fires < 1:  # a feature that never fired has no top token (and a share of 0 / 0)
        raise ValueError(f"min_fires must be at least 1, got {min_fires}")
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
