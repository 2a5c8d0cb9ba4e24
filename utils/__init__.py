"""Helpers for the SAE tutorial book: presets, loading, feature tables, plots and displays.

Import the submodules you need, e.g. ``from utils.presets import choose_preset``.
"""

from .presets import PRESETS, Preset, choose_preset, get_preset, pick_device

__all__ = ["PRESETS", "Preset", "choose_preset", "get_preset", "pick_device"]
