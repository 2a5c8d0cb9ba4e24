"""Unit tests for utils.display on a random model (d_model 48) and SAE (d_sae 200)."""

from __future__ import annotations

import re
from html import escape as html_escape

import pytest
import torch
from random_models import D_SAE, build_sae

from utils import display as D
from utils import features as F


def test_highlight_tokens_html_escapes_and_shades():
    html = D.highlight_tokens_html(["<b>", "\n", " x"], torch.tensor([0.0, 1.0, 2.0]), highlight=2)
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "\u21b5" in html  # newline made visible
    assert "rgba(255, 140, 0, 1.00)" in html and "rgba(255, 140, 0, 0.50)" in html
    assert html.count("outline") == 1


def test_highlight_tokens_html_bad_input():
    with pytest.raises(ValueError, match="one value per token"):
        D.highlight_tokens_html(["a", "b"], [1.0])
    with pytest.raises(IndexError, match="highlight"):
        D.highlight_tokens_html(["a"], [1.0], highlight=3)


def test_top_contexts_html(sample):
    feature = int(sample.firing_counts.argmax())
    contexts = F.top_activating_contexts(sample, feature, k=4)
    html = D.top_contexts_html(contexts, "Top contexts")
    assert html.count("<tr>") == 5  # header + 4
    assert "Top contexts" in html
    empty = D.top_contexts_html(contexts.iloc[:0])
    assert "never fired" in empty
    with pytest.raises(ValueError, match="top_activating_contexts"):
        D.top_contexts_html(contexts[["activation"]])


NEURONPEDIA_PAGE = "https://www.neuronpedia.org/gpt2-small/8-res-jb/17"  # the site's real form


def test_neuronpedia_url():
    sae = build_sae(neuronpedia_id="gpt2-small/8-res-jb")
    assert D.neuronpedia_url(sae, 17) == NEURONPEDIA_PAGE
    assert D.neuronpedia_url(sae, 17, embed=True) == NEURONPEDIA_PAGE + "?embed=true"
    assert f'href="{NEURONPEDIA_PAGE}"' in D.neuronpedia_link_html(sae, 17)
    local = build_sae()
    assert D.neuronpedia_url(local, 17) is None
    assert D.neuronpedia_url(local, 17, embed=True) is None
    assert "No Neuronpedia page" in D.neuronpedia_link_html(local, 17)
    with pytest.raises(IndexError):
        D.neuronpedia_url(sae, D_SAE)


def test_neuronpedia_view_embeds_the_page_or_says_there_is_none():
    page = D.neuronpedia_view(build_sae(neuronpedia_id="gpt2-small/8-res-jb"), 17)._repr_html_()
    assert page.startswith("<iframe ") and f'src="{NEURONPEDIA_PAGE}?embed=true"' in page
    # a local SAE: one line of text, and nothing a browser would fetch
    none = D.neuronpedia_view(build_sae(), 17)._repr_html_()
    assert "has no Neuronpedia page" in none
    for fetches in ("<iframe", "src=", "http", "<img", "<script", "<link"):
        assert fetches not in none
    assert "no Neuronpedia page" in repr(D.neuronpedia_view(build_sae(), 17))


def test_feature_explorer_links_each_latent_to_neuronpedia(model):
    published = build_sae(neuronpedia_id="gpt2-small/8-res-jb")
    view = D.FeatureExplorer(model, published, "The capital of France is Paris", 5).render_html()
    linked = re.findall(r'<a href="https://www.neuronpedia.org/gpt2-small/8-res-jb/(\d+)"', view)
    suggested = re.search(r"Strongest latents on this prompt: (.*)", view).group(1)
    assert linked[0] == "5"  # the chosen latent in the caption
    assert len(linked) - 1 == len(re.findall(r"</a> \(\d", suggested)) > 0  # and each suggestion
    assert "links to the latent's Neuronpedia page" in suggested
    local = D.FeatureExplorer(model, build_sae(), "The capital of France is Paris", 5)
    assert "href" not in local.render_html() and "neuronpedia" not in local.render_html()


def test_feature_dashboard(model, sae, sample):
    feature = int(sample.firing_counts.argmax())
    dash = D.feature_dashboard(sample, model, sae, feature, k_contexts=3, k_tokens=4)
    assert dash.summary["fires"] == sample.firing_counts[feature]
    assert dash.summary["max_activation"] == pytest.approx(sample.max_activation[feature].item())
    assert len(dash.contexts) == 3 and len(dash.logit_effects) == 4
    assert dash.url is None
    assert f"Latent {feature}" in dash.header_html()
    assert "Logit effect" in dash.tables_html()
    top_token = dash.top_tokens["token"].iloc[0]
    assert (
        html_escape(repr(top_token), quote=False) in dash.tables_html()
    )  # token strings are quoted


def test_feature_dashboard_show_displays_every_part_in_order(model, sae, sample, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    feature = int(sample.firing_counts.argmax())
    dash = D.feature_dashboard(sample, model, sae, feature, k_contexts=3, k_tokens=4)
    dash.show()
    html = [getattr(obj, "data", None) for obj in shown]
    assert html[0] == dash.header_html()
    assert shown[1] is dash.histogram
    assert html[2] == dash.tables_html()
    assert html[3] == D.top_contexts_html(dash.contexts, "Top activating contexts in the sample")
    assert len(shown) == 4


def test_feature_dashboard_bad_input(model, sae, sample):
    with pytest.raises(IndexError):
        D.feature_dashboard(sample, model, sae, D_SAE)
    with pytest.raises(ValueError, match="collect the sample with this SAE"):
        D.feature_dashboard(sample, model, build_sae(d_sae=D_SAE + 1), 0)


def test_token_values_html():
    html = D.token_values_html(["a", "b"], [0.0, 1.5], caption="cap")
    assert "1.50" in html and "cap" in html


def test_feature_explorer_bundle_has_widget_and_static_html(model, sae):
    explorer = D.FeatureExplorer(model, sae, "The capital of France is Paris", 5)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "static snapshot" in bundle["text/html"]
    assert "Latent <b>5</b>" in bundle["text/html"]
    assert "<|endoftext|>" not in bundle["text/html"]  # BOS is not shown


def test_feature_explorer_updates_and_reports_errors(model, sae):
    explorer = D.FeatureExplorer(model, sae, "Hello world", 5)
    prompt_box, feature_box, view = explorer.widget.children
    feature_box.value = 9
    assert explorer.feature == 9 and "Latent <b>9</b>" in view.value
    prompt_box.value = "Paris"
    assert "&#x27;Paris&#x27;" in view.value
    prompt_box.value = "   "
    assert "empty" in view.value  # shown in the widget, not raised
    assert feature_box.max == D_SAE - 1


def test_feature_explorer_bad_input(model, sae):
    with pytest.raises(ValueError, match="empty"):
        D.FeatureExplorer(model, sae, "", 1)
    with pytest.raises(IndexError):
        D.FeatureExplorer(model, sae, "hi", D_SAE)
