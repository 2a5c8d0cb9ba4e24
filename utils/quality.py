"""Quality claims in the notebooks: asserts that hold for *trained* weights only.

A notebook asserts two kinds of things. Facts that hold for any model (shapes, orderings that are
mathematically forced) are plain ``assert`` statements. Claims about the quality of trained weights
(explained variance above a level, an SAE beating ablation, a steered feature beating a random
direction) go through :func:`assert_quality`, the one visible, uniform mark for them.

By default a failed quality claim raises :class:`QualityCheckError` (an ``AssertionError``), like a
plain assert. With the environment variable ``SAE_BOOK_QUALITY_CHECKS=warn`` it prints one line
starting with ``QUALITY_PREFIX`` instead and the notebook goes on: the book's tests run the
``gpt2-small`` preset on stand-in (random) weights that way, and report which claims they tolerated.
"""

from __future__ import annotations

from .environment import book_setting

QUALITY_ENV_VAR = "SAE_BOOK_QUALITY_CHECKS"
QUALITY_MODES = ("raise", "warn")
QUALITY_PREFIX = "Quality check not met (tolerated):"


class QualityCheckError(AssertionError):
    """A claim about trained weights did not hold."""


def quality_mode() -> str:
    """``"raise"`` (the default) or ``"warn"``, from ``SAE_BOOK_QUALITY_CHECKS``."""
    mode = book_setting(QUALITY_ENV_VAR) or "raise"
    if mode not in QUALITY_MODES:
        raise ValueError(
            f"{QUALITY_ENV_VAR}={mode!r} is not a mode; use one of {list(QUALITY_MODES)} "
            "(or leave it unset for 'raise')"
        )
    return mode


def assert_quality(condition: object, claim: str) -> None:
    """Assert ``condition``, a claim that holds for trained weights; ``claim`` says it in words.

    Put the measured number in ``claim`` (for example ``f"explained variance {ev:.2f} >= 0.7"``), so
    the message says what was expected and what was found.
    """
    if bool(condition):
        return
    if quality_mode() == "warn":
        print(f"{QUALITY_PREFIX} {claim}")
        return
    raise QualityCheckError(f"Quality claim failed: {claim}")
