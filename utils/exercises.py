"""The checkers of every tutorial's exercises, one section per tutorial (a new tutorial appends
its section at the end of this file).

One convention for every ``check_*`` function:

* an **unfinished** answer -- ``None``, or a function that returns ``None`` or raises
  ``NotImplementedError`` -- prints a reminder and returns ``None``, so a notebook with its
  exercises left blank still runs top to bottom;
* a **wrong** answer raises ``AssertionError`` with a hint;
* a **right** answer prints what was checked and returns ``True`` (so a solution cell can end
  with ``assert check_...(...)``).

Use :func:`_call` to call the reader's function (it turns ``NotImplementedError`` into ``None``)
and print :data:`_NOT_DONE` for an unfinished answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sae_lens import TopKTrainingSAEConfig

from . import features as F
from .evaluation import dead_latents

_NOT_DONE = "Not answered yet: fill in the cell above and run this check again."


def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    """``fn(*args)``, or ``None`` when ``fn`` is ``None`` or raises ``NotImplementedError``."""
    if fn is None:
        return None
    try:
        return fn(*args)
    except NotImplementedError:
        return None


# =============================================================================================
# Tutorial 1: analysing a pretrained SAE
# =============================================================================================


def _random_feature_acts(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    acts = torch.randn(shape, generator=generator).relu()
    acts[acts < 0.8] = 0  # sparse, like real SAE features
    return acts


def check_l0(my_l0: Callable[[torch.Tensor], torch.Tensor] | None) -> bool | None:
    """Check ``my_l0(feature_acts [..., d_sae]) -> [...]`` (active features per token)."""
    cases = [
        _random_feature_acts((7, 37), 0),
        _random_feature_acts((2, 5, 123), 1),
        torch.zeros(3, 11),
    ]
    for acts in cases:
        answer = _call(my_l0, acts)
        if answer is None:
            print(_NOT_DONE)
            return None
        answer = torch.as_tensor(answer)
        expected = F.l0_per_token(acts)
        assert answer.shape == expected.shape, (
            f"For feature_acts of shape {tuple(acts.shape)} your function returned shape "
            f"{tuple(answer.shape)}; expected {tuple(expected.shape)} (one count per token: reduce the last dimension)."
        )
        assert torch.equal(answer.long(), expected.long()), (
            "The counts differ from the number of non-zero activations per token. "
            "Hint: compare with zero, then sum over the last dimension."
        )
    print("Correct: your L0 matches on every test case.")
    return True


def check_explained_variance(
    my_explained_variance: Callable[[torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_explained_variance(x [n, d_in], x_hat [n, d_in]) -> float``."""
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(50, 24, generator=generator) * 3 + 1
    cases = [
        (x, x + 0.5 * torch.randn(50, 24, generator=generator)),
        (x, torch.zeros_like(x)),
        (x, x.clone()),
    ]
    for x_case, x_hat in cases:
        answer = _call(my_explained_variance, x_case, x_hat)
        if answer is None:
            print(_NOT_DONE)
            return None
        answer = float(torch.as_tensor(answer))
        expected = F.reconstruction_metrics(x_case, x_hat)["explained_variance"]
        assert abs(answer - expected) < 1e-3, (
            f"Got {answer:.4f}, expected {expected:.4f}. Hint: 1 - (mean over tokens of the squared "
            "error summed over d_in) / (mean over tokens of |x - mean(x)|^2), where mean(x) is the mean "
            "activation vector over tokens."
        )
    print("Correct: your explained variance matches on every test case.")
    return True


def token_detector_scores(sample: F.FeatureSample, token: str, feature: int) -> dict[str, float]:
    """How well ``feature`` detects ``token`` in ``sample``: ``precision`` (share of the feature's
    firings that are on the token), ``recall`` (share of the token's occurrences where it fires)
    and their harmonic mean ``f1`` (0 when it never fires on the token)."""
    feature = sample.check_feature(feature)
    table = F.features_for_token(sample, token, k=sample.d_sae)
    row = table[table["feature"] == feature]
    if len(row) == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {name: float(row[name].iloc[0]) for name in ("precision", "recall", "f1")}


