"""When a Chinese code cell counts as its English twin's: the same Python tokens, comments and blank
lines aside (:func:`code_tokens`)."""

from __future__ import annotations

import io
import re
import tokenize

_SKIPPED_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def code_tokens(source: str) -> list[tuple[str, str]]:
    """A code cell as Python tokens, comments and blank lines left out.

    Indentation counts by its structure (INDENT/DEDENT), not its text. A cell Python cannot
    tokenize (an IPython magic with an unclosed quote, say) falls back to its lines with
    ``#`` comments and blank lines removed.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        lines = [re.sub(r"\s+#.*$|^\s*#.*$", "", line).rstrip() for line in source.splitlines()]
        return [("line", line) for line in lines if line.strip()]
    out = []
    for tok in tokens:
        if tok.type in _SKIPPED_TOKENS:
            continue
        name = tokenize.tok_name[tok.type]
        text = (
            "" if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE) else tok.string
        )
        out.append((name, text))
    return out
