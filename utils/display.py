"""HTML views of SAE latents: highlighted tokens, top-activating contexts, a feature dashboard
and an interactive explorer.

Everything is plain styled HTML (no JavaScript, a few KB per view), so it shows the same in
JupyterLab, Colab and the book's static website. (circuitsvis draws similar views, but inlines
about 1.3 MB of JavaScript per output when offline.)

Main entry points
-----------------
:func:`highlight_tokens_html`, :func:`top_contexts_html`, :func:`neuronpedia_url`,
:func:`neuronpedia_view` (a latent's Neuronpedia page in an iframe, when the SAE has one),
:func:`feature_dashboard` -> :class:`FeatureDashboard` (``.show()``),
:class:`FeatureExplorer` (an ipywidgets explorer that also carries a static HTML snapshot).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from . import features as F
from . import plots

NEURONPEDIA = "https://www.neuronpedia.org"
_HIGHLIGHT_RGB = "255, 140, 0"  # orange: the feature's activation on a token
_BOX = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; color: #111;"


def _visible(token: str) -> str:
    """A token string made visible in HTML: newlines and tabs shown as symbols, then escaped."""
    return html.escape(token.replace("\n", "\u21b5").replace("\t", "\u2192"))


def _as_values(values: torch.Tensor | Sequence[float], n: int) -> list[float]:
    values = torch.as_tensor(values).detach().flatten().float().cpu().tolist()
    if len(values) != n:
        raise ValueError(f"Got {len(values)} values for {n} tokens: give one value per token.")
    return values


def highlight_tokens_html(
    str_tokens: Sequence[str],
    values: torch.Tensor | Sequence[float],
    max_value: float | None = None,
    highlight: int | None = None,
) -> str:
    """Tokens as inline HTML, each shaded by its value (hover shows the number).

    Args:
        str_tokens: ``pos`` token strings.
        values: ``[pos]`` activations (negative values are shown unshaded).
        max_value: the value that gets full colour (default: the largest of ``values``).
        highlight: a position to outline (e.g. the token a context was chosen for).
    """
    vals = _as_values(values, len(str_tokens))
    if highlight is not None and not 0 <= highlight < len(str_tokens):
        raise IndexError(f"highlight={highlight} is not a position in 0..{len(str_tokens) - 1}")
    top = max_value if max_value is not None else max(vals, default=0.0)
    top = top if top > 0 else 1.0
    spans = []
    for i, (token, value) in enumerate(zip(str_tokens, vals)):
        alpha = min(1.0, max(0.0, value / top))
        border = "outline: 2px solid #8a3b00;" if i == highlight else ""
        spans.append(
            f'<span title="{html.escape(repr(token))}: {value:.3f}" style="background: rgba({_HIGHLIGHT_RGB}, '
            f'{alpha:.2f}); {border} white-space: pre-wrap; border-radius: 2px;">{_visible(token)}</span>'
        )
    return f'<span style="{_BOX}">{"".join(spans)}</span>'


def top_contexts_html(contexts: pd.DataFrame, title: str | None = None) -> str:
    """An HTML table of contexts (from ``utils.features.top_activating_contexts``), firing token outlined.

    Colours share one scale: the strongest activation in the table.
    """
    needed = {"activation", "context_tokens", "context_activations", "highlight"}
    if not needed <= set(contexts.columns):
        raise ValueError(
            f"contexts must be the table from top_activating_contexts (needs {sorted(needed)})"
        )
    head = (
        f"<div style='font-weight: 600; margin: 6px 0;'>{html.escape(title)}</div>" if title else ""
    )
    if len(contexts) == 0:
        return head + "<div><i>No contexts: the latent never fired in the sample.</i></div>"
    top = float(contexts["activation"].max())
    rows = []
    for rank, row in enumerate(contexts.itertuples(), start=1):
        text = highlight_tokens_html(
            row.context_tokens, row.context_activations, top, row.highlight
        )
        rows.append(
            f"<tr><td style='text-align:right; padding: 2px 8px;'>{rank}</td>"
            f"<td style='text-align:right; padding: 2px 8px;'>{row.activation:.2f}</td>"
            f"<td style='text-align:left; padding: 2px 8px;'>{text}</td></tr>"
        )
    return (
        f"{head}<table style='border-collapse: collapse; background: #fff; color: #111;'>"
        "<thead><tr><th style='padding: 2px 8px;'>#</th><th style='padding: 2px 8px;'>activation</th>"
        "<th style='text-align:left; padding: 2px 8px;'>context (firing token outlined)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def neuronpedia_url(sae: Any, feature: int, embed: bool = False) -> str | None:
    """The latent's public page on Neuronpedia, or ``None`` if the SAE has none.

    Uses ``sae.cfg.metadata.neuronpedia_id`` (set by ``SAE.from_pretrained`` for SAEs that
    Neuronpedia hosts, e.g. ``gpt2-small/8-res-jb``), in the same
    ``<site>/<neuronpedia_id>/<index>`` form as SAELens' ``open_neuronpedia_feature_dashboard``.
    ``embed=True`` adds ``?embed=true``: Neuronpedia's view for an iframe.
    """
    feature = F.check_feature_index(feature, sae.cfg.d_sae)
    neuronpedia_id = getattr(sae.cfg.metadata, "neuronpedia_id", None)
    if not neuronpedia_id:
        return None
    url = f"{NEURONPEDIA}/{neuronpedia_id}/{feature}"
    return f"{url}?embed=true" if embed else url


def neuronpedia_link_html(sae: Any, feature: int) -> str:
    """A link to the latent's Neuronpedia page, or a sentence saying why there is none."""
    url = neuronpedia_url(sae, feature)
    if url is None:
        return (
            "<i>No Neuronpedia page: this SAE's metadata names no neuronpedia_id "
            "(only SAEs published there have one).</i>"
        )
    return f'Neuronpedia: <a href="{html.escape(url)}" target="_blank">{html.escape(url)}</a>'


