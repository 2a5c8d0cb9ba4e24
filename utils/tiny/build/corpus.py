"""Generating the tiny model's corpus from the running Python's documentation (the build's first
step); :mod:`utils.tiny.corpus` reads and writes the shipped file. How and why: that module's
docstring."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import os
import random
import sys
import sysconfig
import warnings
from pathlib import Path

from ..corpus import HELDOUT_FRACTION, SPLIT_SEED, Corpus

CHUNK_CHARS = 3000  # documents are grouped up to about this many characters
MAX_SIGNATURE_CHARS = 160

# Parts of the standard library that are not documentation-like or have side effects worth avoiding.
SKIP_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "tkinter",
        "turtledemo",
        "site-packages",
        "dist-packages",
        "lib-dynload",
        "__pycache__",
        "__phello__",
        "_bundled",
        "ensurepip",
    }
)
SKIP_FILE_PREFIXES = ("_sysconfigdata", "__hello__", "__phello__", "_test", "test_")
SKIP_FILES = frozenset({"this.py", "antigravity.py", "turtle.py", "__main__.py"})

# C modules without Python source whose docstrings are worth having. Importing them has no side
# effects; the ones missing on a platform are skipped.
C_MODULES = (
    "array",
    "binascii",
    "builtins",
    "cmath",
    "errno",
    "gc",
    "itertools",
    "marshal",
    "math",
    "sys",
    "time",
    "unicodedata",
    "zlib",
)


def stdlib_dir() -> Path:
    """The folder holding the pure-Python standard library of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def _skip(relative: Path) -> bool:
    if any(part in SKIP_DIRS for part in relative.parts[:-1]):
        return True
    name = relative.name
    return name in SKIP_FILES or name.startswith(SKIP_FILE_PREFIXES)


def stdlib_source_files(root: Path | None = None) -> list[Path]:
    """The standard library's ``.py`` files to read, sorted by their path relative to ``root``."""
    root = root or stdlib_dir()
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [
            d for d in subfolders if d not in SKIP_DIRS
        ]  # prune: never walk site-packages
        for name in names:
            if name.endswith(".py"):
                relative = Path(folder, name).relative_to(root)
                if not _skip(relative):
                    files.append(relative)
    return [root / rel for rel in sorted(files, key=lambda p: p.as_posix())]


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    args = ast.unparse(node.args)
    if len(args) > MAX_SIGNATURE_CHARS:
        args = args[:MAX_SIGNATURE_CHARS].rsplit(",", 1)[0] + ", ..."
    return args


def _entries_from_source(source: bytes, module: str) -> list[tuple[str, str]]:
    """(header, docstring) pairs for a module's docstring and its public classes/functions."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old sources
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    entries: list[tuple[str, str]] = []
    doc = ast.get_docstring(tree)
    if doc:
        entries.append((f"Help on module {module}:", doc))

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and _public(node.name):
                bases = ", ".join(ast.unparse(b) for b in node.bases)
                header = f"class {prefix}{node.name}" + (f"({bases})" if bases else "") + ":"
                doc = ast.get_docstring(node)
                if doc:
                    entries.append((header, doc))
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(node.name):
                doc = ast.get_docstring(node)
                if doc:
                    keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
                    entries.append((f"{keyword} {prefix}{node.name}({_signature(node)}):", doc))

    visit(tree.body, "")
    return entries


def _entries_from_c_module(name: str) -> list[tuple[str, str]]:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return []
    entries: list[tuple[str, str]] = []
    if module.__doc__:
        entries.append((f"Help on built-in module {name}:", inspect.cleandoc(module.__doc__)))
    for attr in sorted(vars(module)):
        obj = vars(module)[attr]
        if not _public(attr) or attr.startswith("__"):
            continue
        if inspect.isclass(obj) and getattr(obj, "__module__", None) == name:
            if obj.__doc__:
                entries.append((f"class {attr}:", inspect.cleandoc(obj.__doc__)))
            for method_name in sorted(vars(obj)):
                method = vars(obj)[method_name]
                doc = getattr(method, "__doc__", None)
                if _public(method_name) and callable(method) and doc:
                    entries.append((f"{attr}.{method_name}(...)", inspect.cleandoc(doc)))
        elif inspect.isbuiltin(obj) and obj.__doc__:
            entries.append((f"{attr}(...)", inspect.cleandoc(obj.__doc__)))
    return entries


def _topic_entries() -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    return [(f"Help on topic {key}:", topics[key].strip()) for key in sorted(topics)]


def _chunk(entries: list[tuple[str, str]], seen: set[str]) -> list[str]:
    """Group (header, text) entries into documents of about CHUNK_CHARS characters.

    A text already seen (an exact duplicate docstring) is skipped; a text longer than a chunk is
    split at blank lines.
    """
    documents: list[str] = []
    current: list[str] = []
    size = 0
    for header, text in entries:
        text = text.strip()
        if not text or text in seen:
            continue
        seen.add(text)
        paragraphs = text.split("\n\n")
        pieces: list[str] = []
        piece = header
        for paragraph in paragraphs:
            if len(piece) + len(paragraph) > CHUNK_CHARS and piece != header:
                pieces.append(piece)
                piece = paragraph
            else:
                piece = f"{piece}\n\n{paragraph}"
        pieces.append(piece)
        for piece in pieces:
            if size and size + len(piece) > CHUNK_CHARS:
                documents.append("\n\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + 2
    if current:
        documents.append("\n\n".join(current))
    return documents


def all_documents() -> list[str]:
    """Every document of the corpus, in the fixed order: topics, stdlib source, C modules."""
    seen: set[str] = set()
    documents = _chunk(_topic_entries(), seen)
    root = stdlib_dir()
    for path in stdlib_source_files(root):
        module = _module_name(path.relative_to(root))
        documents += _chunk(_entries_from_source(path.read_bytes(), module), seen)
    for name in C_MODULES:
        documents += _chunk(_entries_from_c_module(name), seen)
    return documents


def generate_corpus() -> Corpus:
    """Generate the corpus from the *running* Python's documentation, split by a seeded shuffle.

    Only the build calls this (about 5 s). Deterministic for a given Python version (see
    ``Corpus.fingerprint``), but each Python version gives different documents: notebooks and tests
    read the shipped file with :func:`load_corpus` instead.
    """
    documents = all_documents()
    order = list(range(len(documents)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_heldout = round(HELDOUT_FRACTION * len(documents))
    # Both splits come in the shuffled order, so the first n documents of either are a random
    # sample (notebooks take the first few hundred held-out documents).
    heldout = [documents[i] for i in order[:n_heldout]]
    train = [documents[i] for i in order[n_heldout:]]
    digest = hashlib.sha256()
    for document in documents:
        digest.update(document.encode("utf-8"))
        digest.update(b"\0")
    version = ".".join(map(str, sys.version_info[:3]))
    return Corpus(
        train=train, heldout=heldout, python_version=version, fingerprint=digest.hexdigest()[:16]
    )
