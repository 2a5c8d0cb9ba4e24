"""A stand-in Hugging Face cache for the ``gpt2-small`` preset, so its code path runs offline.

These machines cannot reach the Hugging Face Hub, yet the ``gpt2-small`` preset is what Colab
readers run. :func:`build_standin_hub` writes, into a folder used as ``HF_HOME``, everything that
preset downloads, at the real repository ids, paths, formats and shapes:

- ``gpt2`` (TransformerLens' name for ``gpt2-small``): GPT-2's published ``config.json``, the
  *real* GPT-2 tokenizer (``vocab.json`` + ``merges.txt``, rebuilt from the vendored
  ``assets/gpt2_tokenizer/gpt2.tiktoken.gz``) and *stand-in* weights (GPT-2's initialisation,
  seeded).
- ``jbloom/GPT2-Small-SAEs-Reformatted`` folder ``blocks.8.hook_resid_pre/``: the SAE in the
  pre-6.0 SAELens format (24,576 latents on 768 dimensions), with random weights whose encoder bias
  is calibrated on the stand-in model's activations so that about ``TARGET_L0`` latents fire per
  token (a random SAE is not sparse: half its latents fire, and tutorial 1 runs out of memory).
- ``pchlenski/gpt2-transcoders``: Dunefsky et al.'s MLP transcoders in their own format (a
  ``torch.save`` of ``{"cfg": <sae_training.config.LanguageModelSAERunnerConfig>, "state_dict":
  {W_enc, b_enc, W_dec, b_dec, b_dec_out}}``, 24,576 latents on 768 dimensions), at their real file
  names, for ``TRANSCODER_LAYERS`` only (151 MB a layer): random weights whose encoder bias is
  calibrated, like the SAE's, so that about ``TARGET_L0`` latents fire per token.
- ``monology/pile-uncopyrighted``: a prepared datasets-cache folder with ``train`` and
  ``validation`` splits made from the book's own corpus (its train and held-out documents, which
  are disjoint). With ``HF_HUB_OFFLINE=1``, ``load_dataset(..., streaming=True)`` reads it.

Why the tokenizer file is vendored rather than taken from a package at test time: the only
package on PyPI that ships it, ``openai-whisper``, is an sdist whose install pulls numba, tiktoken
and triton (and a build step) into the book's environment for one 835 KB data file. Gzipped, the
file is 366 KB, MIT-licensed (its licence sits beside it), and :func:`read_gpt2_ranks` checks its
sha256 against the hash tiktoken pins for ``r50k_base`` (GPT-2's encoding), so a corrupted copy
fails loudly. (It comes from the openai-whisper 20250625 sdist: whisper/assets/gpt2.tiktoken.)

huggingface_hub and datasets read ``HF_HOME`` and ``HF_HUB_OFFLINE`` when they are imported, so use
the cache from a subprocess or a kernel started with :func:`standin_env`'s variables, never by
setting them in a process that already imported them. Nothing here touches the user's own cache.

    python tests/standin_hub.py /tmp/standin   # build one by hand, then e.g.
    HF_HOME=/tmp/standin HF_HUB_OFFLINE=1 SAE_BOOK_PRESET=gpt2-small jupyter lab
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `import utils` works however this is started
    sys.path.insert(0, str(REPO))

from utils.environment import offline_env  # noqa: E402

TIKTOKEN_FILE = Path(__file__).resolve().parent / "assets" / "gpt2_tokenizer" / "gpt2.tiktoken.gz"
# sha256 of the uncompressed gpt2.tiktoken (tiktoken's pinned hash for r50k_base).
TIKTOKEN_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
N_RANKS = 50256  # byte-level BPE tokens; <|endoftext|> is 50256
EOT = "<|endoftext|>"

MODEL_REPO = "gpt2"
SAE_REPO = "jbloom/GPT2-Small-SAEs-Reformatted"
SAE_FOLDER = "blocks.8.hook_resid_pre"
SAE_LAYER = 8
D_SAE = 24576
TARGET_L0 = 60  # the registry's figure for this SAE
DATASET_REPO = "monology/pile-uncopyrighted"
SEED = 0
TRANSCODER_REPO = "pchlenski/gpt2-transcoders"
TRANSCODER_FILE = "final_sparse_autoencoder_gpt2-small_blocks.{layer}.ln2.hook_normalized_24576.pt"
# The MLPs a scaled run replaces: scale_circuits keeps the graph's last 2 of GPT-2's 12 layers at
# the stand-in notebooks' scale (tests/test_circuits_hub.py checks the preset asks for no other).
TRANSCODER_LAYERS = (10, 11)
# Revisions: any 40-hex string works for an offline cache; these are fixed so paths are stable.
MODEL_REVISION = "0" * 39 + "1"
SAE_REVISION = "0" * 39 + "2"
TRANSCODER_REVISION = "0" * 39 + "3"

# GPT-2's published config.json on the Hub (GPT2Config().to_dict() lacks n_ctx, which TL reads).
GPT2_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": 50256,
    "embd_pdrop": 0.1,
    "eos_token_id": 50256,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_layer": 12,
    "n_positions": 1024,
    "resid_pdrop": 0.1,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "vocab_size": 50257,
}
GENERATION_CONFIG = {"_from_model_config": True, "bos_token_id": 50256, "eos_token_id": 50256}
TOKENIZER_CONFIG = {"model_max_length": 1024}


# The tokenizer -----------------------------------------------------------------------------------


def read_gpt2_ranks(path: Path = TIKTOKEN_FILE) -> list[bytes]:
    """GPT-2's BPE tokens as byte strings, index = token id (0..50255), from a ``.tiktoken.gz``.

    Raises ``ValueError`` if the file's content is not the one tiktoken pins for ``r50k_base``.
    """
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TIKTOKEN_SHA256:
        raise ValueError(
            f"{path} is not GPT-2's tokenizer: its sha256 is {digest}, expected {TIKTOKEN_SHA256} "
            "(whisper/assets/gpt2.tiktoken from the openai-whisper sdist, gzipped)"
        )
    tokens: list[bytes] = [b""] * N_RANKS
    for line in raw.splitlines():
        token, rank = line.split()
        tokens[int(rank)] = base64.b64decode(token)
    if not all(tokens):
        raise ValueError(f"{path} does not hold all {N_RANKS} ranks")
    return tokens


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte (vocab.json and merges.txt spell bytes
    with them)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _split_by_lower_ranks(token: bytes, ranks: dict[bytes, int], limit: int) -> list[bytes]:
    """Byte-level BPE of ``token`` using only merges whose result has a rank below ``limit``."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, best_rank = -1, limit
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1], limit)
            if rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


