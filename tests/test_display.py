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


# ---- each view's rows, numbers and structure against a hand computation -------------------------


def spans(html: str) -> list[tuple[str, str, str, bool]]:
    """(title, alpha, text, outlined) of each token span of highlight_tokens_html's output."""
    found = re.findall(
        r'<span title="([^"]*)" style="background: rgba\(255, 140, 0, ([0-9.]+)\); ([^"]*)">(.*?)</span>',
        html,
    )
    outline, plain = "outline: 2px solid #8a3b00; white-space", " white-space"
    assert all(style.startswith((outline, plain)) for _, _, style, _ in found), found
    return [(title, alpha, text, style.startswith(outline)) for title, alpha, style, text in found]


def test_highlight_tokens_html_shades_titles_and_outline_by_hand():
    html = D.highlight_tokens_html(["a", "\t<", "c", "d"], [1.0, 4.0, -2.0, 0.0], highlight=0)
    # the strongest value (4) gets full colour, 1 a quarter; negative values stay unshaded
    assert spans(html) == [
        ("&#x27;a&#x27;: 1.000", "0.25", "a", True),
        ("&#x27;\\t&lt;&#x27;: 4.000", "1.00", "\u2192&lt;", False),
        ("&#x27;c&#x27;: -2.000", "0.00", "c", False),
        ("&#x27;d&#x27;: 0.000", "0.00", "d", False),
    ]
    assert html.startswith('<span style="font-family:') and html.endswith("</span></span>")
    assert html.count("outline") == 1
    # max_value sets the full-colour value; above it the colour saturates
    scaled = spans(D.highlight_tokens_html(["a", "b"], torch.tensor([[1.0, 8.0]]), max_value=2.0))
    assert [alpha for _, alpha, _, _ in scaled] == ["0.50", "1.00"]
    assert not any(outlined for *_, outlined in scaled)  # no highlight: nothing outlined
    # nothing positive to scale by: the scale falls back to 1
    assert [a for _, a, _, _ in spans(D.highlight_tokens_html(["a"], [0.5], max_value=0.0))] == [
        "0.50"
    ]
    assert [a for _, a, _, _ in spans(D.highlight_tokens_html(["a", "b"], [0.0, 0.0]))] == [
        "0.00",
        "0.00",
    ]
    assert D.highlight_tokens_html([], []) == f'<span style="{D._BOX}"></span>'
    last = spans(D.highlight_tokens_html(["a", "b"], [1.0, 1.0], highlight=1))
    assert [outlined for *_, outlined in last] == [False, True]


def test_highlight_tokens_html_errors_name_the_counts_and_range():
    with pytest.raises(ValueError, match=r"Got 1 values for 2 tokens: give one value per token"):
        D.highlight_tokens_html(["a", "b"], [1.0])
    for bad in (-1, 2):
        with pytest.raises(IndexError, match=rf"highlight={bad} is not a position in 0\.\.1"):
            D.highlight_tokens_html(["a", "b"], [1.0, 2.0], highlight=bad)


def hand_contexts():
    import pandas as pd

    return pd.DataFrame(
        {
            "activation": [4.0, 2.5],
            "context_tokens": [["x", "y"], ["z", "w", "v"]],
            "context_activations": [[0.0, 4.0], [2.5, 1.0, 0.0]],
            "highlight": [1, 0],
        }
    )


def test_top_contexts_html_rows_ranks_and_shared_scale_by_hand():
    contexts = hand_contexts()
    html = D.top_contexts_html(contexts, "Top <contexts>")
    assert html.startswith(
        "<div style='font-weight: 600; margin: 6px 0;'>Top &lt;contexts&gt;</div><table"
    )
    header = re.findall(r"<th\b[^>]*>(.*?)</th>", html)
    assert header == ["#", "activation", "context (firing token outlined)"]
    rows = re.findall(r"<tr><td[^>]*>(\d+)</td><td[^>]*>([^<]*)</td><td[^>]*>(.*?)</td></tr>", html)
    # every row shaded on the table's one scale: its strongest activation, 4
    assert rows == [
        ("1", "4.00", D.highlight_tokens_html(["x", "y"], [0.0, 4.0], 4.0, 1)),
        ("2", "2.50", D.highlight_tokens_html(["z", "w", "v"], [2.5, 1.0, 0.0], 4.0, 0)),
    ]
    assert [a for _, a, _, _ in spans(rows[1][2])] == ["0.62", "0.25", "0.00"]
    assert [o for *_, o in spans(rows[1][2])] == [True, False, False]
    assert html.endswith("</tbody></table>")
    untitled = D.top_contexts_html(contexts)
    assert untitled.startswith("<table") and "font-weight: 600" not in untitled


