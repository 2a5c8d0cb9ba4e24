"""Sphinx extension: three fixes to the site's toolchain, each seen in a browser or a rebuild.

1. Each inline ``<script>`` once per page. Sphinx 7.4 registers a script that an extension adds
   with ``app.add_js_file(None, body=...)`` twice (once as added, once more when the HTML builder
   prepares writing, with ``""`` for ``None`` as its file name, so its duplicate check misses it).
   sphinx-thebe adds its settings that way, as ``const THEBE_JS_URL = ...``: declared twice, the
   second copy is a SyntaxError in the console of every page.
2. A change under ``_static/`` or ``_ext/`` (the repository's, shared by both editions) rebuilds
   every page. Otherwise Sphinx reports "no targets are out of date", skips writing, and so
   neither copies the changed logo or CSS into the site nor runs the changed extension code.
3. A notebook's own ``metadata.mystnb.mime_priority_overrides`` entries that hide a mime type
   (priority ``null``) are honoured on the website. MyST-NB reads them, but its Sphinx step that
   picks the shown part of each output uses only the book-wide setting. The book-wide setting
   (``nb_mime_priority_overrides`` in ``_config.yml``, which hides widget views on every page)
   is applied the same way. So a notebook can show
   the HTML snapshot that an ipywidgets view carries instead of a widget with no kernel behind it.
   A widget that carries only its text form (a tqdm bar frozen at "0%", "HBox(...)") then shows
   nothing rather than that placeholder.
   (Overrides that only reorder types still need the book-wide ``nb_mime_priority_overrides``.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

WATCHED = ("_static", "_ext")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _script_key(js) -> tuple:
    filename = getattr(js, "filename", js) or ""
    attributes = getattr(js, "attributes", {}) or {}
    return (
        str(filename),
        tuple(sorted((k, str(v)) for k, v in attributes.items() if k != "priority")),
    )


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: Sphinx restores the list from its own copy for the next page


def assets_fingerprint(confdir: Path) -> str:
    """A hash of every file under the watched folders (names and contents)."""
    digest = hashlib.sha256()
    for folder in WATCHED:
        root = Path(confdir) / folder
        if not root.is_dir():
            continue
        for path in sorted(
            p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ):
            digest.update(path.relative_to(confdir).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _all_outdated_when_assets_change(app, env, added, changed, removed):
    # The repository's folders, also for the Chinese edition (whose confdir is zh/).
    fingerprint = assets_fingerprint(Path(__file__).resolve().parent.parent)
    previous = getattr(env, "sae_book_assets_fingerprint", None)
    env.sae_book_assets_fingerprint = fingerprint  # pickled with the environment
    if previous is not None and previous != fingerprint:
        return sorted(env.found_docs - set(added) - set(removed))
    return []


class NotebookHiddenMimeTypes(SphinxPostTransform):
    """Drop the parts of each output bundle that the notebook's metadata hides for this builder."""

    default_priority = 3  # before MyST-NB's SelectMimeType (4) picks one part per bundle

    def run(self, **kwargs) -> None:
        source = Path(self.env.doc2path(self.env.docname))
        if source.suffix != ".ipynb":
            return
        metadata = json.loads(source.read_text(encoding="utf-8")).get("metadata", {})
        overrides = [
            *metadata.get("mystnb", {}).get("mime_priority_overrides", []),
            *(getattr(self.config, "nb_mime_priority_overrides", None) or []),  # _config.yml's
        ]
        builder = self.app.builder.name
        hidden = {
            mime
            for name, mime, priority in overrides
            if priority is None and name in ("*", builder)
        }
        if not hidden:
            return
        bundles = [
            node
            for node in self.document.findall(nodes.container)
            if node.get("nb_element") == "mime_bundle"
        ]
        for bundle in bundles:
            drop = [part for part in bundle.children if part.get("mime_type") in hidden]
            if not drop:
                continue
            left = {part.get("mime_type") for part in bundle.children if part not in drop}
            if left <= {"text/plain"} and any(
                part.get("mime_type") == WIDGET_VIEW for part in drop
            ):
                # A widget's text form is a placeholder ("HBox(...)", a tqdm bar stuck at 0%):
                # without its view the output shows nothing.
                bundle.parent.remove(bundle)
            elif left:
                for part in drop:
                    bundle.remove(part)


def setup(app):
    # After every other handler of the event has added its scripts.
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    app.connect("env-get-outdated", _all_outdated_when_assets_change)
    app.add_post_transform(NotebookHiddenMimeTypes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