def write_gpt2_tokenizer(folder: Path) -> None:
    """Write GPT-2's ``vocab.json`` (50257 entries) and ``merges.txt`` (50000 merges) to ``folder``.

    Each token of rank r >= 256 is the merge of the two parts BPE makes of it with ranks below r;
    merges are listed in rank order, which is how GPT-2's merges.txt is ordered.
    """
    tokens = read_gpt2_ranks()
    ranks = {token: rank for rank, token in enumerate(tokens)}
    spell = bytes_to_unicode()

    def text(token: bytes) -> str:
        return "".join(spell[b] for b in token)

    merges = []
    for rank in range(256, N_RANKS):
        parts = _split_by_lower_ranks(tokens[rank], ranks, rank)
        if len(parts) != 2:
            raise ValueError(f"token {rank} ({tokens[rank]!r}) is not one merge of lower ranks")
        merges.append(f"{text(parts[0])} {text(parts[1])}")
    vocab = {text(token): rank for rank, token in enumerate(tokens)}
    vocab[EOT] = N_RANKS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "\n".join(merges) + "\n"
    (folder / "merges.txt").write_text(merges_text, encoding="utf-8")


# The model ---------------------------------------------------------------------------------------


def _snapshot(hf_home: Path, repo_id: str, revision: str, repo_type: str = "models") -> Path:
    """Create ``hub/<type>--<owner>--<name>/{refs/main, snapshots/<revision>}``; return the
    snapshot folder."""
    root = hf_home / "hub" / f"{repo_type}--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision, encoding="utf-8")
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def write_model(snapshot: Path):
    """GPT-2's config, tokenizer files and seeded stand-in weights; returns the HF model (eval
    mode)."""
    import torch
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    write_gpt2_tokenizer(snapshot)
    for name, content in [
        ("config.json", GPT2_CONFIG),
        ("generation_config.json", GENERATION_CONFIG),
        ("tokenizer_config.json", TOKENIZER_CONFIG),
    ]:
        (snapshot / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(GPT2Config(**GPT2_CONFIG)).eval()
    # Like the published file: the GPT2Model's tensors, no prefix (the LM head is tied to wte).
    state = {k: v.contiguous() for k, v in model.transformer.state_dict().items()}
    save_file(state, str(snapshot / "model.safetensors"), metadata={"format": "pt"})
    return model


# The SAE -----------------------------------------------------------------------------------------


def _resid_pre(model, tokens):
    """``blocks.{SAE_LAYER}.hook_resid_pre`` as TransformerLens computes it with
    ``center_writing_weights=True`` (the SAE's loading kwargs): the HF residual stream at the input
    of block 8, minus its mean over d_model. Shape [batch, pos, 768]. Stops after block 7."""
    import torch

    captured = {}

    class Stop(Exception):
        pass

    def grab(module, args, kwargs):
        captured["resid"] = args[0] if args else kwargs["hidden_states"]
        raise Stop

    handle = model.transformer.h[SAE_LAYER].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            model(tokens)
    except Stop:
        pass
    finally:
        handle.remove()
    resid = captured["resid"]
    return resid - resid.mean(dim=-1, keepdim=True)


def calibration_tokens(tokenizer_folder: Path, n_contexts: int = 16, context: int = 128):
    """[n_contexts, context] GPT-2 tokens of the book's training text, each row starting with
    BOS."""
    import torch
    from transformers import GPT2Tokenizer

    from utils.loading import load_texts
    from utils.presets import get_preset

    tokenizer = GPT2Tokenizer.from_pretrained(str(tokenizer_folder))
    rows = []
    for text in load_texts(get_preset("tiny"), split="train"):
        ids = tokenizer(text[: 8 * context])["input_ids"][: context - 1]  # 8 chars/token is ample
        if len(ids) == context - 1:
            rows.append([N_RANKS] + ids)
        if len(rows) == n_contexts:
            break
    return torch.tensor(rows)


def write_sae(folder: Path, model, tokenizer_folder: Path) -> dict[str, float]:
    """The SAE's ``cfg.json`` (pre-6.0 format), ``sae_weights.safetensors`` and
    ``sparsity.safetensors``; returns the calibration's L0 (mean latents firing per token)."""
    import torch
    from safetensors.torch import save_file

    acts = _resid_pre(model, calibration_tokens(tokenizer_folder)).flatten(0, 1)  # [tokens, 768]
    d_in = acts.shape[-1]
    generator = torch.Generator().manual_seed(SEED)
    w_dec = torch.randn(D_SAE, d_in, generator=generator)
    w_dec /= w_dec.norm(dim=-1, keepdim=True)
    w_enc = w_dec.T.contiguous()
    b_dec = acts.mean(dim=0)
    pre = (acts - b_dec) @ w_enc  # [tokens, d_sae]
    # Each latent fires on its top TARGET_L0 / D_SAE share of calibration tokens: b_enc sits
    # halfway between the k-th and (k+1)-th largest pre-activation, so mean L0 is TARGET_L0.
    k = max(1, round(acts.shape[0] * TARGET_L0 / D_SAE))
    top = pre.topk(k + 1, dim=0).values  # [k + 1, d_sae]
    b_enc = -(top[k - 1] + top[k]) / 2
    fires = (pre + b_enc) > 0
    l0 = fires.sum(dim=-1).float().mean().item()
    density = fires.float().mean(dim=0)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec},
        str(folder / "sae_weights.safetensors"),
    )
    save_file({"sparsity": torch.log10(density + 1e-10)}, str(folder / "sparsity.safetensors"))
    cfg = {  # the field set of the published pre-6.0 cfg.json files of this release
        "model_name": "gpt2-small",
        "hook_point": SAE_FOLDER,
        "hook_point_layer": SAE_LAYER,
        "hook_point_head_index": None,
        "dataset_path": "Skylion007/openwebtext",
        "is_dataset_tokenized": False,
        "context_size": 128,
        "use_cached_activations": False,
        "cached_activations_path": None,
        "d_in": d_in,
        "n_batches_in_buffer": 128,
        "total_training_tokens": 300_000_000,
        "store_batch_size": 32,
        "device": "cpu",
        "seed": 42,
        "dtype": "torch.float32",
        "b_dec_init_method": "geometric_median",
        "expansion_factor": D_SAE // d_in,
        "from_pretrained_path": None,
        "d_sae": D_SAE,
        "l1_coefficient": 8e-05,
        "lr": 0.0004,
        "lr_scheduler_name": None,
        "lr_warm_up_steps": 5000,
        "train_batch_size": 4096,
        "use_ghost_grads": False,
        "feature_sampling_window": 1000,
        "dead_feature_window": 5000,
        "dead_feature_threshold": 1e-08,
        "log_to_wandb": False,
        "checkpoint_path": None,
    }
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return {"calibration_l0": l0, "calibration_tokens": acts.shape[0]}


