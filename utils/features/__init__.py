"""Feature analysis for a SAELens SAE attached to a TransformerLens model.

Everything here takes tensors, strings, a model and an SAE as arguments (no globals), works for
any sizes (nothing assumes GPT-2's 768 or 24576) and raises a clear error on bad input.

Shapes use these names: ``pos`` tokens in one prompt, ``d_in`` the SAE's input width (the model's
``d_model`` for residual-stream SAEs), ``d_sae`` the number of SAE features (latents),
``n_texts``/``ctx`` the texts and tokens per text of a dataset sample, ``d_vocab`` the vocabulary.

One module per job; this package hands their names on, so notebooks import them all from
``utils.features``:

``checks``
    the hook an SAE reads and argument checks: :func:`sae_hook_name`, :func:`hook_layer` (the block
    a hook belongs to), :func:`check_feature_index`, :func:`check_prompt`, ...
``prompt``
    one prompt: :func:`hook_activations` (the model run up to a hook), :func:`encode_prompt`,
    :func:`l0_per_token`, :func:`top_features_per_token`
``reconstruction``
    how well an SAE reconstructs activations, the book's one implementation of MSE, cosine and the
    three explained variances: :class:`ReconstructionSums`, :func:`reconstruction_metrics`
``sample``
    the feature-sample store, a sample of a dataset streamed in batches (never a dense
    ``[tokens, d_sae]`` matrix): :func:`collect_feature_stats` -> :class:`FeatureSample`, then
    :func:`top_activating_contexts`, :func:`feature_top_tokens`, :func:`features_for_token`,
    :func:`token_concentrated_features`, :func:`choose_feature`
``logit_effects``
    a direction's effect on the output through the unembedding: :func:`direct_logit_effects`,
    :func:`feature_logit_effects` (the tokens a feature promotes and suppresses)
``splicing``
    the SAE inside the model: :func:`splice_losses` (next-token loss: original, SAE spliced in,
    zero- and mean-ablated, on texts), :func:`spliced_losses` (the same on tokens already laid
    out, the tiny model's packed contexts included) and :func:`loss_recovered` (the book's one
    "CE loss recovered")
"""

from .checks import (
    check_feature_index,
    check_hook_name,
    check_prompt,
    hook_layer,
    resid_pre_layer,
    sae_hook_name,
    sae_prepend_bos,
)
from .logit_effects import direct_logit_effects, feature_logit_effects, final_norm_direction
from .prompt import (
    PromptFeatures,
    encode_prompt,
    hook_activations,
    l0_per_token,
    top_features_per_token,
)
from .reconstruction import ReconstructionSums, reconstruction_metrics
from .sample import (
    FeatureSample,
    choose_feature,
    collect_feature_stats,
    feature_top_tokens,
    features_for_token,
    token_concentrated_features,
    tokenize_texts,
    top_activating_contexts,
    vocabulary_strings,
)
from .sample import (
    _tokenize_for_sae as _tokenize_for_sae,  # tests/test_zero_ablation.py uses it
)
from .splicing import SpliceLosses, loss_recovered, splice_losses, spliced_losses

__all__ = [
    "FeatureSample",
    "PromptFeatures",
    "ReconstructionSums",
    "SpliceLosses",
    "check_feature_index",
    "check_hook_name",
    "check_prompt",
    "choose_feature",
    "collect_feature_stats",
    "direct_logit_effects",
    "encode_prompt",
    "feature_logit_effects",
    "feature_top_tokens",
    "features_for_token",
    "final_norm_direction",
    "hook_activations",
    "hook_layer",
    "l0_per_token",
    "loss_recovered",
    "reconstruction_metrics",
    "sae_hook_name",
    "resid_pre_layer",
    "sae_prepend_bos",
    "splice_losses",
    "spliced_losses",
    "token_concentrated_features",
    "tokenize_texts",
    "top_activating_contexts",
    "top_features_per_token",
    "vocabulary_strings",
]
