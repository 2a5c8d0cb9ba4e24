"""tools/mutation_summary.py's summary keeps the parts it did not run from the last summary,
unless their modules moved since. Fast: no mutant is run (an empty results folder)."""

from __future__ import annotations

import sys

from random_models import REPO

sys.path.insert(0, str(REPO / "tools"))
import mutation
import mutation_summary

HEADER = "module    mutants  not run  killed  survived  other  killed %"
PREVIOUS = f"""Part presets: 2026-12-02 23:16 UTC, commit 7181cc5, 45 s wall with 2 workers
  tests: tests/test_presets.py
{HEADER}
utils/presets.py                              292        0     289         3      0     99.0%
utils/quality.py                               17        1      15         0      1    100.0%

Part t3: 2026-12-02 23:12 UTC, commit 157f50b, 908 s wall with 2 workers
{HEADER}
utils/interventions.py                        969        0     910        59      0     93.9%

all parts run                                1278        1    1214        62      1     95.1%

Survivors in utils/presets.py:
  x_a__mutmut_1: a = 1  ->  a = 2
      -> a reason given then
  x_b__mutmut_2: b = 1  ->  b = 3
      -> NO REASON

Survivors in utils/interventions.py:
  x_c__mutmut_3: c = 1  ->  c = 2
      -> NO REASON
"""


def test_earlier_summary_reads_each_parts_rows_and_survivors():
    parts = mutation_summary.earlier_summary(PREVIOUS)
    assert sorted(parts) == ["presets", "t3"]
    quality = parts["presets"]["counts"]["utils/quality.py"]
    assert (quality["killed"], quality["survived"], quality["not checked"]) == (15, 0, 1)
    assert quality["no tests"] == 1
    assert parts["presets"]["survivors"]["utils/presets.py"][1] == "      -> a reason given then"


def test_a_part_not_run_keeps_its_block_unless_its_modules_moved(tmp_path, capsys):
    mutation_summary.summary(tmp_path, PREVIOUS)
    out = capsys.readouterr().out
    assert "Part presets: 2026-12-02 23:16 UTC" in out
    assert "(kept from the previous summary: not run again this time)" in out
    assert "Part t3" not in out  # utils/interventions.py is a package now: its block is stale
    assert "utils/interventions.py" not in out
    total = next(line for line in out.splitlines() if line.startswith("all parts run"))
    # 292 + 17 mutants, 1 not run, 289 + 15 killed, 3 survived, 1 other
    assert total.split()[3:9] == ["309", "1", "304", "3", "1", "99.0%"]
    assert "a reason given then" in out
    # a kept survivor with no reason then is asked again (today's rules and reasons file)
    assert out.count("-> NO REASON") == 1


def test_a_block_kept_twice_says_so_once(tmp_path, capsys):
    mutation_summary.summary(tmp_path, PREVIOUS)
    once = capsys.readouterr().out
    mutation_summary.summary(tmp_path, once)
    twice = capsys.readouterr().out
    line = next(x for x in twice.splitlines() if x.startswith("Part presets"))
    assert line.count("kept from the previous summary") == 1


def test_a_resumed_run_takes_each_function_with_a_mutant_not_run():
    earlier = {
        "mutants/utils/a.py.meta": {
            "utils.a.x_f__mutmut_1": 1,
            "utils.a.x_f__mutmut_2": None,
            "utils.a.x_g__mutmut_1": 0,
            "utils.a.x_g__mutmut_2": 1,
        },
        "mutants/utils/b.py.meta": {
            "utils.b.xǁKǁm__mutmut_10": None,
            "utils.b.xǁKǁm__mutmut_2": None,
        },
    }
    assert mutation.unfinished_functions(earlier) == {
        "utils.a.x_f__mutmut_*",
        "utils.b.xǁKǁm__mutmut_*",
    }
    assert mutation.unfinished_functions({"m.meta": {"utils.a.x_f__mutmut_1": 33}}) == set()