NO_NEURONPEDIA_PAGE = (
    "This SAE has no Neuronpedia page: its metadata names no neuronpedia_id "
    "(only SAEs published there have one), so the book's own dashboard is all there is."
)


@dataclass
class NeuronpediaView:
    """A latent's Neuronpedia page in an iframe, or one line saying there is none.

    Nothing is fetched when it is built or rendered here: the reader's browser loads the
    iframe, and only when the SAE has a page (a local SAE gives a line of text and no URL).

    Attributes:
        url: the embeddable page (``...?embed=true``), or ``None``.
        width, height: the iframe's size in pixels.
    """

    url: str | None
    width: int = 900
    height: int = 640

    def _repr_html_(self) -> str:
        if self.url is None:
            return f"<div style='{_BOX}'><i>{html.escape(NO_NEURONPEDIA_PAGE)}</i></div>"
        src = html.escape(self.url)
        return (
            f'<iframe src="{src}" title="Neuronpedia" width="{self.width}" '
            f'height="{self.height}" style="border: 1px solid #ccc;" loading="lazy"></iframe>'
        )

    def __repr__(self) -> str:
        return f"NeuronpediaView({self.url!r})" if self.url else NO_NEURONPEDIA_PAGE


def neuronpedia_view(
    sae: Any, feature: int, width: int = 900, height: int = 640
) -> NeuronpediaView:
    """The latent's embeddable Neuronpedia page (display it in a notebook), or a line saying the
    SAE has none. See :class:`NeuronpediaView`."""
    return NeuronpediaView(neuronpedia_url(sae, feature, embed=True), width, height)


def _table_html(frame: pd.DataFrame, title: str, float_format: str = "{:.3f}") -> str:
    shown = frame.copy()
    quote = lambda v: repr(v) if isinstance(v, str) else v  # noqa: E731  (token strings: show spaces)
    for column in shown.columns:
        if shown[column].dtype == object or pd.api.types.is_string_dtype(shown[column]):
            shown[column] = shown[column].map(quote)
    if shown.index.dtype == object or pd.api.types.is_string_dtype(shown.index):
        shown.index = shown.index.map(quote)
    body = shown.to_html(float_format=float_format.format, border=0, classes="sae-book-table")
    return f"<div style='display:inline-block; vertical-align: top; margin-right: 24px;'><b>{html.escape(title)}</b>{body}</div>"


