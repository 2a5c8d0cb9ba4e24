"""Using SAE latents on the model (tutorial 3): steering along a latent's decoder direction,
ablating a latent, and attributing a prediction to every latent at every position. Vocabulary: a
*latent* is one unit of the SAE (so ``latent`` in this package's arguments and columns; SAELens'
own names, such as ``feature_acts``, keep the older usage); a *feature* is what it represents.

Everything takes the model, the SAE and tensors as arguments, works for any sizes and raises a clear
error on bad input (a latent index out of range, a non-finite steering scale, a hook the model
lacks, an empty prompt).

Shapes use these names: ``batch``/``n`` contexts, ``pos``/``ctx`` tokens per context, ``d_in`` the
SAE's input width (the model's ``d_model``), ``d_sae`` the number of latents, ``d_vocab`` the
vocabulary, ``k`` tokens kept per latent.

One module per job; this package hands their names on, so the notebook imports them all from
``utils.interventions``:

``directions``
    :func:`unit_direction`, :func:`random_unit_direction`, :func:`promoted_token_ids`,
    :func:`direction_concentration`, :func:`logit_effect_concentration`
``choosing``
    latents and contexts to work on: :func:`pick_latents`, the steering controls
    (:func:`steering_controls` -> :class:`SteeringControls`), :func:`sample_contexts`
``steering`` (the SAE detached: a plain hook adds to the model's activation)
    :func:`steering_hooks`, :func:`generate_steered`, :func:`steering_curve`,
    :func:`steering_curves` (many directions in shared passes)
``ablation`` (the SAE attached with its error term, so only the removed latent changes anything)
    :func:`ablate_latent` -> :class:`AblationEffect`
``attribution`` (gradient x activation, one backward pass) and its check against real ablations
    :func:`next_token_attribution` -> :class:`Attribution`, :func:`ablation_effects`,
    :func:`compare_attribution_with_ablation`, :func:`agreement`, :func:`top_pair_agreement`,
    :func:`attribution_regime`
``figures``
    :func:`steering_spread_figure`, :func:`steering_gain_scatter`, :func:`attribution_scatter`
    (on :func:`signed_log` axes)
``statistics``
    reading the measurements without resting a claim on one point: :func:`fit_line`,
    :func:`mean_difference`, :func:`ratio_by_regime`, :func:`agreement_by_context`
``checks``
    argument checks and the pieces the others share (:func:`check_scale`, scored positions)
"""

from .ablation import AblationEffect, ablate_latent
from .attribution import (
    Attribution,
    ablation_effects,
    agreement,
    attribution_regime,
    compare_attribution_with_ablation,
    next_token_attribution,
    top_pair_agreement,
)
from .checks import (
    check_scale,
)
from .choosing import (
    CONTROL_DIRECTIONS,
    MAX_RANDOM_DRAWS,
    MEDIAN_LATENTS,
    MIN_RANDOM_DRAWS,
    RANDOM,
    RANDOM_PICKED,
    RUNNERS_UP,
    SteeringControls,
    pick_latents,
    sample_contexts,
    steering_controls,
)
from .directions import (
    direct_logit_effects,
    direction_concentration,
    logit_effect_concentration,
    promoted_token_ids,
    random_unit_direction,
    unit_direction,
)
from .figures import (
    attribution_scatter,
    signed_log,
    steering_gain_scatter,
    steering_spread_figure,
)
from .statistics import (
    Line,
    agreement_by_context,
    fit_line,
    least_squares_slope,
    mean_difference,
    ratio_by_regime,
)
from .steering import Hook, generate_steered, steering_curve, steering_curves, steering_hooks

__all__ = [
    "CONTROL_DIRECTIONS",
    "MAX_RANDOM_DRAWS",
    "MEDIAN_LATENTS",
    "MIN_RANDOM_DRAWS",
    "RANDOM",
    "RANDOM_PICKED",
    "RUNNERS_UP",
    "AblationEffect",
    "Attribution",
    "Hook",
    "Line",
    "SteeringControls",
    "ablate_latent",
    "ablation_effects",
    "agreement",
    "agreement_by_context",
    "attribution_regime",
    "attribution_scatter",
    "check_scale",
    "compare_attribution_with_ablation",
    "direct_logit_effects",
    "direction_concentration",
    "fit_line",
    "generate_steered",
    "least_squares_slope",
    "mean_difference",
    "logit_effect_concentration",
    "next_token_attribution",
    "pick_latents",
    "promoted_token_ids",
    "random_unit_direction",
    "ratio_by_regime",
    "sample_contexts",
    "signed_log",
    "steering_controls",
    "steering_curve",
    "steering_curves",
    "steering_gain_scatter",
    "steering_hooks",
    "steering_spread_figure",
    "top_pair_agreement",
    "unit_direction",
]
