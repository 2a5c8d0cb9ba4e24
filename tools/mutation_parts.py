"""What ``make mutation`` runs (tools/mutation.py), in parts: each part is some modules and their
unit tests (``PARTS``); together the parts are exactly what pyproject.toml's ``[tool.mutmut]``
names (:func:`check_parts_cover_the_configuration`)."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut brings the toml package there
    import toml as tomllib

REPO = Path(__file__).resolve().parents[1]
PARTS: dict[str, dict[str, list[str]]] = {  # "copy": more of the book a part's tests read
    "presets": {
        "modules": ["utils/presets.py", "utils/quality.py"],
        "tests": [
            "tests/test_presets.py",
            "tests/test_gpt2_standin_budget.py",
            "tests/test_quality.py",
        ],
    },
    "evaluation": {
        "modules": ["utils/evaluation.py"],
        "tests": ["tests/test_evaluation.py"],
    },
    "t1-t2": {
        "modules": [
            "utils/exercises/__init__.py",
            "utils/exercises/_common.py",
            "utils/exercises/t1_pretrained.py",
            "utils/exercises/t2_training.py",
        ],
        "tests": ["tests/test_exercises.py", "tests/test_exercises_language.py"],
    },
    "t3": {
        "modules": [
            "utils/interventions/__init__.py",
            "utils/interventions/ablation.py",
            "utils/interventions/attribution.py",
            "utils/interventions/checks.py",
            "utils/interventions/choosing.py",
            "utils/interventions/directions.py",
            "utils/interventions/figures.py",
            "utils/interventions/statistics.py",
            "utils/interventions/steering.py",
            "utils/exercises/t3_using_features.py",
        ],
        "tests": [
            "tests/test_interventions_directions.py",
            "tests/test_interventions_choosing.py",
            "tests/test_interventions_steering.py",
            "tests/test_interventions_ablation.py",
            "tests/test_interventions_attribution.py",
            "tests/test_interventions_figures.py",
            "tests/test_interventions_statistics.py",
            "tests/test_exercises_t3.py",
            "tests/test_exercises_language.py",
        ],
    },
    "t5": {
        "modules": ["utils/exercises/t5_circuits.py"],
        "tests": ["tests/test_exercises_t5.py", "tests/test_exercises_language.py"],
    },
    "circuits": {  # build_tiny.py is the maintainer's training run, not a metric: not mutated
        "modules": [
            "utils/circuits/__init__.py",
            "utils/circuits/ablation.py",
            "utils/circuits/export.py",
            "utils/circuits/figures.py",
            "utils/circuits/graph.py",
            "utils/circuits/loading.py",
            "utils/circuits/pruning.py",
            "utils/circuits/replacement.py",
            "utils/circuits/transcoders.py",
            "utils/circuits/weights.py",
        ],
        "tests": [
            "tests/test_circuits_transcoders.py",
            "tests/test_circuits_replacement.py",
            "tests/test_circuits_graph.py",
            "tests/test_circuits_pruning.py",
            "tests/test_circuits_ablation.py",
            "tests/test_circuits_weights.py",
            "tests/test_circuits_figures.py",
            "tests/test_circuits_checkpoints.py",
            "tests/test_circuits_loading.py",
            "tests/test_circuits_hub.py",
        ],
    },
    "features": {
        "modules": [
            "utils/features/__init__.py",
            "utils/features/checks.py",
            "utils/features/logit_effects.py",
            "utils/features/prompt.py",
            "utils/features/reconstruction.py",
            "utils/features/sample.py",
            "utils/features/splicing.py",
        ],
        "tests": [
            "tests/test_features_checks.py",
            "tests/test_features_prompt.py",
            "tests/test_features_logit_effects.py",
            "tests/test_features_splicing.py",
            "tests/test_features_sample.py",
            "tests/test_features_sample_queries.py",
            "tests/test_reconstruction.py",
            "tests/test_token_concentrated.py",
            "tests/test_zero_ablation.py",
        ],
    },
    "display-plots": {
        "modules": ["utils/display.py", "utils/plots.py"],
        "tests": ["tests/test_display.py", "tests/test_plots.py"],
    },
    "training": {
        "modules": ["utils/training.py", "utils/training_config.py"],
        "tests": ["tests/test_training.py", "tests/test_training_config.py"],
    },
    "loading": {
        "modules": ["utils/environment.py", "utils/loading.py"],
        "tests": [
            "tests/test_environment.py",
            "tests/test_hub_failures.py",
            "tests/test_loading.py",
        ],
        "copy": ["Makefile", ".ci", "notebooks"],  # the shell copies, the setup cell's marker
    },
    "tiny-metrics": {  # tests/test_tiny.py builds the bundled model: too slow for each mutant
        "modules": ["utils/tiny/build/metrics.py"],
        "tests": ["tests/test_tiny_metrics.py"],
    },
    "i18n": {
        "modules": [
            "i18n/chinese.py",
            "i18n/code_identity.py",
            "i18n/issues.py",
            "i18n/records.py",
            "i18n/twins.py",
        ],
        "tests": [
            "tests/test_i18n_issues.py",
            "tests/test_i18n_records.py",
            "tests/test_i18n_code_identity.py",
            "tests/test_i18n_twins.py",
            "tests/test_translations.py",
        ],
        # the tests read the book's pages and both tables of contents
        "copy": [
            "_config.yml",
            "_toc.yml",
            "_ext",
            "zh",
            "notebooks",
            "intro.md",
            "running.md",
            "teaching.md",
            "glossary.md",
            "README.md",
            "README.zh-CN.md",
        ],
    },
    "t4": {
        "modules": [
            "utils/ground_truth/__init__.py",
            "utils/ground_truth/figures.py",
            "utils/ground_truth/metrics.py",
            "utils/ground_truth/training.py",
            "utils/exercises/t4_ground_truth.py",
        ],
        "tests": [
            "tests/test_ground_truth_metrics.py",
            "tests/test_ground_truth_training.py",
            "tests/test_ground_truth_figures.py",
            "tests/test_exercises_t4.py",
            "tests/test_exercises_language.py",
        ],
        "copy": ["benchmarks/results"],  # the gpt2-small comparison tutorial 4 reads
    },
}


def mutmut_config() -> dict:
    """pyproject.toml's ``[tool.mutmut]`` table."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]


def check_parts_cover_the_configuration() -> None:
    """The parts together are exactly pyproject.toml's [tool.mutmut] modules and tests."""
    config = mutmut_config()
    modules = {m for part in PARTS.values() for m in part["modules"]}
    configured = {
        str(p.relative_to(REPO))
        for pattern in config["only_mutate"]
        for p in REPO.glob(pattern)
        if p.suffix == ".py"
    }
    tests = {t for part in PARTS.values() for t in part["tests"]}
    if modules != configured or tests != set(config["pytest_add_cli_args_test_selection"]):
        sys.exit(
            "tools/mutation_parts.py's PARTS and pyproject.toml's [tool.mutmut] disagree: "
            f"modules {sorted(modules ^ configured)}, tests "
            f"{sorted(tests ^ set(config['pytest_add_cli_args_test_selection']))}"
        )