@dataclass
class FeatureDashboard:
    """Everything known about one feature from a sample; ``.show()`` displays it.

    Attributes:
        feature: the feature index.
        summary: ``fires``, ``density``, ``max_activation``, ``mean_activation`` (when firing).
        histogram: plotly histogram of its non-zero activations.
        top_tokens: table from ``features.feature_top_tokens``.
        logit_effects: table from ``features.feature_logit_effects``.
        contexts: table from ``features.top_activating_contexts``.
        url: its Neuronpedia page, or ``None``.
        link_html: the link, or the reason there is none.
    """

    feature: int
    summary: dict[str, float]
    histogram: Any
    top_tokens: pd.DataFrame
    logit_effects: pd.DataFrame
    contexts: pd.DataFrame
    url: str | None
    link_html: str

    def header_html(self) -> str:
        s = self.summary
        return (
            f"<div style='{_BOX} font-size: 14px; margin: 4px 0 8px 0;'><b>Latent {self.feature}</b>: "
            f"fires on {int(s['fires']):,} tokens of the sample (density {s['density']:.3%}), "
            f"max activation {s['max_activation']:.2f}, mean when firing {s['mean_activation']:.2f}."
            f"<br>{self.link_html}</div>"
        )

    def tables_html(self) -> str:
        tokens = self.top_tokens[["token", "fires", "fires_per_occurrence", "mean_activation"]]
        return _table_html(tokens.set_index("token"), "Tokens it fires on most") + _table_html(
            self.logit_effects, "Logit effect (W_dec @ W_U)"
        )

    def show(self) -> None:
        """Display the header, histogram, token tables and top contexts."""
        from IPython.display import HTML, display

        display(HTML(self.header_html()))
        display(self.histogram)
        display(HTML(self.tables_html()))
        display(HTML(top_contexts_html(self.contexts, "Top activating contexts in the sample")))


def feature_dashboard(
    sample: F.FeatureSample,
    model: Any,
    sae: Any,
    feature: int,
    k_contexts: int = 10,
    k_tokens: int = 10,
) -> FeatureDashboard:
    """Build a :class:`FeatureDashboard` for ``feature`` from a sample (``collect_feature_stats``)."""
    feature = sample.check_feature(feature)
    if sample.d_sae != sae.cfg.d_sae:
        raise ValueError(
            f"The sample has {sample.d_sae} features but the SAE has d_sae={sae.cfg.d_sae}: "
            "collect the sample with this SAE."
        )
    _, _, values = sample.feature_activations(feature)
    summary = {
        "fires": len(values),
        "density": len(values) / max(sample.n_tokens, 1),
        "max_activation": float(values.max()) if len(values) else 0.0,
        "mean_activation": float(values.mean()) if len(values) else 0.0,
    }
    return FeatureDashboard(
        feature=feature,
        summary=summary,
        histogram=plots.feature_activation_histogram(values, feature, sample.n_tokens),
        top_tokens=F.feature_top_tokens(sample, feature, k_tokens),
        logit_effects=F.feature_logit_effects(model, sae, feature, k_tokens, vocab=sample.vocab),
        contexts=F.top_activating_contexts(sample, feature, k_contexts),
        url=neuronpedia_url(sae, feature),
        link_html=neuronpedia_link_html(sae, feature),
    )


def token_values_html(
    str_tokens: Sequence[str], values: torch.Tensor | Sequence[float], caption: str = ""
) -> str:
    """Tokens in boxes with their value printed under each, shaded by value (readable without hover)."""
    vals = _as_values(values, len(str_tokens))
    top = max(max(vals, default=0.0), 1e-9)
    boxes = []
    for token, value in zip(str_tokens, vals):
        alpha = min(1.0, max(0.0, value / top))
        number = f"{value:.2f}" if value != 0 else "0"
        boxes.append(
            f"<div style='display:inline-block; margin: 2px; padding: 2px 4px; text-align:center; "
            f"border: 1px solid #ddd; border-radius: 3px; background: rgba({_HIGHLIGHT_RGB}, {alpha:.2f});'>"
            f"<div style='white-space: pre;'>{_visible(token)}</div>"
            f"<div style='font-size: 11px; color: #444;'>{number}</div></div>"
        )
    cap = f"<div style='margin-bottom: 4px;'>{caption}</div>" if caption else ""
    return f"<div style='{_BOX}'>{cap}{''.join(boxes)}</div>"


