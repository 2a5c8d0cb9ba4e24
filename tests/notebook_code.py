"""Reading the tutorials' code, shared by the notebook tests and the benchmark tests: a notebook's
code cells, and tutorial 2's two training configurations executed as the notebook writes them."""

from __future__ import annotations

import ast
import json

from random_models import REPO

TUTORIAL_2 = REPO / "notebooks" / "02_training_your_own_sae.ipynb"


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_sources(path) -> list[str]:
    return ["".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "code"]


def first_statement(source: str) -> str:
    return ast.get_source_segment(source, ast.parse(source).body[0])


def notebook_configs(preset_name: str, d_in: int = 128, device: str = "cpu") -> dict:
    """Execute tutorial 2's two configuration statements (Standard and TopK) for a preset."""
    from utils import training_config
    from utils.presets import get_preset

    sources = code_sources(TUTORIAL_2)
    standard = next(s for s in sources if s.startswith("cfg = "))
    topk = next(s for s in sources if s.startswith("topk_cfg = "))
    preset = get_preset(preset_name)
    namespace = {
        **vars(training_config),
        "preset": preset,
        "sizes": preset.training,
        "d_in": d_in,
        "device": device,
    }
    exec(first_statement(standard), namespace)
    exec(first_statement(topk), namespace)
    return {"standard": namespace["cfg"], "topk": namespace["topk_cfg"], "preset": preset}