# The transcoders ---------------------------------------------------------------------------------


class LanguageModelSAERunnerConfig:
    """Stands in for the authors' config class when pickling: it is saved as
    ``sae_training.config.LanguageModelSAERunnerConfig``, the name the published files carry."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


LanguageModelSAERunnerConfig.__module__ = "sae_training.config"


def save_authors_checkpoint(path: Path, state_dict: dict, **cfg_fields) -> None:
    """``torch.save({"cfg": <sae_training.config.LanguageModelSAERunnerConfig>, "state_dict":
    state_dict})`` to ``path``, as the authors' ``SparseAutoencoder.save_model`` writes it (the
    config class is made importable under its real name only while pickling)."""
    import types
    from collections import OrderedDict

    import torch

    added = [name for name in ("sae_training", "sae_training.config") if name not in sys.modules]
    for name in added:
        sys.modules[name] = types.ModuleType(name)
    config_module = sys.modules["sae_training.config"]
    previous = getattr(config_module, "LanguageModelSAERunnerConfig", None)
    config_module.LanguageModelSAERunnerConfig = LanguageModelSAERunnerConfig
    try:
        cfg = LanguageModelSAERunnerConfig(**cfg_fields)
        torch.save({"cfg": cfg, "state_dict": OrderedDict(state_dict)}, str(path))
    finally:
        if previous is None:
            del config_module.LanguageModelSAERunnerConfig
        else:
            config_module.LanguageModelSAERunnerConfig = previous
        for name in added:
            del sys.modules[name]


def authors_cfg(layer: int, d_in: int = 768, d_sae: int = D_SAE) -> dict:
    """The fields of a published transcoder's cfg that matter here (values as the authors'
    ``train_transcoder.py`` sets them; ``device`` and ``dtype`` as their ``__post_init__`` leaves
    them)."""
    import torch

    return {
        "model_name": "gpt2-small",
        "hook_point": f"blocks.{layer}.ln2.hook_normalized",
        "hook_point_layer": layer,
        "hook_point_head_index": None,
        "is_transcoder": True,
        "out_hook_point": f"blocks.{layer}.hook_mlp_out",
        "out_hook_point_layer": layer,
        "d_in": d_in,
        "d_out": d_in,
        "d_sae": d_sae,
        "expansion_factor": d_sae // d_in,
        "dataset_path": "Skylion007/openwebtext",
        "context_size": 128,
        "b_dec_init_method": "mean",
        "lr": 0.0004,
        "l1_coefficient": 0.00014,
        "train_batch_size": 4096,
        "total_training_tokens": 60_000_000,
        "device": torch.device("cuda"),
        "dtype": torch.float32,
    }


def _mlp_io(model, tokens, layers):
    """``{layer: (x, y)}``: each layer's ``ln2.hook_normalized`` (the ln_2 input, centred and
    scaled, before its weight and bias) and ``hook_mlp_out`` with centred writing weights (the MLP
    output minus its mean over d_model), as TransformerLens computes them; ``[tokens, 768]``."""
    import torch

    captured: dict = {}
    handles = []
    for layer in layers:
        block = model.transformer.h[layer]

        def grab_in(module, args, layer=layer):
            resid = args[0] - args[0].mean(-1, keepdim=True)
            scale = (resid.pow(2).mean(-1, keepdim=True) + module.eps).sqrt()
            captured[(layer, "in")] = resid / scale

        def grab_out(module, args, output, layer=layer):
            captured[(layer, "out")] = output - output.mean(-1, keepdim=True)

        handles.append(block.ln_2.register_forward_pre_hook(grab_in))
        handles.append(block.mlp.register_forward_hook(grab_out))
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return {
        layer: (captured[(layer, "in")].flatten(0, 1), captured[(layer, "out")].flatten(0, 1))
        for layer in layers
    }


def write_transcoders(snapshot: Path, model, tokenizer_folder: Path, layers=TRANSCODER_LAYERS):
    """One ``.pt`` per layer in ``layers``, in the authors' format (module docstring): decoder rows
    random unit vectors, encoder their transpose, input bias ``b_dec`` the mean input (their
    ``b_dec_init_method="mean"``), ``b_dec_out`` the mean output, and ``b_enc`` calibrated so each
    latent fires on its top ``TARGET_L0 / D_SAE`` share of calibration tokens. Returns each
    layer's calibration L0."""
    import torch

    io = _mlp_io(model, calibration_tokens(tokenizer_folder), layers)
    summary = {}
    for layer in layers:
        x, y = io[layer]
        generator = torch.Generator().manual_seed(SEED + 1 + layer)
        w_dec = torch.randn(D_SAE, x.shape[-1], generator=generator)
        w_dec /= w_dec.norm(dim=-1, keepdim=True)
        w_enc = w_dec.T.contiguous()
        b_dec = x.mean(dim=0)
        pre = (x - b_dec) @ w_enc
        k = max(1, round(x.shape[0] * TARGET_L0 / D_SAE))
        top = pre.topk(k + 1, dim=0).values
        b_enc = -(top[k - 1] + top[k]) / 2
        summary[f"transcoder_{layer}_calibration_l0"] = (
            ((pre + b_enc) > 0).sum(-1).float().mean().item()
        )
        state = {
            "W_enc": w_enc,
            "b_enc": b_enc,
            "W_dec": w_dec,
            "b_dec": b_dec,
            "b_dec_out": y.mean(dim=0),
        }
        path = snapshot / TRANSCODER_FILE.format(layer=layer)
        save_authors_checkpoint(path, state, **authors_cfg(layer, x.shape[-1]))
    return summary