class FeatureExplorer:
    """Type a prompt, pick a latent, see its activation on every token; each latent index links
    to its Neuronpedia page when the SAE has one.

    In a live notebook it is an ipywidgets form. Its display bundle also carries a static HTML
    rendering of the current state (``text/html``), which is what a static page (the book's
    website) shows; a widget without a kernel behind it could not update.

    Args:
        model, sae: as for ``utils.features.encode_prompt``.
        prompt: the initial prompt.
        feature: the initial feature (``0..d_sae-1``).
        n_top: how many of the prompt's strongest features to list as suggestions.
    """

    def __init__(self, model: Any, sae: Any, prompt: str, feature: int, n_top: int = 8):
        self.model, self.sae, self.n_top = model, sae, n_top
        self.prompt = F.check_prompt(prompt)
        self.feature = F.check_feature_index(feature, sae.cfg.d_sae)
        self._widget = None
        self._html_cache: dict[tuple[str, int], str] = {}

    def render_html(self, prompt: str | None = None, feature: int | None = None) -> str:
        """The explorer's view of ``prompt``/``feature`` (default: the current ones) as HTML."""
        prompt = self.prompt if prompt is None else F.check_prompt(prompt)
        feature = (
            self.feature if feature is None else F.check_feature_index(feature, self.sae.cfg.d_sae)
        )
        key = (prompt, feature)
        if key not in self._html_cache:
            encoded = F.encode_prompt(self.model, self.sae, prompt)
            start = 1 if encoded.has_bos else 0  # the BOS token is not part of what was typed
            tokens = encoded.str_tokens[start:]
            acts = encoded.feature_acts[start:]
            values = acts[:, feature]
            strongest = acts.max(0).values
            top = strongest.topk(min(self.n_top, strongest.numel()))
            suggestions = ", ".join(
                f"{self._latent_link(i)} ({v:.1f})"
                for i, v in zip(top.indices.tolist(), top.values.tolist())
                if v > 0
            )
            caption = (
                f"Latent <b>{self._latent_link(feature)}</b> on {html.escape(repr(prompt))}: "
                f"fires on {int((values != 0).sum())} of {len(tokens)} tokens."
            )
            self._html_cache[key] = (
                token_values_html(tokens, values, caption)
                + f"<div style='{_BOX} margin-top: 6px;'>Strongest latents on this prompt: "
                f"{suggestions or 'none'}{self._link_note()}</div>"
            )
        return self._html_cache[key]

    def _latent_link(self, latent: int) -> str:
        """The latent's index, linked to its Neuronpedia page when the SAE has one."""
        url = neuronpedia_url(self.sae, latent)
        if url is None:
            return str(latent)
        return f'<a href="{html.escape(url)}" target="_blank">{latent}</a>'

    def _link_note(self) -> str:
        if neuronpedia_url(self.sae, self.feature) is None:
            return ""
        return " (each index links to the latent's Neuronpedia page)"

    @property
    def widget(self):
        """The ipywidgets form (built on first use)."""
        if self._widget is None:
            import ipywidgets as widgets

            prompt_box = widgets.Text(
                value=self.prompt,
                description="Prompt",
                continuous_update=False,
                layout=widgets.Layout(width="95%"),
            )
            feature_box = widgets.BoundedIntText(
                value=self.feature, min=0, max=self.sae.cfg.d_sae - 1, description="Latent"
            )
            view = widgets.HTML(value=self.render_html())

            def update(_change: Any = None) -> None:
                try:
                    self.prompt = F.check_prompt(prompt_box.value)
                    self.feature = int(feature_box.value)
                    view.value = self.render_html()
                except (ValueError, IndexError, TypeError) as error:
                    view.value = f"<div style='color: #a00;'>{html.escape(str(error))}</div>"

            prompt_box.observe(update, names="value")
            feature_box.observe(update, names="value")
            self._widget = widgets.VBox([prompt_box, feature_box, view])
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        bundle = dict(self.widget._repr_mimebundle_())
        bundle["text/html"] = (
            f"<div style='border: 1px solid #ccc; padding: 8px; border-radius: 4px;'>"
            f"<div style='{_BOX} color: #555; margin-bottom: 6px;'>Latent explorer (a static snapshot: "
            "run the notebook to type your own prompt and pick a latent)</div>"
            f"{self.render_html()}</div>"
        )
        bundle["text/plain"] = f"FeatureExplorer(prompt={self.prompt!r}, feature={self.feature})"
        return bundle
