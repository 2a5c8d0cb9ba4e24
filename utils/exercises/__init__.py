"""The checkers of every tutorial's exercises, one module per tutorial (``t1_pretrained``,
``t2_training``, ...; a new tutorial adds its own module and re-exports it here).

One convention for every ``check_*`` function:

* an **unfinished** answer -- ``None``, or a function that returns ``None`` or raises
  ``NotImplementedError`` -- prints a reminder and returns ``None``, so a notebook with its
  exercises left blank still runs top to bottom;
* a **wrong** answer raises ``AssertionError`` with a hint;
* a **right** answer prints what was checked and returns ``True`` (so a solution cell can end
  with ``assert check_...(...)``).

Use :func:`._common._call` to call the reader's function (it turns ``NotImplementedError`` into ``None``)
and print :func:`._common._not_done` for an unfinished answer. Every message a reader sees (printed
lines, hints, errors) is written in both languages and picked at call time with
:func:`utils.language.choose` (``choose(english, chinese)``), so the Chinese notebooks run the same
checkers and read them in Chinese.
"""

from __future__ import annotations

from ._common import _NOT_DONE, _call, _not_done
from .t1_pretrained import (
    check_explained_variance,
    check_l0,
    check_token_detector,
    pick_exercise_token,
    token_detector_scores,
)
from .t2_training import (
    check_ce_loss_score,
    check_dead_latents,
    check_expansion_config,
)
from .t3_using_features import (
    check_ablated_activation,
    check_attribution,
    check_steering_hook,
)
from .t4_ground_truth import check_absorption, check_mcc, check_shrinkage
from .t5_circuits import check_logit_edge, check_transcoder_forward, check_virtual_weight

__all__ = [
    "_NOT_DONE",
    "_not_done",
    "_call",
    "check_l0",
    "check_explained_variance",
    "token_detector_scores",
    "pick_exercise_token",
    "check_token_detector",
    "check_dead_latents",
    "check_expansion_config",
    "check_ce_loss_score",
    "check_steering_hook",
    "check_ablated_activation",
    "check_attribution",
    "check_mcc",
    "check_shrinkage",
    "check_absorption",
    "check_transcoder_forward",
    "check_virtual_weight",
    "check_logit_edge",
]