def test_a_survivors_run_also_takes_each_function_a_test_never_reached():
    earlier = {
        "mutants/utils/a.py.meta": {
            "utils.a.x_f__mutmut_1": 33,  # mutmut's "no tests"
            "utils.a.x_f__mutmut_2": 1,
            "utils.a.x_g__mutmut_1": 0,
            "utils.a.x_h__mutmut_1": None,
        },
        "mutants/utils/b.py.meta": {"utils.b.xǁKǁm__mutmut_3": 33, "utils.b.x_k__mutmut_1": 1},
    }
    assert mutation.untested_functions(earlier) == {
        "utils.a.x_f__mutmut_*",
        "utils.b.xǁKǁm__mutmut_*",
    }


def test_new_functions_are_the_mutable_ones_the_last_run_had_no_mutant_of(tmp_path, monkeypatch):
    """mutmut 3 skips decorated functions (but staticmethod/classmethod); a function that lost
    its decorator, or is new, has no mutant in the last run: those are the ones --new runs."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(
        "import torch\n"
        "def old(): return 1\n"
        "def fresh():\n    with torch.no_grad():\n        return 2\n"
        "@torch.no_grad()\ndef hidden(): return 3\n"
        "class K:\n"
        "    def method(self): return 4\n"
        "    @staticmethod\n    def static(): return 5\n"
        "    @property\n    def prop(self): return 6\n"
        "    def known(self): return 7\n"
    )
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    earlier = {
        "mutants/pkg/m.py.meta": {"pkg.m.x_old__mutmut_1": 1, "pkg.m.xǁKǁknown__mutmut_3": 0}
    }
    assert mutation.new_functions(["pkg/m.py"], earlier) == {
        "pkg.m.x_fresh__mutmut_*",
        "pkg.m.xǁKǁmethod__mutmut_*",
        "pkg.m.xǁKǁstatic__mutmut_*",
    }


def test_a_module_with_no_mutant_run_has_no_score_and_is_read_back():
    from collections import Counter

    line = mutation_summary.row("utils/m.py", Counter({"not checked": 3}))
    assert line.endswith(" -") and "0.0%" not in line
    assert mutation_summary.ROW.match(line).groups() == ("utils/m.py", "3", "3", "0", "0", "0")
    scored = mutation_summary.row("utils/m.py", Counter({"killed": 3, "survived": 1}))
    assert scored.endswith(" 75.0%") and mutation_summary.ROW.match(scored)


def test_the_rules_explain_only_the_changes_they_name():
    from mutation_summary import reason_for

    def why(old, new):
        return reason_for("m.py", f"x_f__mutmut_1: {old}  ->  {new}", {})

    bar = 'items = tqdm(items, desc="ablations", leave=False)'
    assert "progress bar" in why(bar, bar.replace("leave=False", "leave=True"))
    assert "progress bar" in why(bar, bar.replace(", leave=False", ", "))
    assert why(bar, bar.replace("(items,", "(None,")) == "NO REASON"
    read = 'meta = json.loads((sub / "cfg.json").read_text(encoding="utf-8"))'
    assert "ASCII" in why(read, read.replace('"utf-8"', '"UTF-8"'))
    assert "ASCII" in why(read, read.replace('encoding="utf-8"', "encoding=None"))
    assert why(read, read.replace("json.loads(", "(")) == "NO REASON"
    other = 'text = path.read_text(encoding="utf-8")'
    assert why(other, other.replace('"utf-8"', "None")) == "NO REASON"
    for old, new in (
        ("sae = SAE.load(path, device=device)", "sae = SAE.load(path, device=None)"),
        ("return transcoder.to(device).eval()", "return transcoder.to(None).eval()"),
        ("out = _load(path, layers, device)", "out = _load(path, layers, None)"),
        ('x = torch.load(p, map_location="cpu")', "x = torch.load(p, )"),
    ):
        assert "CPU" in why(old, new), old
    assert why("x = f(device)", "x = f(None)") == "NO REASON"
