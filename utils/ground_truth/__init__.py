"""Tutorial 4: SAEs trained on synthetic data whose true features are known (sae_lens.synthetic).

One module per job, re-exported here so that a notebook imports from ``utils.ground_truth``:

- :mod:`.training`: train an SAE on a synthetic model without SAELens' pitfalls for short runs
  (:func:`train_on_synthetic`), score it against the truth (:func:`score_sae`), the random
  baseline (:func:`random_decoder`), the hierarchy (:func:`parent_children`) and batched
  encoding (:func:`encode_in_batches`);
- :mod:`.metrics`: what SAELens does not measure: feature absorption per parent
  (:func:`absorption`, :func:`absorption_table`, :func:`absorption_outcomes`) and each true
  feature's best latent as a detector (:func:`feature_detection_table`);
- :mod:`.figures`: the tutorial's figures of those measurements, in the book's template and
  palette (:mod:`utils.plots`).
"""

from .figures import (
    absorption_distribution_figure,
    absorption_outcomes_figure,
    detection_figure,
    firing_rate_figure,
    frontier_figure,
    pair_cosine_figure,
    seed_scatter_figure,
    seed_spread_figure,
)
from .metrics import (
    CARRIED_FRACTION,
    OUTCOMES,
    absorption,
    absorption_outcomes,
    absorption_table,
    feature_detection_table,
)
from .training import (
    BASELINE_SEED_OFFSET,
    encode_in_batches,
    parent_children,
    random_decoder,
    score_sae,
    train_on_synthetic,
)

__all__ = [
    "BASELINE_SEED_OFFSET",
    "CARRIED_FRACTION",
    "OUTCOMES",
    "absorption",
    "absorption_distribution_figure",
    "absorption_outcomes",
    "absorption_outcomes_figure",
    "absorption_table",
    "detection_figure",
    "encode_in_batches",
    "feature_detection_table",
    "firing_rate_figure",
    "frontier_figure",
    "pair_cosine_figure",
    "parent_children",
    "random_decoder",
    "score_sae",
    "seed_scatter_figure",
    "seed_spread_figure",
    "train_on_synthetic",
]