def pick_exercise_token(sample: F.FeatureSample, n_common: int = 50, min_chars: int = 3) -> str:
    """A common word-like token (letters only, at least ``min_chars`` of them after any leading
    space) among the ``n_common`` most frequent in ``sample`` whose best detector feature is
    cleanest (highest F1). Falls back to the most common token."""
    counts = sample.token_counts()
    words = [
        t for t in counts.index[:n_common] if t.strip().isalpha() and len(t.strip()) >= min_chars
    ]
    if not words:
        return str(counts.index[0])
    best = {t: float(F.features_for_token(sample, t, k=1)["f1"].iloc[0]) for t in words}
    return max(best, key=best.get)


def check_token_detector(
    sample: F.FeatureSample, token: str, feature: int | None, tolerance: float = 0.9
) -> bool | None:
    """Check that ``feature`` is (nearly) the best detector of ``token`` in ``sample``: its F1 score
    must be at least ``tolerance`` times the best feature's."""
    if feature is None:
        print(_NOT_DONE)
        return None
    scores = token_detector_scores(sample, token, feature)
    best = float(F.features_for_token(sample, token, k=1)["f1"].iloc[0])
    print(
        f"Feature {feature} on {token!r}: fires on {scores['recall']:.0%} of the token's occurrences, "
        f"and {scores['precision']:.0%} of the feature's firings are on it (F1 {scores['f1']:.2f}; "
        f"the best feature in this sample has F1 {best:.2f})."
    )
    assert scores["f1"] >= tolerance * best, (
        "Another feature detects this token much better. Hint: for each feature, count how often it "
        "fires on the token and how often it fires at all (sample.firing_counts)."
    )
    print("Correct: this feature is a detector for the token.")
    return True


# =============================================================================================
# Tutorial 2: training your own SAE
# =============================================================================================


def check_dead_latents(
    find_dead_latents: Callable[[np.ndarray], Any] | None, feature_density: np.ndarray
) -> bool | None:
    """Check ``find_dead_latents(feature_density [d_sae]) -> indices of the dead latents``.

    Tried on the real density and on two small made-up ones (a latent firing once in a million
    tokens is alive).
    """
    cases = [
        np.asarray(feature_density, dtype=np.float64),
        np.array([0.0, 1e-6, 0.5, 0.0, 1.0]),
        np.array([0.2, 0.0, 3e-9]),
    ]
    for density in cases:
        got = _call(find_dead_latents, density)
        if got is None:
            print(_NOT_DONE)
            return None
        expected = dead_latents(density).tolist()
        got = sorted(int(i) for i in np.asarray(torch.as_tensor(got).cpu()).reshape(-1).tolist())
        more = "..." if len(expected) > 10 or len(got) > 10 else ""
        assert got == expected, (
            f"For a density over {len(density)} latents the dead ones are {expected[:10]}{more}; your "
            f"function returned {got[:10]}{more}. Hint: return the indices (not a mask) of the latents "
            "whose density is exactly 0."
        )
    n_dead = len(dead_latents(cases[0]))
    print(f"Correct: {n_dead} of {len(cases[0])} latents never fired on the evaluation sample.")
    return True


def check_expansion_config(cfg: Any, d_in: int, expansion_factor: int, k: int) -> bool | None:
    """Check the runner config of the expansion-factor exercise: a TopK SAE, ``d_sae`` =
    ``expansion_factor * d_in``, the same ``k``. ``cfg`` is a ``LanguageModelSAERunnerConfig``."""
    if cfg is None:
        print(_NOT_DONE)
        return None
    assert isinstance(cfg.sae, TopKTrainingSAEConfig), (
        f"cfg.sae should be a TopKTrainingSAEConfig, got {type(cfg.sae).__name__}"
    )
    assert cfg.sae.d_in == d_in, (
        f"cfg.sae.d_in should be the model's d_model ({d_in}), got {cfg.sae.d_in}"
    )
    assert cfg.sae.d_sae == expansion_factor * d_in, (
        f"cfg.sae.d_sae should be {expansion_factor} x {d_in} = {expansion_factor * d_in}, got {cfg.sae.d_sae}"
    )
    assert cfg.sae.k == k, f"keep k = {k} so that only the width changes, got {cfg.sae.k}"
    print(f"Config OK: TopK, d_sae = {cfg.sae.d_sae} ({expansion_factor} x d_in), k = {k}.")
    return True


