"""Named presets: everything that differs between the full run (GPT-2 small) and the small run
(the tiny model bundled with the book) lives here, in one place.

Notebook cells never branch on the preset; they read names and numbers from it.

Choosing a preset
-----------------
1. The environment variable ``SAE_BOOK_PRESET`` wins (``gpt2-small``, ``tiny`` or ``auto``).
2. Otherwise (or with ``auto``): ``gpt2-small`` when the Hugging Face Hub answers within a couple of
   seconds and ``HF_HUB_OFFLINE`` is not set, else ``tiny``. One line is printed saying which and why.
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch

PRESET_ENV_VAR = "SAE_BOOK_PRESET"
HUB_URL = "https://huggingface.co"
TINY_ASSETS = Path(__file__).resolve().parent / "tiny" / "assets"


@dataclass(frozen=True)
class TrainingSizes:
    """How big a training run (tutorial 2) is. Token counts are in tokens, not sequences."""

    training_tokens: int
    train_batch_size_tokens: int
    context_size: int
    expansion_factor: int
    lr: float
    l1_coefficient: float
    l1_warm_up_steps: int
    lr_warm_up_steps: int
    dead_feature_window: int
    topk_k: int
    n_batches_in_buffer: int
    store_batch_size_prompts: int
    eval_batches: int
    # Batches used to estimate the activation norm for normalize_activations="expected_average_only_in"
    # (SAELens' default, 1000, would read more tokens than the tiny preset trains on).
    n_batches_for_norm_estimate: int
    # Held-out documents read for evaluating a trained SAE (all of them if the split is smaller).
    eval_texts: int
    # Batches (of store_batch_size_prompts contexts) for the CE-loss evaluation: three forward passes
    # of the whole model per batch, so fewer than eval_batches (sparsity, variance, density).
    eval_ce_batches: int


@dataclass(frozen=True)
class SyntheticSizes:
    """How big tutorial 4's synthetic model and its SAE runs are (sae_lens.synthetic).

    Sample counts are in activations (one synthetic activation vector each). The L1 coefficients do
    not transfer between sizes: they were chosen for these ``num_features``/``hidden_dim``.
    """

    num_features: int  # N true features
    hidden_dim: int  # d dimensions they live in (N > d: superposition)
    hierarchy_roots: int  # parent features (each with `hierarchy_branching` children)
    hierarchy_branching: int
    training_samples: int  # per SAE
    batch_size: int
    lr: float
    dead_feature_window: int  # steps; short, so TopK's dead-latent revival starts in the run
    eval_samples: int  # fresh activations every SAE is scored on
    l1_coefficient: float  # the standard SAE's coefficient (a sparse code)
    weak_l1_coefficient: float  # a too-weak coefficient: high EV, dense code
    k: int  # TopK / BatchTopK / Matryoshka k (the true L0 is near it)
    sweep_k: tuple[int, ...]  # the frontier sweep (TopK and BatchTopK)
    sweep_l1: tuple[float, ...]  # the frontier sweep (standard SAE)


@dataclass(frozen=True)
class Preset:
    """Everything a tutorial needs to know about the model, SAE and data it runs on.

    Exactly one of ``sae_release``/``sae_id`` (a SAELens registry entry) or ``sae_path`` (a local
    folder written by ``SAE.save_model``) is set. Likewise the model is either a TransformerLens
    model name (``model_name``) or a local folder (``model_path``).
    """

    name: str
    description: str
    model_name: str
    analysis_hook: str  # tutorial 1: the hook the pretrained SAE reads
    training_hook: str  # tutorial 2: the hook we train our own SAE on
    dataset_path: str  # a Hub dataset id, or "bundled:python-docs" for the book's own corpus
    dataset_streaming: bool
    training: TrainingSizes
    sample_texts: int  # texts sampled for feature dashboards and density histograms (tutorial 1)
    sample_context: int  # tokens per sampled text
    model_path: Path | None = None
    sae_release: str | None = None
    sae_id: str | None = None
    sae_path: Path | None = None
    prompt: str = "The capital of France is Paris"
    # For a Hub dataset: the split held-out text comes from. Training streams "train" from its
    # start, so evaluating on the start of "train" would evaluate on training documents.
    dataset_heldout_split: str = "validation"
    notes: dict = field(default_factory=dict)
    # tutorial 4: the synthetic model with known features and its SAE runs (the last field)
    synthetic: SyntheticSizes | None = None

    @property
    def is_local(self) -> bool:
        """True when the model, SAE and data ship with the book (no network needed)."""
        return self.model_path is not None


PRESETS: dict[str, Preset] = {
    "gpt2-small": Preset(
        name="gpt2-small",
        description="GPT-2 small with the published gpt2-small-res-jb SAEs (needs the Hugging Face Hub; a GPU helps)",
        model_name="gpt2-small",
        analysis_hook="blocks.8.hook_resid_pre",
        training_hook="blocks.6.hook_resid_pre",
        sae_release="gpt2-small-res-jb",
        sae_id="blocks.8.hook_resid_pre",
        dataset_path="monology/pile-uncopyrighted",
        dataset_streaming=True,
        sample_texts=512,
        sample_context=128,
        training=TrainingSizes(
            training_tokens=10_000_000,
            train_batch_size_tokens=4096,
            context_size=128,
            expansion_factor=8,
            lr=4e-4,
            l1_coefficient=5.0,
            l1_warm_up_steps=122,  # 5% of the 2441 training steps
            lr_warm_up_steps=0,
            dead_feature_window=1000,
            topk_k=32,
            n_batches_in_buffer=32,
            store_batch_size_prompts=16,
            eval_batches=50,  # 50 x 16 x 128 = 102k tokens
            n_batches_for_norm_estimate=100,
            eval_texts=1000,
            eval_ce_batches=20,
        ),
        synthetic=SyntheticSizes(
            # A GPU reader's run: twice the features and dimensions, 3x the samples. Measured on
            # a 2-core CPU (one seed, minutes per SAE there): L1 0.3 -> MCC 0.92, L1 0.03 -> EV
            # 0.99 but MCC 0.48, true L0 6.8. Seconds per SAE on a GPU.
            num_features=512,
            hidden_dim=128,
            hierarchy_roots=32,
            hierarchy_branching=4,
            training_samples=1_000_000,
            batch_size=512,
            lr=3e-3,
            dead_feature_window=100,  # of 1953 steps
            eval_samples=50_000,
            l1_coefficient=0.3,
            weak_l1_coefficient=0.03,
            k=4,
            sweep_k=(2, 4, 8),
            sweep_l1=(0.03, 0.1, 0.3, 1.0),
        ),
    ),
    "tiny": Preset(
        name="tiny",
        description="the book's bundled 2-layer model trained on Python's documentation, with its own SAE (offline, CPU)",
        model_name="sae-book-tiny",
        model_path=TINY_ASSETS / "model",
        analysis_hook="blocks.1.hook_resid_pre",
        training_hook="blocks.1.hook_resid_pre",
        sae_path=TINY_ASSETS / "sae",
        dataset_path="bundled:python-docs",
        dataset_streaming=False,
        sample_texts=256,
        sample_context=128,
        training=TrainingSizes(
            training_tokens=409_600,  # 400 steps (a whole number of progress-bar updates)
            train_batch_size_tokens=1024,
            context_size=128,
            expansion_factor=8,
            lr=3e-3,
            l1_coefficient=2.0,  # measured: benchmarks/l1_sweep.py, results/l1_sweep_tiny.csv
            l1_warm_up_steps=20,  # 5% of the 400 steps
            lr_warm_up_steps=0,
            dead_feature_window=100,  # a quarter of the run
            topk_k=32,
            n_batches_in_buffer=16,
            store_batch_size_prompts=16,
            eval_batches=50,  # 50 x 16 x 128 = 102k held-out tokens; with the CE batches, within the ~120k
            n_batches_for_norm_estimate=10,
            eval_texts=1000,
            eval_ce_batches=8,
        ),
        synthetic=SyntheticSizes(
            # Measured on a 2-core CPU (issue 15): each SAE trains in a few seconds.
            num_features=256,
            hidden_dim=64,
            hierarchy_roots=16,
            hierarchy_branching=4,
            training_samples=300_000,
            batch_size=256,
            lr=3e-3,
            dead_feature_window=100,  # a tenth of the 1171 steps
            eval_samples=20_000,
            l1_coefficient=0.3,
            weak_l1_coefficient=0.03,
            k=4,
            sweep_k=(2, 4, 8),
            sweep_l1=(0.03, 0.1, 0.3, 1.0),
        ),
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    if name not in PRESETS:
        known = ", ".join(sorted(PRESETS)) + ", auto"
        raise ValueError(
            f"Unknown preset {name!r}. Known presets: {known}. "
            f"Set {PRESET_ENV_VAR} to one of them (or leave it unset for 'auto')."
        )
    return PRESETS[name]


def hub_reachable(url: str = HUB_URL, timeout: float = 2.0) -> bool:
    """True when ``url`` answers an HTTP request within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:
        return False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def choose_preset(name: str | None = None, *, verbose: bool = True) -> Preset:
    """Pick the preset for this run.

    ``name`` (if given) wins, then the ``SAE_BOOK_PRESET`` environment variable, then "auto":
    GPT-2 small when the Hub answers and ``HF_HUB_OFFLINE`` is unset, else the bundled tiny model.
    Prints one line saying which preset was chosen and why (unless ``verbose=False``).
    """
    requested = name or os.environ.get(PRESET_ENV_VAR, "").strip() or "auto"
    if requested != "auto":
        preset = get_preset(requested)
        reason = f"asked for by {'the caller' if name else PRESET_ENV_VAR}"
    elif _truthy(os.environ.get("HF_HUB_OFFLINE")):
        preset, reason = PRESETS["tiny"], "auto: HF_HUB_OFFLINE is set"
    elif hub_reachable():
        preset, reason = PRESETS["gpt2-small"], f"auto: {HUB_URL} is reachable"
    else:
        preset, reason = PRESETS["tiny"], f"auto: {HUB_URL} did not answer within 2 s"
    if verbose:
        print(f"Preset: {preset.name} ({reason}). Set {PRESET_ENV_VAR}=gpt2-small|tiny to override.")
    return preset


def pick_device() -> str:
    """The best available torch device: ``"cuda"``, then Apple ``"mps"``, then ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