def test_top_contexts_html_empty_and_wrong_tables():
    empty = hand_contexts().iloc[:0]
    assert D.top_contexts_html(empty) == (
        "<div><i>No contexts: the latent never fired in the sample.</i></div>"
    )
    titled = D.top_contexts_html(empty, "T")
    assert titled.startswith("<div style='font-weight: 600; margin: 6px 0;'>T</div><div><i>No")
    needed = "['activation', 'context_activations', 'context_tokens', 'highlight']"
    with pytest.raises(ValueError, match=re.escape(f"(needs {needed})")):
        D.top_contexts_html(hand_contexts().drop(columns="highlight"))


def test_neuronpedia_link_and_view_html_exactly():
    published = build_sae(neuronpedia_id="gpt2-small/8-res-jb")
    assert D.neuronpedia_link_html(published, 17) == (
        f'Neuronpedia: <a href="{NEURONPEDIA_PAGE}" target="_blank">{NEURONPEDIA_PAGE}</a>'
    )
    assert D.neuronpedia_link_html(build_sae(), 17) == (
        "<i>No Neuronpedia page: this SAE's metadata names no neuronpedia_id "
        "(only SAEs published there have one).</i>"
    )
    assert D.neuronpedia_url(build_sae(neuronpedia_id=""), 17) is None  # an empty id is none
    view = D.neuronpedia_view(published, 17)
    assert view.url == NEURONPEDIA_PAGE + "?embed=true"
    assert (view.width, view.height) == (900, 640)
    assert 'width="900" ' in view._repr_html_() and 'height="640" ' in view._repr_html_()
    small = D.neuronpedia_view(published, 17, width=300, height=200)._repr_html_()
    assert 'width="300" ' in small and 'height="200" ' in small
    assert 'title="Neuronpedia"' in small and 'loading="lazy"' in small
    assert repr(view) == f"NeuronpediaView('{NEURONPEDIA_PAGE}?embed=true')"
    none = D.neuronpedia_view(build_sae(), 17)
    assert none.url is None and repr(none) == D.NO_NEURONPEDIA_PAGE
    assert none._repr_html_().endswith(f"<i>{html_escape(D.NO_NEURONPEDIA_PAGE)}</i></div>")