def check_ce_loss_score(
    my_ce_loss_score: Callable[[float, float, float], float] | None,
    metrics: dict[str, float],
) -> bool | None:
    """Check ``my_ce_loss_score(ce_without_sae, ce_with_sae, ce_zero_ablation) -> float``.

    Tried on made-up losses (an SAE as good as the model, one halfway, one worse than ablating)
    and on ``metrics``, the :func:`utils.evaluation.headline_metrics` of a trained SAE, whose
    ``ce_loss_score`` ``run_evals`` computed.
    """
    cases = [
        (2.0, 2.0, 6.0),
        (2.0, 4.0, 6.0),
        (3.0, 8.0, 5.0),
        (
            metrics["ce_loss_without_sae"],
            metrics["ce_loss_with_sae"],
            metrics["ce_loss_zero_ablation"],
        ),
    ]
    for without, with_sae, zero in cases:
        answer = _call(my_ce_loss_score, without, with_sae, zero)
        if answer is None:
            print(_NOT_DONE)
            return None
        answer = float(torch.as_tensor(answer))
        expected = (zero - with_sae) / (zero - without)
        assert abs(answer - expected) < 1e-4, (
            f"For CE losses {without:.3f} (model), {with_sae:.3f} (SAE spliced in) and {zero:.3f} "
            f"(zero-ablated) the score is {expected:.4f}; yours is {answer:.4f}. Hint: the share of "
            "the gap between ablating and the untouched model that the SAE closes."
        )
    print(
        f"Correct: {answer:.4f} for your SAE, as run_evals reported "
        f"({metrics['ce_loss_score']:.4f})."
    )
    return True


# =============================================================================================
# Tutorial 3: steering, ablation and attribution
# =============================================================================================


def check_steering_hook(my_steering_hook: Callable[..., Any] | None) -> bool | None:
    """Check ``my_steering_hook(direction [d], scale) -> hook``, where ``hook(acts [batch, pos, d],
    hook_point)`` returns ``acts + scale * ||acts|| * direction`` (each position's own norm)."""
    from . import interventions as I

    cases = [((2, 5, 16), 0.5, 0), ((1, 3, 7), -1.25, 1), ((3, 1, 33), 2.0, 2)]
    for shape, scale, seed in cases:
        generator = torch.Generator().manual_seed(seed)
        acts = torch.randn(shape, generator=generator) * (1 + torch.arange(shape[1]))[:, None]
        direction = I.random_unit_direction(shape[-1], seed + 10)
        hook = _call(my_steering_hook, direction, scale)
        answer = _call(hook, acts.clone(), None) if hook is not None else None
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = acts + scale * acts.norm(dim=-1, keepdim=True) * direction
        assert answer.shape == acts.shape, (
            f"For activations of shape {shape} your hook returned shape {tuple(answer.shape)}: "
            "it must return a tensor shaped like its input."
        )
        if torch.allclose(answer, acts + scale * direction, atol=1e-5):
            raise AssertionError(
                "Your hook adds scale * direction: scale it by each position's norm too "
                "(acts.norm(dim=-1, keepdim=True)), so the push is a fraction of the activation."
            )
        assert torch.allclose(answer, expected, atol=1e-4), (
            "The steered activations differ from acts + scale * ||acts|| * direction. Hint: the "
            "norm is taken over the last dimension, separately at each position."
        )
    print("Correct: your hook steers by a fraction of each position's norm, on every test case.")
    return True


