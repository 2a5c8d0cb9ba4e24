"""Rebuilding the bundled tiny model, its tokenizer and its SAE: ``python -m utils.tiny.build``
(``make tiny-model``). Nothing here is imported by the notebooks, which load the built files with
:mod:`utils.tiny`.

Seeded, CPU only, no network, reproducible: a second build on the same machine, Python and library
versions wrote bit-identical tokenizer, SAE and model weights. About 11 minutes on two CPU cores
(10.6 min measured, with light other load; ``card.json`` records each build's timings). Steps:

1. the corpus (:mod:`utils.tiny.corpus`), generated from the running Python's documentation and
   written to ``assets/corpus.json.gz`` (the file every notebook reads), and a 4096-token
   byte-level BPE trained on its training split;
2. a 2-layer TransformerLens model (d_model 128) trained with AdamW (warm-up + cosine) on it,
   evaluated on the held-out split against unigram and uniform baselines;
3. a standard (ReLU + L1) SAE with 8x expansion trained with SAELens'
   ``LanguageModelSAETrainingRunner`` on ``blocks.1.hook_resid_pre`` of the saved (fp16-rounded) model,
   evaluated with ``sae_lens.evals`` and a mean-ablation baseline;
4. ``assets/card.json`` with the metrics, sizes, seeds and versions, and three latents named from
   their top-activating held-out tokens.

Everything is written to a temporary folder next to ``assets/`` and swapped in at the end, so a
failed or interrupted build leaves the previous assets in place.

One module per step: ``settings`` (sizes, seeds, hyperparameters), ``corpus`` (generating the
corpus), ``language_model`` (tokenizer and model), ``sae`` (the SAE and its named latents),
``metrics`` (the measurements of the card, shared with ``tests/test_tiny.py``) and ``pipeline``
(:func:`pipeline.build`, the steps in order, and the command line). A new artefact adds its step
to ``pipeline.build`` and its files to ``utils.tiny.REQUIRED_FILES``.
"""