# The dataset -------------------------------------------------------------------------------------


def write_dataset(hf_home: Path, work: Path) -> dict[str, int]:
    """A prepared datasets-cache folder for ``monology/pile-uncopyrighted`` (train + validation)."""
    from datasets.packaged_modules.json.json import Json

    from utils.loading import load_texts
    from utils.presets import get_preset

    tiny = get_preset("tiny")
    splits = {
        "train": load_texts(tiny, split="train"),
        "validation": load_texts(tiny, split="heldout"),
    }
    if set(splits["train"]) & set(splits["validation"]):
        raise ValueError("the book's train and held-out documents overlap")
    data_files = {}
    for split, texts in splits.items():
        path = work / f"{split}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for text in texts:
                f.write(json.dumps({"text": text, "meta": {"pile_set_name": "sae-book"}}) + "\n")
        data_files[split] = str(path)
    name = DATASET_REPO.split("/")[-1]
    builder = Json(cache_dir=str(work / "prepare"), dataset_name=name, data_files=data_files)
    builder.download_and_prepare()
    prepared = Path(builder.cache_dir)
    fingerprint = hashlib.sha256(json.dumps(splits).encode()).hexdigest()[:16]  # the "hash"
    dataset_root = hf_home / "datasets" / DATASET_REPO.replace("/", "___")
    target = dataset_root / "default" / "0.0.0" / fingerprint
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(prepared), str(target))
    info = json.loads((target / "dataset_info.json").read_text(encoding="utf-8"))
    info["config_name"] = "default"  # the folder's config name; the offline lookup compares them
    (target / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return {f"{split}_documents": len(texts) for split, texts in splits.items()}


# Everything --------------------------------------------------------------------------------------


def build_standin_hub(hf_home: Path, transcoder_layers=TRANSCODER_LAYERS) -> dict:
    """Write the whole stand-in cache under ``hf_home`` (used as ``HF_HOME``); return a summary.

    About 15 s and 630 MB on two CPU cores, plus the transcoders: 15 CPU-s and 289 MB for the
    default ``transcoder_layers`` (10 and 11, what a scaled run loads; 2.1 GB peak memory), about
    six times that for all 12 (what a full-size run of tutorial 5 loads). ``hf_home`` must be
    empty or absent.
    """
    hf_home = Path(hf_home)
    if hf_home.exists() and any(hf_home.iterdir()):
        raise ValueError(f"{hf_home} is not empty: build the stand-in Hub in a new folder")
    hf_home.mkdir(parents=True, exist_ok=True)
    model_snapshot = _snapshot(hf_home, MODEL_REPO, MODEL_REVISION)
    model = write_model(model_snapshot)
    sae_snapshot = _snapshot(hf_home, SAE_REPO, SAE_REVISION)
    summary = write_sae(sae_snapshot / SAE_FOLDER, model, model_snapshot)
    transcoder_snapshot = _snapshot(hf_home, TRANSCODER_REPO, TRANSCODER_REVISION)
    summary.update(
        write_transcoders(transcoder_snapshot, model, model_snapshot, tuple(transcoder_layers))
    )
    with tempfile.TemporaryDirectory() as work:
        summary.update(write_dataset(hf_home, Path(work)))
    (hf_home / "standin.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


_SESSION_HUB: Path | None = None


def session_standin_hub(tmp_path_factory) -> Path:
    """The stand-in Hub for this pytest session, built on first use in pytest's temporary folder
    (every test module that asks gets the same one, so it is built once per session)."""
    global _SESSION_HUB
    if _SESSION_HUB is None:
        hf_home = tmp_path_factory.mktemp("standin_hub") / "hf_home"
        build_standin_hub(hf_home)
        _SESSION_HUB = hf_home
    return _SESSION_HUB


def standin_env(hf_home: Path, **extra: str) -> dict[str, str]:
    """``os.environ`` plus what a process needs to use the stand-in: HF_HOME, offline flags, the
    gpt2-small preset, no wandb. Give it to a subprocess or kernel; ``extra`` adds or overrides."""
    env = dict(os.environ)
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE"):
        env.pop(key, None)  # these would point away from the stand-in
    path = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    own = {"HF_HOME": str(hf_home), "SAE_BOOK_PRESET": "gpt2-small", "PYTHONPATH": path}
    return offline_env(env, **{**own, **extra})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/standin_hub.py NEW_FOLDER")
    print(json.dumps(build_standin_hub(Path(sys.argv[1])), indent=2))


def run_worker_script(
    script: str, mode: str, env: dict[str, str], prefix: str, timeout: float = 300
) -> tuple[dict, str]:
    """Run a test file as a script (``python script mode``) in ``env`` from the repository root;
    return the JSON it printed last after ``prefix``, and its stderr. A worker that fails or
    prints no result fails the test with its output."""
    done = subprocess.run(
        [sys.executable, script, mode],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(prefix)]
    assert done.returncode == 0 and lines, f"worker {mode} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1][len(prefix) :]), done.stderr
