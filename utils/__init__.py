"""Helpers for the SAE tutorial book: presets, loading, feature tables, plots and displays.

Import the submodules you need, e.g. ``from utils.presets import choose_preset``.

Which tutorial uses what (each module's docstring says more):

=====================================  ============================================================
every tutorial                         ``presets`` (model, SAE, data and sizes per preset),
                                       ``loading``, ``plots`` and ``display`` (every figure and
                                       HTML view), ``quality`` (claims for trained weights),
                                       ``language`` (which edition runs), ``environment`` (the
                                       environment variables, read one way), ``exercises/`` (one
                                       checker module per tutorial)
1 analysing a pretrained SAE           ``features/`` (activations, the feature sample, logit
                                       effects, reconstruction metrics, the SAE spliced in),
                                       ``evaluation`` (the three explained variances, run_evals)
2 training your own SAE                ``training_config``, ``training``, ``evaluation``
3 using SAE features                   ``interventions/`` (choosing latents, steering, ablation,
                                       attribution, their figures), on ``features/``
4 ground truth with synthetic data     ``ground_truth/``
5 transcoders and attribution graphs   ``circuits/``
the tiny preset                        ``tiny`` (loads the bundled model; ``tiny/build/`` builds it)
the Teaching page                      ``timings`` (the notebooks' measured run times)
=====================================  ============================================================
"""

from .presets import PRESETS, Preset, choose_preset, get_preset, pick_device

__all__ = ["PRESETS", "Preset", "choose_preset", "get_preset", "pick_device"]