@torch.no_grad()
def _ablated_sae_output(model: Any, sae: Any, tokens: torch.Tensor, feature: int) -> torch.Tensor:
    """What flows on from the SAE's hook with ``feature`` removed and the error term kept:
    ``[pos, d_in]``."""
    hook_name = F.sae_hook_name(sae)
    store: dict[str, torch.Tensor] = {}

    def remove(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        acts = acts.clone()
        acts[..., feature] = 0
        return acts

    def keep(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        store["out"] = acts.detach().clone()
        return acts

    with model.saes(saes=[sae], use_error_term=True):
        model.run_with_hooks(
            tokens,
            fwd_hooks=[
                (f"{hook_name}.hook_sae_acts_post", remove),
                (f"{hook_name}.hook_sae_output", keep),
            ],
        )
    return store["out"][0]


def check_ablated_activation(
    my_ablated_activation: Callable[..., Any] | None,
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    feature: int,
) -> bool | None:
    """Check ``my_ablated_activation(x [pos, d_in], sae, feature) -> [pos, d_in]``: the activation
    that flows on from the SAE's hook when ``feature`` is set to zero with the error term kept."""
    feature = F.check_feature_index(feature, sae.cfg.d_sae)
    tokens = tokens if tokens.ndim == 2 else tokens[None]
    x = F.hook_activations(model, tokens, F.sae_hook_name(sae))[0]
    answer = _call(my_ablated_activation, x.clone(), sae, feature)
    if answer is None:
        print(_NOT_DONE)
        return None
    answer = torch.as_tensor(answer).to(x.device, x.dtype)
    expected = _ablated_sae_output(model, sae, tokens, feature)
    assert answer.shape == expected.shape, (
        f"Your function returned shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
        "(one activation vector per position)."
    )
    with torch.no_grad():
        acts = sae.encode(x)
        acts[:, feature] = 0
        without_error = sae.decode(acts)
    scale = expected.norm(dim=-1).max().item()
    if not torch.allclose(answer, expected, atol=1e-4 * scale) and torch.allclose(
        answer, without_error, atol=1e-4 * scale
    ):
        raise AssertionError(
            "You returned the SAE's reconstruction of the ablated features: add the error term "
            "x - sae.decode(sae.encode(x)) back, as use_error_term=True does."
        )
    assert torch.allclose(answer, expected, atol=1e-4 * scale), (
        "Your activation differs from what the model sees. Hint: with the error term kept, "
        "removing a feature subtracts only its own contribution, activation * W_dec[feature]."
    )
    print(
        f"Correct: your ablated activation matches the spliced model's at all {len(x)} positions."
    )
    return True


def check_attribution(
    my_attribution: Callable[..., Any] | None,
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    target_position: int,
) -> bool | None:
    """Check ``my_attribution(model, sae, tokens [1, pos], target_position) -> [pos, d_sae]``:
    activation x gradient of log p(correct next token at target_position), SAE spliced in with
    its error term."""
    from . import interventions as I

    tokens = tokens if tokens.ndim == 2 else tokens[None]
    answer = _call(my_attribution, model, sae, tokens, target_position)
    if answer is None:
        print(_NOT_DONE)
        return None
    answer = torch.as_tensor(answer).detach().float().cpu()
    if answer.ndim == 3 and answer.shape[0] == 1:
        answer = answer[0]
    expected = I.next_token_attribution(model, sae, tokens, [target_position]).attribution[0]
    assert answer.shape == expected.shape, (
        f"Your attribution has shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
        "= [pos, d_sae], one number per feature per position."
    )
    scale = expected.abs().max().item() or 1.0
    if torch.allclose(answer, -expected, atol=1e-3 * scale) and expected.abs().max() > 0:
        raise AssertionError("Your attribution has the wrong sign: it is activation x gradient.")
    assert torch.allclose(answer, expected, atol=1e-3 * scale), (
        "Your attribution differs from activation x gradient. Hints: return the activations from "
        "the hook as a fresh leaf (acts.detach().requires_grad_(True)), keep the error term, and "
        "differentiate the log-probability (log_softmax), not the logit."
    )
    print(
        f"Correct: your attribution matches at all {expected.shape[0]} positions x "
        f"{expected.shape[1]} features."
    )
    return True


# =============================================================================================
# Tutorial 4: ground truth (synthetic data)
# =============================================================================================


def check_mcc(my_mcc: Callable[[torch.Tensor, torch.Tensor], float] | None) -> bool | None:
    """Check ``my_mcc(decoder [L, d], true_features [N, d]) -> float`` against SAELens' MCC."""
    from sae_lens.synthetic import mean_correlation_coefficient

    generator = torch.Generator().manual_seed(4)
    true = torch.randn(12, 5, generator=generator)
    permuted = -3 * true[torch.randperm(12, generator=generator)]  # same directions: MCC 1
    cases = [
        (permuted, true, "a shuffled, rescaled and sign-flipped copy of the true features"),
        (torch.randn(12, 5, generator=generator), true, "random directions"),
        (torch.randn(20, 5, generator=generator), true, "more latents than features"),
        (true[:3] + 0.3 * torch.randn(3, 5, generator=generator), true, "fewer latents"),
    ]
    for decoder, features, name in cases:
        answer = _call(my_mcc, decoder.clone(), features.clone())
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = mean_correlation_coefficient(decoder, features)
        assert abs(float(answer) - expected) < 1e-4, (
            f"For {name} your MCC is {float(answer):.4f}; expected {expected:.4f}. Hint: take the "
            "absolute cosine similarity of every (latent, feature) pair, find the one-to-one "
            "matching with the largest total (scipy.optimize.linear_sum_assignment minimises, so "
            "give it 1 - |cos|), and average the matched |cos|."
        )
    print("Correct: your MCC matches SAELens' mean_correlation_coefficient on 4 cases.")
    return True


def check_shrinkage(
    my_shrinkage: Callable[[torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_shrinkage(x [n, d], x_hat [n, d]) -> float``: mean of ``|x_hat| / |x|``."""
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(50, 8, generator=generator)
    cases = [
        (x, 0.5 * x, 0.5, "x_hat = x / 2"),
        (x, x, 1.0, "a perfect reconstruction"),
        (
            x,
            x * torch.rand(50, 1, generator=generator)
            + 0.1 * torch.randn(50, 8, generator=generator),
            None,
            "a noisy reconstruction",
        ),
    ]
    for inputs, outputs, known, name in cases:
        answer = _call(my_shrinkage, inputs.clone(), outputs.clone())
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = (outputs.norm(dim=-1) / inputs.norm(dim=-1)).mean().item()
        if known is not None:
            assert abs(expected - known) < 1e-5
        assert abs(float(answer) - expected) < 1e-4, (
            f"For {name} your shrinkage is {float(answer):.4f}; expected {expected:.4f}. Hint: the "
            "norm of each reconstruction divided by the norm of its input (one ratio per "
            "sample, over the last dimension), then the mean of the ratios."
        )
    print("Correct: your shrinkage matches on 3 cases (1.0 = no shrinkage).")
    return True


def check_absorption(
    my_absorption: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], float] | None,
) -> bool | None:
    """Check ``my_absorption(latent_fires, parent_fires, child_fires) -> float`` (boolean ``[n]``)
    against ``utils.ground_truth.absorption``."""
    from .ground_truth import absorption

    generator = torch.Generator().manual_seed(6)
    n = 400
    parent = torch.rand(n, generator=generator) < 0.5
    child = parent & (torch.rand(n, generator=generator) < 0.4)
    noise = torch.rand(n, generator=generator)
    cases = [
        (parent & ~child, "a latent silenced by every child (fully absorbed)"),
        (parent.clone(), "a latent that fires whenever the parent does"),
        (parent & (noise < torch.where(child, 0.3, 0.9)), "a partly absorbed latent"),
        (
            (parent & (noise < 0.5)) | (~parent & (noise < 0.2)),
            "a latent that also fires without the parent",
        ),
    ]
    for latent, name in cases:
        answer = _call(my_absorption, latent.clone(), parent.clone(), child.clone())
        if answer is None:
            print(_NOT_DONE)
            return None
        expected = absorption(latent, parent, child)
        assert abs(float(answer) - expected) < 1e-4, (
            f"For {name} your absorption is {float(answer):.4f}; expected {expected:.4f}. Hint: "
            "only samples where the parent is active count; compare the latent's firing rate "
            "on those with a child active to its rate on those without, as "
            "1 - rate_with_child / rate_without_child."
        )
    print("Correct: your absorption matches on 4 firing patterns.")
    return True
