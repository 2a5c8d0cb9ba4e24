"""What counts as Chinese text, the one rule for the whole book (the translation tools, the site's
search dictionary, the tests of both editions).

:data:`CHINESE_CHARACTER` matches one Chinese character: the CJK Unified Ideographs (U+4E00 to
U+9FFF), their Extension A (U+3400 to U+4DBF) and the Compatibility Ideographs (U+F900 to U+FAFF).
:data:`CHINESE_PUNCTUATION` matches Chinese punctuation and full-width forms (U+3000 to U+303F,
U+FF00 to U+FFEF): not characters, but just as out of place in an English formula.
"""

from __future__ import annotations

import re

CHINESE_CHARACTER = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CHINESE_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff00-\uffef]")


def has_chinese(text: str, punctuation: bool = False) -> bool:
    """Whether ``text`` holds a Chinese character (with ``punctuation``: or Chinese punctuation)."""
    if CHINESE_CHARACTER.search(text):
        return True
    return punctuation and CHINESE_PUNCTUATION.search(text) is not None
