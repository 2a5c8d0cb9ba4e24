"""Named presets: everything that differs between the full run (GPT-2 small) and the small run
(the tiny model bundled with the book) lives here, in one place.

Notebook cells never branch on the preset; they read names and numbers from it.

Choosing a preset
-----------------
1. The environment variable ``SAE_BOOK_PRESET`` wins (``gpt2-small``, ``tiny`` or ``auto``).
2. Otherwise (or with ``auto``): ``gpt2-small`` when the Hugging Face Hub answers within a couple of
   seconds and ``HF_HUB_OFFLINE`` is not set, else ``tiny``. One line is printed saying which and why.
   "The Hub" is the endpoint huggingface_hub downloads from: ``HF_ENDPOINT`` when set (a mirror,
   e.g. ``https://hf-mirror.com``), else ``https://huggingface.co`` (:func:`hub_endpoint`).

Smaller runs (for tests)
------------------------
``SAE_BOOK_SCALE`` (a number in (0, 1], unset = 1) makes the chosen preset's run smaller:
:func:`choose_preset` returns it with :func:`scale_preset` applied. Every count is multiplied by the
factor and kept at a floor that keeps the run valid:

- tutorial 2's :class:`TrainingSizes` (:func:`scale_training`: training tokens, batch and buffer
  sizes, evaluation batches and texts, warm-up steps, the dead-latent window);
- the sample of held-out texts that tutorials 1 and 3 collect (``sample_texts``, at least 64);
- tutorial 3's :class:`InterventionSizes` (:func:`scale_interventions`: contexts, random
  directions, ablated pairs, generated tokens);
- tutorial 5's :class:`CircuitSizes` (:func:`scale_circuits`: the graph's layers, the replaced
  MLPs and the faithfulness prompts).

Learning rate, L1 coefficient, k, expansion factor, context sizes, steering scales and the feature
picking rule do not change, nor do tutorial 4's synthetic sizes. The notebooks run the same cells
on a run that is merely smaller; the book's tests use it to run the tutorials on GPT-2 small's
shapes in a few minutes on a CPU (tests/test_gpt2_standin_notebooks.py). Readers never need it.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .environment import book_setting, hub_offline

PRESET_ENV_VAR = "SAE_BOOK_PRESET"
SCALE_ENV_VAR = "SAE_BOOK_SCALE"
# The smallest held-out sample a scaled run collects (texts): enough for tutorial 1's dashboard
# feature (20 firings) and tutorial 3's contexts.
MIN_SAMPLE_TEXTS = 64
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
class InterventionSizes:
    """How much tutorial 3 (steering, ablation, attribution) measures. Defaults: the tiny preset."""

    n_latents: int = 3  # latents picked to work with
    # The picking rule: density (share of tokens a feature fires on) within this range...
    min_density: float = 0.002
    max_density: float = 0.03
    # ...then the most concentrated logit effects, measured over this many top tokens.
    top_tokens: int = 10
    # c in alpha = c * ||x||; 0.1 is below the largest share of the norm a picked latent writes
    steering_scales: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
    generation_scales: tuple[float, ...] = (0.0, 0.5, 1.0)
    max_new_tokens: int = 20
    steering_contexts: int = 16  # held-out contexts the steering curves average over
    context_size: int = 64  # tokens per context for steering, ablation and attribution
    random_directions: int = 8  # directions per steering control (their spread is the point)
    ablation_contexts: int = 16  # contexts (where the feature fires) per ablated feature
    attribution_contexts: int = 20
    attribution_top: int = 20  # pairs with the largest |attribution| ablated per context
    attribution_random: int = 20  # and random active pairs
    batch_size: int = 16


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
    sweep_k: tuple[int, ...]  # the frontier sweep (TopK): past the best MCC
    sweep_l1: tuple[float, ...]  # the frontier sweep (standard SAE)


@dataclass(frozen=True)
class CircuitSizes:
    """What tutorial 5 (transcoders, attribution graphs) loads and how much it measures.

    Exactly one transcoder source is set: ``transcoder_path``, a local folder with one SAELens
    transcoder folder per layer, or ``transcoder_repo``, a Hub repository of Dunefsky et al.'s
    per-layer ``.pt`` files (``utils.circuits.loading`` reads both).
    """

    transcoder_path: Path | None = None
    transcoder_repo: str | None = None
    layers: tuple[int, ...] = (0, 1)  # the MLPs replaced by transcoders (the replacement model)
    graph_layers: tuple[int, ...] = (0, 1)  # layers whose latents are graph nodes (a subset)
    graph_positions: int | None = None  # only the last n positions get latent nodes; None: all
    faithfulness_prompts: int = 30  # prompts whose graphs are checked against real ablations
    diagnosed_prompts: int = 30  # of those prefixes, the first n rerun with parts frozen
    ablated_per_prompt: int = 10  # top latents of each graph ablated in the real model
    # held-out texts (and as many training texts) that the transcoders are scored on and the
    # prefixes drawn from, each cut to the preset's sample_context
    texts: int = 256
    faithfulness_tokens: int = 8  # tokens after BOS in each random held-out prefix checked
    # The notebook's quality claim: the share of the zero-ablation loss the transcoders recover
    # with every MLP of ``layers`` replaced is at least this (random transcoders fall far below).
    min_recovered: float = 0.9
    # Prompts in the preset's own domain whose graphs the notebook reads (the worked examples).
    worked_prompts: tuple[str, ...] = (
        "Raise a ValueError if the",
        "Open the file and return a corresponding file",
        "If the value is not an integer, raise",
    )
    # The training demonstration (the notebook then loads the full-size transcoders): one
    # layer's transcoder on this many tokens, with this width and k.
    demo_layer: int = 0
    demo_tokens: int = 204_800
    demo_d_sae: int = 1024
    demo_k: int = 16


@dataclass(frozen=True)
class Preset:
    """Everything a tutorial needs to know about the model, SAE and data it runs on.

    Exactly one of ``sae_release``/``sae_id`` (a SAELens registry entry) or ``sae_path`` (a local
    folder written by ``SAE.save_model``) is set. ``model_name`` is always set: a TransformerLens
    model name, or, when ``model_path`` (a local folder the model loads from) is set, the local
    model's name. Field comments say which tutorial reads a field.
    """

    name: str
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
    # Tutorial 1's example prompt: text from the preset's own domain, so tokens are whole words.
    prompt: str = "The capital of France is Paris"
    # For a Hub dataset: the split held-out text comes from. Training streams "train" from its
    # start, so evaluating on the start of "train" would evaluate on training documents.
    dataset_heldout_split: str = "validation"
    # Tutorial 3: sizes of the steering, ablation and attribution measurements.
    interventions: InterventionSizes = field(default_factory=InterventionSizes)
    # tutorial 4: the synthetic model with known features and its SAE runs (the last field)
    synthetic: SyntheticSizes | None = None
    # tutorial 5: the transcoders and the attribution graphs' sizes
    circuits: CircuitSizes | None = None

    @property
    def is_local(self) -> bool:
        """True when the model, SAE and data ship with the book (no network needed)."""
        return self.model_path is not None


PRESETS: dict[str, Preset] = {
    "gpt2-small": Preset(
        name="gpt2-small",
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
        interventions=InterventionSizes(
            n_latents=3,
            min_density=0.0005,  # gpt2-small-res-jb fires ~60 of 24576 features per token
            max_density=0.01,
            top_tokens=10,
            steering_scales=(0.0, 0.1, 0.25, 0.5, 1.0),
            generation_scales=(0.0, 0.5, 1.0),
            max_new_tokens=30,
            # Steering runs 35 directions x 4 steered scales through blocks 8-11 and the
            # 768 x 50,257 unembedding: 16 contexts of 64 tokens (a quarter of 32 x 128) keep
            # tutorial 3 under 15 minutes on a 2-core CPU (issue 30; the tiny preset's sizes).
            steering_contexts=16,
            context_size=64,
            random_directions=8,
            ablation_contexts=32,
            attribution_contexts=20,
            attribution_top=20,
            attribution_random=20,
            batch_size=16,
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
            sweep_k=(2, 4, 8, 16),
            sweep_l1=(0.03, 0.3, 1.0),
        ),
        circuits=CircuitSizes(
            transcoder_repo="pchlenski/gpt2-transcoders",  # Dunefsky et al., 24,576 latents
            # The MLPs replaced: layer 0 (its latents read the token embedding, the de-embedding's
            # example) and the last four, whose latents are the graph's nodes; the other MLPs stay
            # exact. Sized for a laptop CPU (benchmarks/notebook_times.py --standin 05 times the
            # notebook; the Teaching page has it): five 24,576-latent transcoders instead of 12
            # (about 150 MB each to download), graphs over the last 2 positions, 10 checked prompts.
            # Each graph node with inputs costs one backward pass through GPT-2 (42 CPU s for this
            # graph's 783 nodes on two cores), so a graph over every layer and 4 positions (3,921
            # nodes) costs minutes of CPU
            # (benchmarks/circuits_gpt2_pieces.py); on a GPU raise these for a bigger study.
            layers=(0, 8, 9, 10, 11),
            graph_layers=(8, 9, 10, 11),
            graph_positions=2,
            faithfulness_prompts=7,  # with the 3 worked prompts: 10 prompts, 100 ablated latents
            diagnosed_prompts=2,  # the reruns with parts frozen: the worked prompts and 2 more
            ablated_per_prompt=10,
            faithfulness_tokens=12,
            texts=32,  # the first 32 of the texts tutorials 1 and 3 sample
            # Not measured on the real weights (this book is built offline): a floor any useful
            # set of transcoders clears, since zeroing MLP 0 costs GPT-2 small most of its loss.
            min_recovered=0.8,
            worked_prompts=(
                "When Mary and John went to the store, John gave a drink to",
                "The Eiffel Tower is located in the city of",
                "def add(a, b):\n    return a +",
            ),
            # one GPT-2 small MLP transcoder trained as a demonstration: 16,384 tokens took 11 CPU s
            # on two cores (benchmarks/circuits_gpt2_pieces.py), so these take about 45 s
            demo_layer=0,
            demo_tokens=65_536,
            demo_d_sae=6144,
            demo_k=32,
        ),
    ),
    "tiny": Preset(
        name="tiny",
        model_name="sae-book-tiny",
        model_path=TINY_ASSETS / "model",
        analysis_hook="blocks.1.hook_resid_pre",
        training_hook="blocks.1.hook_resid_pre",
        sae_path=TINY_ASSETS / "sae",
        # Python-docs prose (a paraphrase of sorted()'s docstring, not itself in the corpus): the
        # tiny tokenizer splits it into whole words (tests/test_tiny.py checks <= 1.5 tokens/word).
        prompt="Return a new list containing the items of the iterable in sorted order",
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
        interventions=InterventionSizes(),  # the defaults are the tiny preset's sizes
        synthetic=SyntheticSizes(
            # Measured on a 2-core CPU: each SAE trains in a few seconds.
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
            sweep_k=(2, 4, 8, 16),
            sweep_l1=(0.03, 0.3, 1.0),
        ),
        circuits=CircuitSizes(
            transcoder_path=TINY_ASSETS / "transcoders",
            # Pearson's r of a sample of 30 prefixes swings by +-0.06 from draw to draw (20
            # samples); 200 of the 230 long-enough held-out texts: 0.89 +- 0.02 over 8 seeds,
            # lowest 0.87 (issue 32). The check costs ~0.25 CPU s a prompt.
            faithfulness_prompts=200,
            texts=256,  # the preset's sample_texts: 230 of them are long enough for a prefix
            # the shipped transcoders recover 94.6 % on these held-out texts (the model card's
            # figure, card.json; a test keeps this claim below it)
            min_recovered=0.94,
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


def _check_scale(scale: float) -> None:
    if not 0 < scale <= 1:
        raise ValueError(f"a scale must be in (0, 1], got {scale}")


def _shrink_count(value: int, scale: float, floor: int) -> int:
    """``value * scale``, rounded, at least ``floor`` and at most ``value``."""
    return min(value, max(floor, round(value * scale)))


def scale_training(sizes: TrainingSizes, scale: float) -> TrainingSizes:
    """``sizes`` with every count multiplied by ``scale`` (0 < scale <= 1), kept valid.

    Floors: a batch holds at least one context; a run has at least 4 steps; half of the activation
    buffer holds at least one batch (SAELens trains from half its buffer); every batch and text
    count is at least 1 (evaluation texts at least 8). Warm-up steps and the dead-latent window
    keep their share of the run's steps, and the window stays shorter than the run.
    """
    _check_scale(scale)
    if scale == 1:
        return sizes

    def shrink(value: int, floor: int = 1) -> int:
        return max(floor, round(value * scale))

    context = sizes.context_size
    batch = max(1, round(sizes.train_batch_size_tokens * scale / context)) * context
    steps = max(4, round(sizes.training_tokens * scale / batch))
    old_steps = sizes.training_tokens / sizes.train_batch_size_tokens

    def share_of_steps(value: int, floor: int = 0) -> int:
        return max(floor, round(value * steps / old_steps))

    store_prompts = shrink(sizes.store_batch_size_prompts)
    buffer_batches = max(
        shrink(sizes.n_batches_in_buffer, 2), -(-2 * batch // (store_prompts * context))
    )  # ceil: half holds a batch
    return replace(
        sizes,
        training_tokens=steps * batch,
        train_batch_size_tokens=batch,
        l1_warm_up_steps=share_of_steps(sizes.l1_warm_up_steps),
        lr_warm_up_steps=share_of_steps(sizes.lr_warm_up_steps),
        dead_feature_window=min(steps - 1, share_of_steps(sizes.dead_feature_window, 1)),
        n_batches_in_buffer=buffer_batches,
        store_batch_size_prompts=store_prompts,
        eval_batches=shrink(sizes.eval_batches),
        n_batches_for_norm_estimate=shrink(sizes.n_batches_for_norm_estimate),
        eval_texts=shrink(sizes.eval_texts, 8),
        eval_ce_batches=shrink(sizes.eval_ce_batches),
    )


def scale_interventions(sizes: InterventionSizes, scale: float) -> InterventionSizes:
    """``sizes`` with every count multiplied by ``scale`` (0 < scale <= 1), kept valid.

    Floors: 4 steering and ablation contexts, 2 attribution contexts with 5 top and 5 random
    pairs each (enough pairs for a rank correlation), 2 directions per steering control (a spread,
    not one draw), 8 generated tokens.
    The number of features, the picking rule, context size, scales and batch size do not change.
    """
    _check_scale(scale)
    floors = {
        "steering_contexts": 4,
        "ablation_contexts": 4,
        "attribution_contexts": 2,
        "attribution_top": 5,
        "attribution_random": 5,
        "random_directions": 2,
        "max_new_tokens": 8,
    }
    return replace(
        sizes,
        **{
            name: _shrink_count(getattr(sizes, name), scale, floor)
            for name, floor in floors.items()
        },
    )


def scale_circuits(sizes: CircuitSizes, scale: float) -> CircuitSizes:
    """``sizes`` for a run ``scale`` (0 < scale <= 1) times as big, kept valid.

    The graph keeps the last ``round(n * scale)`` of its ``n`` layers, at least 2 (a path from one
    layer's latents to the next); only those MLPs are replaced (``layers``), so a scaled run loads
    fewer transcoders. Faithfulness prompts shrink with a floor of 3, the prefixes rerun with parts
    frozen with a floor of 1, the latents ablated per prompt with a floor of 3, the texts with a
    floor of 16, the demonstration's tokens with a floor of 4,096, and its layer becomes the first
    kept one if it was left out. Positions and the source do not change.
    """
    _check_scale(scale)
    if scale == 1:
        return sizes
    keep = _shrink_count(len(sizes.graph_layers), scale, min(2, len(sizes.graph_layers)))
    graph_layers = tuple(sorted(sizes.graph_layers)[len(sizes.graph_layers) - keep :])
    # The demonstration trains one of the layers the scaled run loads (the notebook compares it
    # with that layer's loaded transcoder), on fewer tokens.
    demo_layer = sizes.demo_layer if sizes.demo_layer in graph_layers else graph_layers[0]
    return replace(
        sizes,
        graph_layers=graph_layers,
        layers=graph_layers,
        faithfulness_prompts=_shrink_count(sizes.faithfulness_prompts, scale, 3),
        diagnosed_prompts=_shrink_count(sizes.diagnosed_prompts, scale, 1),
        ablated_per_prompt=_shrink_count(sizes.ablated_per_prompt, scale, 3),
        texts=_shrink_count(sizes.texts, scale, 16),
        demo_layer=demo_layer,
        demo_tokens=_shrink_count(sizes.demo_tokens, scale, 4096),
    )


def scale_preset(preset: Preset, scale: float) -> Preset:
    """``preset`` with its training sizes, sample and tutorial 3's measurements scaled by ``scale``
    (see the module's docstring); ``scale`` 1 returns it unchanged."""
    _check_scale(scale)
    if scale == 1:
        return preset
    return replace(
        preset,
        training=scale_training(preset.training, scale),
        sample_texts=_shrink_count(preset.sample_texts, scale, MIN_SAMPLE_TEXTS),
        interventions=scale_interventions(preset.interventions, scale),
        circuits=preset.circuits and scale_circuits(preset.circuits, scale),
    )


def run_scale() -> float:
    """The factor in ``SAE_BOOK_SCALE`` (1 when unset); anything else raises ValueError."""
    raw = book_setting(SCALE_ENV_VAR)
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = float("nan")
    if not 0 < scale <= 1:
        raise ValueError(
            f"{SCALE_ENV_VAR}={raw!r} is not a number in (0, 1]; "
            "unset it for the preset's full sizes"
        )
    return scale


def hub_endpoint() -> str:
    """The Hub address models, SAEs and datasets are downloaded from: huggingface_hub's own
    ``ENDPOINT`` (``HF_ENDPOINT`` as it was when huggingface_hub was first imported, without a
    trailing slash; ``https://huggingface.co`` when unset), so the probe asks the host that the
    downloads will use, a mirror included."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable(url: str | None = None, timeout: float = 2.0) -> bool:
    """True when ``url`` (default :func:`hub_endpoint`) answers an HTTP request within
    ``timeout`` seconds."""
    url = url or hub_endpoint()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:
        return False


def choose_preset(name: str | None = None, *, verbose: bool = True) -> Preset:
    """Pick the preset for this run.

    ``name`` (if given) wins, then the ``SAE_BOOK_PRESET`` environment variable, then "auto":
    GPT-2 small when the Hub (:func:`hub_endpoint`, a mirror if ``HF_ENDPOINT`` names one) answers
    and ``HF_HUB_OFFLINE`` is unset, else the bundled tiny model. Prints one line saying which preset was chosen and why (unless ``verbose=False``).
    """
    requested = name or book_setting(PRESET_ENV_VAR) or "auto"
    if requested != "auto":
        preset = get_preset(requested)
        reason = f"asked for by {'the caller' if name else PRESET_ENV_VAR}"
    elif hub_offline():
        preset, reason = PRESETS["tiny"], "auto: HF_HUB_OFFLINE is set"
    elif hub_reachable(endpoint := hub_endpoint()):
        preset, reason = PRESETS["gpt2-small"], f"auto: {endpoint} is reachable"
    else:
        preset, reason = (
            PRESETS["tiny"],
            f"auto: {endpoint} did not answer within 2 s (HF_ENDPOINT sets the Hub or a mirror)",
        )
    scale = run_scale()
    if scale != 1:
        preset = scale_preset(preset, scale)
        reason += f"; run sizes scaled by {scale:g} ({SCALE_ENV_VAR})"
    if verbose:
        print(
            f"Preset: {preset.name} ({reason}). Set {PRESET_ENV_VAR}=gpt2-small|tiny to override."
        )
    return preset


def pick_device() -> str:
    """The best available torch device: ``"cuda"``, then Apple ``"mps"``, then ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
