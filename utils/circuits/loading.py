"""The preset's transcoders, one per MLP layer, as SAELens ``Transcoder`` objects (tutorial 5).

:func:`load_transcoders` returns ``{layer: Transcoder}`` for either preset, so notebook cells do not
care where the transcoders came from:

- ``tiny``: the transcoders that ship with the bundled model, one folder per layer under
  ``preset.circuits.transcoder_path``, each written by SAELens' ``save_model`` (``cfg.json`` +
  ``sae_weights.safetensors``) and read back with ``SAE.load_from_disk``. A TopK transcoder records
  ``activation_fn="topk"`` and its ``k`` in ``cfg.metadata`` and gets its TopK back on loading.
- ``gpt2-small``: Dunefsky, Chlenski & Nanda's GPT-2 small MLP transcoders, downloaded from the
  Hugging Face Hub (``huggingface_hub.hf_hub_download``: ``HF_ENDPOINT``, ``HF_HOME`` and
  ``HF_HUB_OFFLINE`` are honoured; a failed download says how to switch to the offline preset) and
  converted into SAELens' ``Transcoder``.

What was verified about the GPT-2 small transcoders, and where
-------------------------------------------------------------
Read from the authors' code (github.com/jacobdunefsky/transcoder_circuits: ``setup.sh``,
``walkthrough.ipynb``, ``train_transcoder.py``, ``sae_training/sparse_autoencoder.py``,
``sae_training/config.py``) and from later projects that load the same files (Philippe Chlenski's
training scripts, adapters that pin ``pchlenski/gpt2-transcoders``):

- Repository ``pchlenski/gpt2-transcoders`` (a model repo); one file per layer 0..11 named
  ``final_sparse_autoencoder_gpt2-small_blocks.{L}.ln2.hook_normalized_24576.pt`` (the authors'
  ``"final_" + get_name() + ".pt"``), beside ``..._log_feature_sparsity.pt`` files. ``setup.sh``
  downloads ``*.pt`` with ``snapshot_download``.
- Format: ``torch.save({"cfg": cfg, "state_dict": model.state_dict()})`` where ``cfg`` is a pickled
  ``sae_training.config.LanguageModelSAERunnerConfig`` (a dataclass of the authors' package, not
  installable here: its ``__post_init__`` turns ``device`` into a ``torch.device``). Its fields
  include ``hook_point="blocks.{L}.ln2.hook_normalized"``, ``out_hook_point="blocks.{L}.hook_mlp_out"``,
  ``is_transcoder=True``, ``d_in=768``, ``d_out=768``, ``d_sae=24576`` (expansion factor 32),
  ``model_name="gpt2-small"``.
- Tensors: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_out]``, ``b_dec [d_in]``,
  ``b_dec_out [d_out]``. Forward (``SparseAutoencoder.forward`` with ``is_transcoder``)::

      acts = ReLU((x - b_dec) @ W_enc + b_enc)
      out  = acts @ W_dec + b_dec_out

  ``b_dec`` is subtracted from the *input*; the output bias is ``b_dec_out``.
- Hooks: input ``blocks.L.ln2.hook_normalized``, output ``blocks.L.hook_mlp_out``. The model was
  ``HookedTransformer.from_pretrained("gpt2-small")`` (``sae_training/utils.py``), i.e. with
  TransformerLens' default weight processing. In TransformerLens (checked in 3.9's
  ``components/layer_norm.py`` and ``layer_norm_pre.py``) ``ln2.hook_normalized`` is the centred and
  scaled residual stream *before* LayerNorm's weight and bias, with ``fold_ln`` or without, and
  centring the writing weights does not change it (LayerNorm removes the mean). Of the processing
  options only ``center_writing_weights`` changes ``hook_mlp_out`` (it removes the output's mean
  over ``d_model``, which every later LayerNorm removes anyway), so the converted transcoders ask
  for ``{"center_writing_weights": True}``, as SAELens' registry asks for gpt2-small-res-jb.

The conversion
--------------
SAELens' ``Transcoder`` has no input bias (``apply_b_dec_to_input`` must be ``False``), so the
input bias is folded into the encoder bias: ``b_enc' = b_enc - b_dec @ W_enc``, and SAELens'
``b_dec`` (its output bias) is ``b_dec_out``. The forward pass is the same function (up to float
rounding). The activation is ReLU (SAELens' default); ``cfg.metadata`` records
``hook_name``/``hook_name_out`` (which ``HookedSAETransformer.add_sae`` reads to splice a transcoder
in), ``model_name``, ``model_from_pretrained_kwargs``, ``activation_fn="relu"`` and where the file
came from. A file without one of the five tensors, with a tensor of the wrong shape, or whose cfg
names other hooks raises :class:`TranscoderFileError` naming the file, the tensor and what was
expected.

Reading the file runs nothing from it: ``torch.load(weights_only=True)``, with each class the
checkpoint names outside torch's allow-list (the authors' config class) replaced by an inert
record that only keeps its attributes.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..loading import _KWARGS_WARNING, _from_the_hub
from ..presets import Preset

TRANSCODER_FILE = "final_sparse_autoencoder_gpt2-small_blocks.{layer}.ln2.hook_normalized_24576.pt"
# The input and output hooks of a layer-L MLP transcoder (TransformerLens names).
INPUT_HOOK = "blocks.{layer}.ln2.hook_normalized"
OUTPUT_HOOK = "blocks.{layer}.hook_mlp_out"
# What the Dunefsky et al. transcoders need from the model's weight processing (module docstring).
DUNEFSKY_MODEL_KWARGS = {"center_writing_weights": True}
DUNEFSKY_LAYERS = range(12)  # one file per GPT-2 small layer
# name -> (its shape in terms of d_in, d_sae, d_out)
DUNEFSKY_TENSORS = {
    "W_enc": ("d_in", "d_sae"),
    "b_enc": ("d_sae",),
    "W_dec": ("d_sae", "d_out"),
    "b_dec": ("d_in",),
    "b_dec_out": ("d_out",),
}


class TranscoderFileError(ValueError):
    """A transcoder file lacks a tensor, has one of the wrong shape, or names other hooks."""


class PickledRecord:
    """What a class a checkpoint names, but torch does not allow, becomes on loading: an object that
    keeps the attributes and arguments it was pickled with and runs nothing."""

    def __new__(cls, *args: Any, **kwargs: Any):
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.pickled_args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots), as pickle's BUILD
            state, slots = state
            self.__dict__.update(slots or {})
        if isinstance(state, dict):
            self.__dict__.update(state)


def read_checkpoint(path: Path | str) -> Any:
    """``torch.load(path)`` with ``weights_only=True`` and every foreign class in it read as a
    :class:`PickledRecord` (its attributes in ``vars(record)``), on the CPU."""
    path = str(path)
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    records = [(type(name.rsplit(".", 1)[-1], (PickledRecord,), {}), name) for name in names]
    with torch.serialization.safe_globals(records):
        return torch.load(path, map_location="cpu", weights_only=True)


def _layer_of(hook: str | None) -> int | None:
    match = re.fullmatch(r"blocks\.(\d+)\..+", hook or "")
    return int(match.group(1)) if match else None


def transcoder_from_dunefsky(
    checkpoint: Any, layer: int, source: str = "", device: str = "cpu"
) -> Any:
    """A SAELens ``Transcoder`` from a Dunefsky et al. checkpoint (``{"cfg": ..., "state_dict":
    {...}}``, as :func:`read_checkpoint` returns it) for MLP layer ``layer``.

    ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_out]``; the input bias ``b_dec`` is folded into the
    encoder bias and ``b_dec_out`` becomes the output bias (module docstring). ``source`` (the file
    or repository path) is named in errors and recorded in ``cfg.metadata.source``. Raises
    :class:`TranscoderFileError` on a missing tensor, a wrong shape or other hooks in the cfg.
    """
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    where = source or "the transcoder checkpoint"
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise TranscoderFileError(
            f"{where} is not a Dunefsky et al. transcoder checkpoint: expected a dict with "
            f"'cfg' and 'state_dict', found {found}"
        )
    state = checkpoint["state_dict"]
    raw_cfg = checkpoint.get("cfg")  # a PickledRecord (the authors' config class), or a dict
    cfg = raw_cfg if isinstance(raw_cfg, dict) else dict(getattr(raw_cfg, "__dict__", {}))
    expected_hooks = {
        "hook_point": INPUT_HOOK.format(layer=layer),
        "out_hook_point": OUTPUT_HOOK.format(layer=layer),
    }
    for field_name, hook in expected_hooks.items():
        if field_name in cfg and cfg[field_name] != hook:
            raise TranscoderFileError(
                f"{where} is not the layer-{layer} MLP transcoder: its cfg has "
                f"{field_name}={cfg[field_name]!r}, expected {hook!r}"
            )
    missing = [name for name in DUNEFSKY_TENSORS if name not in state]
    if missing:
        raise TranscoderFileError(
            f"{where} lacks the tensor(s) {missing}: a transcoder checkpoint holds "
            f"{list(DUNEFSKY_TENSORS)} (found {sorted(state)})"
        )
    w_enc = state["W_enc"]
    if w_enc.ndim != 2:
        raise TranscoderFileError(
            f"{where}: W_enc must be [d_in, d_sae], got shape {tuple(w_enc.shape)}"
        )
    sizes = {"d_in": w_enc.shape[0], "d_sae": w_enc.shape[1]}
    for name, size in sizes.items():
        if isinstance(cfg.get(name), int) and cfg[name] != size:
            raise TranscoderFileError(
                f"{where}: its cfg says {name}={cfg[name]} but its tensors give {name}={size}"
            )
    # the output width: the cfg's when it says, else the decoder's
    d_out = cfg.get("d_out")
    sizes["d_out"] = d_out if isinstance(d_out, int) else state["W_dec"].shape[-1]
    for name, dims in DUNEFSKY_TENSORS.items():
        want = tuple(sizes[dim] for dim in dims)
        if tuple(state[name].shape) != want:
            shape = " x ".join(f"{dim}={sizes[dim]}" for dim in dims)
            raise TranscoderFileError(
                f"{where}: {name} has shape {tuple(state[name].shape)}, expected {want} ({shape})"
            )

    config = TranscoderConfig(
        d_in=sizes["d_in"],
        d_sae=sizes["d_sae"],
        d_out=sizes["d_out"],
        apply_b_dec_to_input=False,  # SAELens' transcoders have none: folded into b_enc below
        device=device,
    )
    metadata = config.metadata
    metadata.hook_name = INPUT_HOOK.format(layer=layer)
    metadata.hook_name_out = OUTPUT_HOOK.format(layer=layer)
    metadata.model_name = cfg.get("model_name") or "gpt2-small"
    metadata.model_from_pretrained_kwargs = dict(DUNEFSKY_MODEL_KWARGS)
    metadata.activation_fn = "relu"
    metadata.prepend_bos = True
    metadata.source = source
    with warnings.catch_warnings():  # SAELens' advice to load the model with these kwargs
        warnings.filterwarnings("ignore", message=_KWARGS_WARNING, category=UserWarning)
        transcoder = Transcoder(config)
    weights = {name: state[name].detach().to(torch.float32) for name in DUNEFSKY_TENSORS}
    with torch.no_grad():
        transcoder.W_enc.copy_(weights["W_enc"])
        transcoder.b_enc.copy_(weights["b_enc"] - weights["b_dec"] @ weights["W_enc"])
        transcoder.W_dec.copy_(weights["W_dec"])
        transcoder.b_dec.copy_(weights["b_dec_out"])
    return transcoder.to(device).eval()


def _check_layers(layers: Iterable[int], available: Iterable[int], where: str) -> list[int]:
    available = sorted(available)
    chosen = [int(layer) for layer in layers]
    unknown = [layer for layer in chosen if layer not in available]
    if unknown or not chosen:
        raise ValueError(
            f"no transcoder for layer(s) {unknown or chosen} in {where}; it has layers {available}"
        )
    return chosen


def _load_local(folder: Path, layers: Iterable[int], device: str) -> dict[int, Any]:
    from sae_lens import SAE
    from sae_lens.saes.transcoder import Transcoder

    from ..tiny import check_asset_folder
    from .transcoders import use_topk

    if not folder.is_dir():
        raise FileNotFoundError(
            f"No transcoder folder at {folder}: it should hold one folder per layer written by "
            "SAELens' save_model (rebuild with: python -m utils.tiny.build)"
        )
    found: dict[int, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if (p / "cfg.json").is_file()):
        metadata = json.loads((sub / "cfg.json").read_text(encoding="utf-8")).get("metadata", {})
        layer = _layer_of(metadata.get("hook_name_out") or metadata.get("hook_name"))
        if layer is None:
            raise TranscoderFileError(
                f"{sub / 'cfg.json'} names no layer: its metadata's hook_name_out/hook_name "
                f"should read blocks.L...., got {metadata.get('hook_name_out')!r}"
            )
        if layer in found:
            raise TranscoderFileError(f"{found[layer]} and {sub} are both layer {layer}")
        found[layer] = sub
    chosen = _check_layers(layers, found, str(folder))
    transcoders = {}
    for layer in chosen:
        check_asset_folder(found[layer])
        transcoder = SAE.load_from_disk(str(found[layer]), device=device)
        if not isinstance(transcoder, Transcoder):
            raise TranscoderFileError(
                f"{found[layer]} holds a {type(transcoder).__name__}, not a Transcoder "
                "(its cfg.json's architecture should be 'transcoder')"
            )
        if transcoder.cfg.metadata.get("activation_fn") == "topk":
            use_topk(transcoder)
        transcoders[layer] = transcoder.eval()
    return transcoders


def _load_hub(preset: Preset, layers: Iterable[int], device: str) -> dict[int, Any]:
    from huggingface_hub import hf_hub_download

    repo = preset.circuits.transcoder_repo
    chosen = _check_layers(layers, DUNEFSKY_LAYERS, repo)
    transcoders = {}
    for layer in chosen:
        filename = TRANSCODER_FILE.format(layer=layer)
        with _from_the_hub(preset, f"the layer-{layer} transcoder {repo}/{filename}"):
            path = hf_hub_download(repo, filename)
        checkpoint = read_checkpoint(path)
        transcoders[layer] = transcoder_from_dunefsky(
            checkpoint, layer, source=f"{repo}/{filename}", device=device
        )
    return transcoders


def model_kwargs_for(transcoders: dict[int, Any]) -> dict[str, Any]:
    """The model loading options (``load_model(preset, **options)``) the transcoders were
    trained with: their ``cfg.metadata.model_from_pretrained_kwargs``, ``{}`` when they name none.
    Transcoders that ask for different options raise ``ValueError`` (one model cannot serve both).
    """
    options = {
        layer: dict(transcoder.cfg.metadata.get("model_from_pretrained_kwargs") or {})
        for layer, transcoder in transcoders.items()
    }
    distinct = {json.dumps(kwargs, sort_keys=True) for kwargs in options.values()}
    if len(distinct) > 1:
        raise ValueError(
            f"these transcoders ask for different model loading options: {options}; "
            "load transcoders that were trained on the same model"
        )
    return next(iter(options.values()), {})


def load_transcoders(
    preset: Preset, layers: Iterable[int] | None = None, device: str = "cpu"
) -> dict[int, Any]:
    """The preset's MLP transcoders as ``{layer: sae_lens Transcoder}`` on ``device`` (eval mode),
    in layer order.

    ``layers`` defaults to ``preset.circuits.layers`` (the MLPs tutorial 5 replaces). Each
    transcoder reads ``cfg.metadata.hook_name`` (``blocks.L.ln2.hook_normalized``) and predicts
    ``cfg.metadata.hook_name_out`` (``blocks.L.hook_mlp_out``); load the model with
    ``load_model(preset, **model_kwargs_for(transcoders))``. A layer the source
    does not have raises ``ValueError`` listing the ones it has; a Hub download that fails raises
    :class:`utils.loading.HubUnavailableError`; a malformed file :class:`TranscoderFileError`.
    """
    circuits = preset.circuits
    if circuits is None:
        raise ValueError(f"the preset {preset.name!r} names no transcoders (preset.circuits)")
    layers = circuits.layers if layers is None else layers
    if circuits.transcoder_path is not None:
        transcoders = _load_local(Path(circuits.transcoder_path), layers, device)
    else:
        transcoders = _load_hub(preset, layers, device)
    return dict(sorted(transcoders.items()))