def table_cells(html: str) -> list[list[str]]:
    """The text of each body row's cells (th and td) of a pandas to_html table."""
    body = html.split("<tbody>")[1]
    return [
        [c.strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def hand_dashboard(**overrides):
    import pandas as pd

    fields = dict(
        feature=7,
        summary={
            "fires": 1234,
            "density": 0.01234,
            "max_activation": 3.14159,
            "mean_activation": 1.5,
        },
        histogram=None,
        top_tokens=pd.DataFrame(
            {
                "token": [" the", "x"],
                "fires": [5, 2],
                "fires_per_occurrence": [0.5, 1.0],
                "mean_activation": [1.23456, 2.0],
                "extra": [9, 9],  # not shown
            }
        ),
        logit_effects=pd.DataFrame({"token": [" up", "<down>"], "effect": [0.12345, -1.5]}),
        contexts=hand_contexts(),
        url=None,
        link_html="LINK",
    )
    fields.update(overrides)
    return D.FeatureDashboard(**fields)


def test_feature_dashboard_header_and_tables_by_hand():
    dash = hand_dashboard()
    assert dash.header_html().endswith(
        "<b>Latent 7</b>: fires on 1,234 tokens of the sample (density 1.234%), "
        "max activation 3.14, mean when firing 1.50.<br>LINK</div>"
    )
    tables = dash.tables_html()
    first, second = tables.split("</div>")[:2]
    assert (
        "<b>Tokens it fires on most</b>" in first and "<b>Logit effect (W_dec @ W_U)</b>" in second
    )
    # tokens quoted (a leading space shows), floats to 3 places, the token as the row label
    assert table_cells(first) == [
        ["' the'", "5", "0.500", "1.235"],
        ["'x'", "2", "1.000", "2.000"],
    ]
    assert re.findall(r"<th>(.*?)</th>", first.split("<tbody>")[0]) == [
        "",
        "fires",
        "fires_per_occurrence",
        "mean_activation",
        "token",  # the index's name
        "",
        "",
        "",
    ]
    assert "extra" not in first and '<table class="dataframe sae-book-table">' in first
    assert table_cells(second) == [
        ["0", "' up'", "0.123"],
        ["1", "'&lt;down&gt;'", "-1.500"],
    ]


def test_feature_dashboard_summary_by_hand(model, sae, sample):
    feature = int(sample.firing_counts.argmax())
    grid = sample.activation_grid(feature)[sample.counted]
    fired = grid[grid != 0]
    dash = D.feature_dashboard(sample, model, sae, feature, k_contexts=2, k_tokens=3)
    assert dash.feature == feature
    assert dash.summary == pytest.approx(
        {
            "fires": len(fired),
            "density": len(fired) / int(sample.counted.sum()),
            "max_activation": fired.max().item(),
            "mean_activation": fired.mean().item(),
        }
    )
    assert dash.histogram.layout.title.text.startswith(
        f"Feature {feature}: activations when it fires, fires on {len(fired)} of "
        f"{int(sample.counted.sum()):,} tokens"
    )
    assert sum(dash.histogram.data[0].y) == len(fired)
    assert dash.top_tokens.equals(F.feature_top_tokens(sample, feature, 3))
    assert dash.logit_effects.equals(
        F.feature_logit_effects(model, sae, feature, 3, vocab=sample.vocab)
    )
    assert dash.contexts.equals(F.top_activating_contexts(sample, feature, 2))
    assert dash.link_html == D.neuronpedia_link_html(sae, feature)
    dead = int((sample.firing_counts == 0).nonzero()[0])
    quiet = D.feature_dashboard(sample, model, sae, dead)
    assert quiet.summary == {
        "fires": 0,
        "density": 0.0,
        "max_activation": 0.0,
        "mean_activation": 0.0,
    }
    assert quiet.histogram.layout.title.text == f"Feature {dead} never fired in the sample"
    published = build_sae(neuronpedia_id="gpt2-small/8-res-jb")
    linked = D.feature_dashboard(sample, model, published, 17)
    assert linked.url == NEURONPEDIA_PAGE and linked.link_html == D.neuronpedia_link_html(
        published, 17
    )
    with pytest.raises(
        ValueError, match=rf"The sample has {D_SAE} features but the SAE has d_sae={D_SAE + 1}"
    ):
        D.feature_dashboard(sample, model, build_sae(d_sae=D_SAE + 1), 0)


def boxes(html: str) -> list[tuple[str, str, str]]:
    """(alpha, token, number) of each box of token_values_html's output."""
    return re.findall(
        r"background: rgba\(255, 140, 0, ([0-9.]+)\);'><div style='white-space: pre;'>(.*?)</div>"
        r"<div style='font-size: 11px; color: #444;'>(.*?)</div></div>",
        html,
    )


def test_token_values_html_numbers_and_shades_by_hand():
    html = D.token_values_html(["a", "\n", "<c>", "d"], [0.0, 1.5, 3.0, -1.0], caption="Cap <b>")
    assert boxes(html) == [
        ("0.00", "a", "0"),  # an exact zero prints as "0"
        ("0.50", "\u21b5", "1.50"),
        ("1.00", "&lt;c&gt;", "3.00"),
        ("0.00", "d", "-1.00"),
    ]
    assert "<div style='margin-bottom: 4px;'>Cap <b></div>" in html  # the caption is HTML
    assert html.startswith("<div style='font-family:") and html.endswith("</div></div></div>")
    bare = D.token_values_html(["a"], [0.0])
    assert bare.startswith(f"<div style='{D._BOX}'><div style='display:inline-block;")
    assert boxes(bare) == [("0.00", "a", "0")]
    assert boxes(D.token_values_html(["a", "b"], [0.5, 0.25])) == [
        ("1.00", "a", "0.50"),  # below 1 too, the largest value gets full colour
        ("0.50", "b", "0.25"),
    ]
    assert boxes(D.token_values_html(["a"], [-2.0])) == [("0.00", "a", "-2.00")]
    with pytest.raises(ValueError, match="Got 2 values for 1 tokens"):
        D.token_values_html(["a"], [1.0, 2.0])


class FakeEncoded:
    """What encode_prompt returns, with activations written by hand."""

    def __init__(self, str_tokens, feature_acts, has_bos):
        self.str_tokens, self.feature_acts, self.has_bos = str_tokens, feature_acts, has_bos


def hand_encoder(calls: list, has_bos: bool = True):
    """BOS fires latent 0 hugely (never shown); 'a' fires 5 (2.0) and 7 (1.0), 'b' fires 9 (3.0),
    'c' fires 5 (0.5)."""

    def encode(model, sae, prompt):
        calls.append(prompt)
        acts = torch.zeros(4, D_SAE)
        acts[0, 0] = 100.0
        acts[1, 5], acts[1, 7] = 2.0, 1.0
        acts[2, 9] = 3.0
        acts[3, 5] = 0.5
        if prompt == "quiet":
            acts.zero_()
        if prompt == "many":  # ten latents on 'b', 20..29 at 1.0..1.9
            acts[2, 20:30] = torch.arange(10) / 10 + 1.0
        tokens = ["<bos>", "a", "b", "c"]
        return FakeEncoded(
            tokens if has_bos else tokens[1:], acts if has_bos else acts[1:], has_bos
        )

    return encode


def test_feature_explorer_render_html_by_hand(monkeypatch):
    calls = []
    monkeypatch.setattr(F, "encode_prompt", hand_encoder(calls))
    explorer = D.FeatureExplorer(None, build_sae(), "a b c", 5, n_top=2)
    html = explorer.render_html()
    assert html.startswith(
        D.token_values_html(
            ["a", "b", "c"],
            [2.0, 0.0, 0.5],
            "Latent <b>5</b> on &#x27;a b c&#x27;: fires on 2 of 3 tokens.",
        )
    )
    assert html.endswith("Strongest latents on this prompt: 9 (3.0), 5 (2.0)</div>")
    assert explorer.render_html() == html and calls == ["a b c"]  # drawn once, then cached
    other = explorer.render_html("quiet", 7)
    assert "Latent <b>7</b> on &#x27;quiet&#x27;: fires on 0 of 3 tokens." in other
    assert other.endswith("Strongest latents on this prompt: none</div>")
    everything = D.FeatureExplorer(None, build_sae(), "a b c", 5, n_top=10 * D_SAE).render_html()
    assert everything.endswith("Strongest latents on this prompt: 9 (3.0), 5 (2.0), 7 (1.0)</div>")
    with pytest.raises(IndexError):
        explorer.render_html(feature=D_SAE)
    with pytest.raises(ValueError, match="empty"):
        explorer.render_html(prompt=" ")


def test_feature_explorer_without_bos_and_with_links(monkeypatch):
    monkeypatch.setattr(F, "encode_prompt", hand_encoder([], has_bos=False))
    html = D.FeatureExplorer(None, build_sae(), "a b c", 5).render_html()
    assert "fires on 2 of 3 tokens." in html  # no BOS: nothing dropped
    many = D.FeatureExplorer(None, build_sae(), "many", 5).render_html()
    assert many.endswith(  # eight by default
        "Strongest latents on this prompt: 9 (3.0), 5 (2.0), 29 (1.9), 28 (1.8), 27 (1.7), "
        "26 (1.6), 25 (1.5), 24 (1.4)</div>"
    )
    monkeypatch.setattr(F, "encode_prompt", hand_encoder([]))
    published = build_sae(neuronpedia_id="gpt2-small/8-res-jb")
    linked = D.FeatureExplorer(None, published, "a b c", 5, n_top=2).render_html()
    page = "https://www.neuronpedia.org/gpt2-small/8-res-jb/"
    assert f'Latent <b><a href="{page}5" target="_blank">5</a></b> on' in linked
    assert linked.endswith(
        f'Strongest latents on this prompt: <a href="{page}9" target="_blank">9</a> (3.0), '
        f'<a href="{page}5" target="_blank">5</a> (2.0)'
        " (each index links to the latent's Neuronpedia page)</div>"
    )


def test_feature_explorer_widget_and_bundle_by_hand(monkeypatch):
    monkeypatch.setattr(F, "encode_prompt", hand_encoder([]))
    explorer = D.FeatureExplorer(None, build_sae(), "a b c", 5, n_top=2)
    prompt_box, feature_box, view = explorer.widget.children
    assert explorer.widget is explorer.widget  # built once
    assert (prompt_box.value, prompt_box.description) == ("a b c", "Prompt")
    assert prompt_box.continuous_update is False  # redrawn on Enter, not on every key
    assert (feature_box.value, feature_box.min, feature_box.max) == (5, 0, D_SAE - 1)
    assert feature_box.description == "Latent"
    assert view.value == explorer.render_html()
    feature_box.value = 9
    assert view.value == explorer.render_html("a b c", 9) and explorer.feature == 9
    prompt_box.value = "quiet"
    assert explorer.prompt == "quiet" and "fires on 0 of 3 tokens" in view.value
    prompt_box.value = ""
    assert view.value.startswith("<div style='color: #a00;'>") and "empty" in view.value
    assert explorer.prompt == "quiet"  # the last good prompt stays
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == "FeatureExplorer(prompt='quiet', feature=9)"
    assert bundle["text/html"].endswith(explorer.render_html() + "</div>")
    assert "static snapshot" in bundle["text/html"]


def test_table_html_quotes_strings_in_object_columns_and_index():
    import pandas as pd

    frame = pd.DataFrame({"token": pd.Series([" a", "b"], dtype=object), "n": [1.0, 2.5]})
    frame.index = pd.Index([" i", "j"], dtype=object)
    assert frame["token"].dtype == object and frame.index.dtype == object
    html = D._table_html(frame, "T & <U>", float_format="{:.1f}")
    assert "<b>T &amp; &lt;U&gt;</b>" in html
    assert table_cells(html) == [["' i'", "' a'", "1.0"], ["'j'", "'b'", "2.5"]]
    assert table_cells(D._table_html(frame, "T")) == [
        ["' i'", "' a'", "1.000"],  # three places by default
        ["'j'", "'b'", "2.500"],
    ]


def test_table_html_quotes_only_the_strings_of_a_mixed_object_column_and_index():
    import pandas as pd

    # an object column / index holding a string and a number: the string quoted, the number
    # formatted as a number (three places), not quoted
    frame = pd.DataFrame({"token": pd.Series([" a", 0.12345], dtype=object), "n": [1.0, 2.5]})
    frame.index = pd.Index([" i", 2], dtype=object)
    assert not pd.api.types.is_string_dtype(frame["token"])
    assert not pd.api.types.is_string_dtype(frame.index)
    assert table_cells(D._table_html(frame, "T")) == [
        ["' i'", "' a'", "1.000"],
        ["2", "0.123", "2.500"],
    ]


def test_highlight_tokens_html_largest_value_below_one_gets_full_colour():
    # the scale is the largest value (0.5), not 1: 0.5 -> 1.00, 0.25 -> 0.50
    html = D.highlight_tokens_html(["a", "b"], [0.5, 0.25])
    assert [alpha for _, alpha, _, _ in spans(html)] == ["1.00", "0.50"]


def test_neuronpedia_url_of_metadata_without_the_attribute_is_none():
    from types import SimpleNamespace

    sae = SimpleNamespace(cfg=SimpleNamespace(d_sae=D_SAE, metadata=SimpleNamespace()))
    assert D.neuronpedia_url(sae, 17) is None
    assert D.neuronpedia_url(sae, 17, embed=True) is None
    assert "No Neuronpedia page" in D.neuronpedia_link_html(sae, 17)


def test_token_values_html_of_no_tokens():
    assert D.token_values_html([], []) == f"<div style='{D._BOX}'></div>"
    assert D.token_values_html([], [], caption="C") == (
        f"<div style='{D._BOX}'><div style='margin-bottom: 4px;'>C</div></div>"
    )


def test_feature_dashboard_defaults_show_ten_contexts_and_ten_tokens(model, sae, sample):
    feature = int(sample.firing_counts.argmax())
    assert sample.firing_counts[feature] > 10  # enough contexts for the default to show
    dash = D.feature_dashboard(sample, model, sae, feature)
    assert len(dash.contexts) == 10 and len(dash.logit_effects) == 10


def test_feature_dashboard_density_of_a_one_token_sample(model, sae):
    one = F.collect_feature_stats(model, sae, ["x"], context_size=8, batch_size=1, progress=False)
    assert one.n_tokens == 1
    feature = int(one.firing_counts.argmax())
    assert one.firing_counts[feature] == 1
    dash = D.feature_dashboard(one, model, sae, feature, k_contexts=1, k_tokens=1)
    assert dash.summary["fires"] == 1 and dash.summary["density"] == 1.0  # 1 of 1 token


def test_feature_dashboard_names_logit_tokens_from_the_sample_vocab(model, sae, sample):
    import dataclasses

    # the sample's vocab is what the logit table names tokens by (not decoded again)
    marked = [f"\u27e8{i}\u27e9" for i in range(len(sample.vocab))]
    relabelled = dataclasses.replace(sample, vocab=marked, _token_cache={})
    feature = int(sample.firing_counts.argmax())
    dash = D.feature_dashboard(relabelled, model, sae, feature, k_contexts=1, k_tokens=3)
    for column in ("promoted", "suppressed"):
        assert all(token in marked for token in dash.logit_effects[column]), dash.logit_effects
