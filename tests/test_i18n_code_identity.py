"""i18n/code_identity.py: a Chinese code cell counts as its English twin's when their Python tokens
agree, comments and blank lines aside (CONTRIBUTING.md, "Translating")."""

from __future__ import annotations

from i18n.code_identity import code_tokens


def test_tokens_leave_out_comments_and_blank_lines_and_keep_indentation_as_structure():
    source = "if x:\n    y = 1  # a comment\n\n# a comment line\nz\n"
    assert code_tokens(source) == [
        ("NAME", "if"),
        ("NAME", "x"),
        ("OP", ":"),
        ("NEWLINE", ""),
        ("INDENT", ""),
        ("NAME", "y"),
        ("OP", "="),
        ("NUMBER", "1"),
        ("NEWLINE", ""),
        ("DEDENT", ""),
        ("NAME", "z"),
        ("NEWLINE", ""),
    ]
    # comments translated, blank lines added, two-space indentation: the same cell
    chinese = "# 一个注释\nif x:\n  y = 1  # 注释\n\n\nz  # 结束\n"
    assert code_tokens(chinese) == code_tokens(source)


def test_a_changed_string_or_name_is_different_code():
    assert code_tokens('print("layer")\n') != code_tokens('print("层")\n')
    assert code_tokens("x = 1\n") != code_tokens("y = 1\n")
    # a line moved into the block is a different structure
    assert code_tokens("if a:\n    b\nc\n") != code_tokens("if a:\n    b\n    c\n")


def test_a_cell_python_cannot_tokenize_falls_back_to_its_lines_without_comments():
    source = "x = f(1,  # note\n\n   # only a comment\n  2\n"  # the bracket is never closed
    assert code_tokens(source) == [("line", "x = f(1,"), ("line", "  2")]
    assert code_tokens("x = f(1,  # 注释\n  2\n") == code_tokens(source)
    assert code_tokens("x = f(1,\n  3\n") != code_tokens(source)
    # an indentation Python rejects
    assert code_tokens("if a:\n    b\n  c\n") == [
        ("line", "if a:"),
        ("line", "    b"),
        ("line", "  c"),
    ]
