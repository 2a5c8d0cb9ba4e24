"""Tutorial 5: transcoders, the replacement model and attribution graphs, checked by ablation.

One module per job; this package hands their names on, so the notebook imports them from
``utils.circuits``:

``transcoders``
    SAELens ``Transcoder`` modules with a TopK activation, and their training:
    :func:`make_transcoder`, :func:`use_topk`, :func:`harvest_mlp_io`, :func:`train_transcoder`,
    :func:`transcoder_metrics`, :func:`token_mask`
``replacement``
    every MLP replaced by its transcoder: :func:`replacement_hooks`, :func:`mlp_errors`,
    :func:`replacement_losses` (clean / replaced / with error terms / zero-ablated)
``weights``
    meaning from the weights alone: :func:`de_embedding`, :func:`virtual_weights`,
    :func:`latent_inputs`
``graph``
    the attribution graph of a prompt on the local replacement model: :func:`build_graph`,
    :func:`edge_sum_error`
``pruning``
    influence, pruning, scores: :func:`node_influence`, :func:`prune_graph`, :func:`graph_scores`
``ablation``
    the graph against the real model: :func:`total_effects`, :func:`ablate_latents`,
    :func:`ablation_check`, :func:`agreement`, :func:`residual_share`
``figures``
    :func:`graph_figure`, :func:`ablation_figure`, :func:`training_figure`
``export``
    :func:`graph_json`, :func:`write_graph_json` (circuit-tracer's graph-file schema)

The bundled tiny model's transcoders are built by ``python -m utils.circuits.build_tiny``.
"""

from .ablation import (
    ablate_latents,
    ablation_check,
    agreement,
    pick_ablations,
    residual_share,
    total_effects,
)
from .export import graph_json, write_graph_json
from .figures import ablation_figure, graph_figure, training_figure
from .graph import TARGETS, AttributionGraph, build_graph, edge_sum_error, prompt_tokens
from .pruning import GraphScores, PrunedGraph, graph_scores, influence, node_influence, prune_graph
from .replacement import ReplacementLosses, mlp_errors, replacement_hooks, replacement_losses
from .transcoders import (
    TrainingRun,
    TranscoderMetrics,
    fvu,
    harvest_mlp_io,
    make_transcoder,
    mlp_in_hook,
    mlp_out_hook,
    token_mask,
    train_transcoder,
    transcoder_metrics,
    use_topk,
)
from .weights import de_embedding, latent_inputs, mean_scale, virtual_weights

__all__ = [
    "TARGETS",
    "AttributionGraph",
    "GraphScores",
    "PrunedGraph",
    "ReplacementLosses",
    "TrainingRun",
    "TranscoderMetrics",
    "ablate_latents",
    "ablation_check",
    "ablation_figure",
    "agreement",
    "build_graph",
    "de_embedding",
    "edge_sum_error",
    "fvu",
    "graph_figure",
    "graph_json",
    "graph_scores",
    "harvest_mlp_io",
    "influence",
    "latent_inputs",
    "make_transcoder",
    "mean_scale",
    "mlp_errors",
    "mlp_in_hook",
    "mlp_out_hook",
    "node_influence",
    "pick_ablations",
    "residual_share",
    "prompt_tokens",
    "prune_graph",
    "replacement_hooks",
    "replacement_losses",
    "token_mask",
    "total_effects",
    "train_transcoder",
    "training_figure",
    "transcoder_metrics",
    "use_topk",
    "virtual_weights",
    "write_graph_json",
]
