"""Measurements of the tiny model and its SAE on held-out text, shared by the build and the tests.

Token layout (the same as SAELens' ``ActivationsStore`` for a ``text`` dataset): documents are
tokenized without BOS, concatenated with a BOS token between documents, and cut into contexts of
``n_ctx`` tokens that each start with BOS. The incomplete last context is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ...evaluation import HEADLINE_METRICS, dead_fraction
from ...features import hook_activations, spliced_losses


def tokenize_documents(tokenizer, documents: Sequence[str]) -> list[list[int]]:
    """Token ids of each document, without special tokens (a fast tokenizer's batch encoding)."""
    return [list(ids) for ids in tokenizer(list(documents), add_special_tokens=False)["input_ids"]]


def pack_documents(token_docs: Iterable[Sequence[int]], bos_id: int, n_ctx: int) -> torch.Tensor:
    """Pack tokenized documents into contexts: ``[n_contexts, n_ctx]`` int64, each starting with BOS.

    Documents are separated by one BOS token; the last, incomplete context is dropped.
    """
    if n_ctx < 2:
        raise ValueError(f"n_ctx must be at least 2 (BOS plus one token), got {n_ctx}")
    contexts: list[list[int]] = []
    current = [bos_id]
    for doc in token_docs:
        if not doc:
            continue
        if len(current) == n_ctx:
            contexts.append(current)
            current = [bos_id]
        if len(current) > 1:  # separate from the previous document
            current.append(bos_id)
        start = 0
        while start < len(doc):
            if len(current) == n_ctx:
                contexts.append(current)
                current = [bos_id]
            take = n_ctx - len(current)
            current.extend(doc[start : start + take])
            start += take
    if len(current) == n_ctx:
        contexts.append(current)
    if not contexts:
        return torch.empty(0, n_ctx, dtype=torch.long)
    return torch.tensor(contexts, dtype=torch.long)


def lm_cross_entropy(model, contexts: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats) of ``model`` over all positions of ``contexts`` [n, n_ctx]."""
    with torch.no_grad():
        total, count = 0.0, 0
        for start in range(0, len(contexts), batch_size):
            batch = contexts[start : start + batch_size].to(model.cfg.device)
            loss = model(batch, return_type="loss", loss_per_token=True)
            total += loss.sum().item()
            count += loss.numel()
        return total / count


def unigram_cross_entropy(
    train_contexts: torch.Tensor, heldout_contexts: torch.Tensor, d_vocab: int
) -> float:
    """Cross-entropy (nats) of the add-one-smoothed unigram distribution of the training targets,
    on the held-out targets (every token after the first of each context)."""
    counts = torch.bincount(train_contexts[:, 1:].flatten(), minlength=d_vocab).double() + 1.0
    log_probs = (counts / counts.sum()).log()
    return -log_probs[heldout_contexts[:, 1:].flatten()].mean().item()


def uniform_cross_entropy(d_vocab: int) -> float:
    """Cross-entropy (nats) of guessing uniformly over the vocabulary: ln(d_vocab)."""
    return math.log(d_vocab)


def ce_loss_recovered(model, sae, contexts: torch.Tensor, batch_size: int = 64) -> dict[str, float]:
    """Cross-entropy with the SAE spliced in, against zero- and mean-ablation baselines, on packed
    ``contexts`` [n, n_ctx]: :func:`utils.features.spliced_losses` with every non-BOS token counted
    (a BOS token starts each context and separates documents), and SAELens' zero-ablation (every
    position, BOS included). The mean is taken over the non-BOS positions of ``contexts``
    themselves. A score is ``(ce_ablated - ce_with_sae) / (ce_ablated - ce_clean)``
    (:func:`utils.features.loss_recovered`): 1 means the SAE loses nothing.
    """
    counted = contexts != model.tokenizer.bos_token_id
    losses = spliced_losses(
        model, sae, contexts, counted, batch_size=batch_size, zero_ablate_all=True, progress=False
    )
    return {
        "ce_clean": losses.original,
        "ce_with_sae": losses.sae,
        "ce_zero_ablation": losses.zero_ablated,
        "ce_mean_ablation": losses.mean_ablated,
        "ce_loss_recovered_zero_ablation": losses.recovered_vs_zero,
        "ce_loss_recovered_mean_ablation": losses.recovered_vs_mean,
        "tokens": losses.n_tokens,
    }


def sae_lens_metrics(
    model,
    sae,
    documents: Sequence[str],
    batch_prompts: int = 32,
    n_sparsity_batches: int | None = None,
    n_reconstruction_batches: int = 10,
) -> dict[str, Any]:
    """SAELens' own evals (``sae_lens.evals.run_evals``) of ``sae`` on ``documents``.

    Sparsity, explained variance and feature density use ``n_sparsity_batches`` batches of
    ``batch_prompts`` contexts (default: every full batch of the documents, one pass); CE loss and KL
    use ``n_reconstruction_batches`` batches (0 skips them). BOS tokens are excluded, as SAELens
    does by default.
    Returns explained variance, L0, dead fraction (latents that never fire on the sample), CE loss
    score (against zero-ablation) and the token counts.
    """
    from datasets import Dataset
    from sae_lens import ActivationsStore
    from sae_lens.evals import EvalConfig, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler

    dataset = Dataset.from_dict({"text": list(documents)})
    n_ctx = sae.cfg.metadata.context_size

    def store() -> ActivationsStore:
        return ActivationsStore.from_sae(
            model, sae, dataset=dataset, streaming=False, context_size=n_ctx,
            store_batch_size_prompts=batch_prompts, device=model.cfg.device,
        )  # fmt: skip

    if n_sparsity_batches is None:
        tokens = tokenize_documents(model.tokenizer, documents)
        n_contexts = len(pack_documents(tokens, model.tokenizer.bos_token_id, n_ctx))
        n_sparsity_batches = max(1, n_contexts // batch_prompts)
    sparsity_cfg = EvalConfig(
        batch_size_prompts=batch_prompts,
        n_eval_sparsity_variance_batches=n_sparsity_batches,
        compute_sparsity_metrics=True,
        compute_variance_metrics=True,
        compute_featurewise_density_statistics=True,
    )
    metrics, features = run_evals(sae, store(), model, ActivationScaler(), sparsity_cfg)
    density = torch.tensor(features["feature_density"])
    result: dict[str, Any] = {
        "explained_variance": metrics["reconstruction_quality"]["explained_variance"],
        "mse": metrics["reconstruction_quality"]["mse"],
        "l0": metrics["sparsity"]["l0"],
        "dead_fraction": dead_fraction(density),
        "dense_fraction": (density > 0.1).float().mean().item(),
        "tokens_sparsity_variance": n_sparsity_batches * batch_prompts * n_ctx,
    }
    if n_reconstruction_batches > 0:
        recon_cfg = EvalConfig(
            batch_size_prompts=batch_prompts,
            n_eval_reconstruction_batches=n_reconstruction_batches,
            compute_ce_loss=True,
            compute_kl=True,
        )
        recon, _ = run_evals(sae, store(), model, ActivationScaler(), recon_cfg)
        # The CE numbers under the names utils.evaluation.headline_metrics gives them.
        result |= {
            name: float(recon[group][key])
            for group, key, name in HEADLINE_METRICS
            if group == "model_performance_preservation"
        }
        result |= {
            "kl_div_score": recon["model_behavior_preservation"]["kl_div_score"],
            "tokens_reconstruction": n_reconstruction_batches * batch_prompts * n_ctx,
        }
    result["feature_density"] = density
    return result


def top_activations(model, sae, contexts: torch.Tensor, k: int = 30, batch_size: int = 64):
    """For every latent, its ``k`` largest activations on ``contexts`` and where they occur.

    Returns ``(values [d_sae, k], flat_positions [d_sae, k])``; a flat position ``p`` is context
    ``p // n_ctx``, token ``p % n_ctx``. BOS positions are skipped.
    """
    with torch.no_grad():
        hook = sae.cfg.metadata.hook_name
        bos = model.tokenizer.bos_token_id
        n_ctx = contexts.shape[1]
        best_v = torch.full((sae.cfg.d_sae, k), -1.0)
        best_p = torch.zeros((sae.cfg.d_sae, k), dtype=torch.long)
        for start in range(0, len(contexts), batch_size):
            batch = contexts[start : start + batch_size].to(model.cfg.device)
            acts = (
                sae.encode(hook_activations(model, batch, hook)).float().cpu()
            )  # [b, n_ctx, d_sae]
            acts[(batch == bos).cpu()] = 0.0
            flat = acts.reshape(-1, sae.cfg.d_sae).T  # [d_sae, b*n_ctx]
            positions = torch.arange(flat.shape[1]) + start * n_ctx
            values = torch.cat([best_v, flat], dim=1)
            where = torch.cat([best_p, positions.expand(sae.cfg.d_sae, -1)], dim=1)
            top = values.topk(k, dim=1)
            best_v, best_p = top.values, where.gather(1, top.indices)
        return best_v, best_p
