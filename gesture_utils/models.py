"""The gesture model: a timm ViT encodes every frame, a temporal head reads the sequence
(notebook 03).

Shapes, for a batch of ``B`` clips of ``T`` frames ``C x H x W``::

    clip   (B, T, C, H, W) --flatten--> (B*T, C, H, W)
           --frame norm--> each frame's channels to mean 0, std 1 (FrameStandardize)
           --backbone (timm ViT, num_classes=0).forward_features--> (B*T, 1+P, D)
           --frame pool--> (B*T, D)   "tokens": the P patch tokens flattened + Linear
                                      "cls": the CLS token (timm's own pooling)
           --unflatten--> (B, T, D)                          = encode_frames(clip)
    head   "mean":        mean over T -> Linear -> (B, K)    order-blind baseline
           "transformer": LN(e_t - mean) + mean + (e_t - e_{t-1}) + position -> (B, T, d),
                          a CLS token after the frames, timm Blocks (optionally
                          causal), LayerNorm, CLS -> Linear -> (B, K)
                                                             = classify_embeddings(emb)

Trained from scratch on a CPU budget, a model that must *learn* where the hand is (CLS
pooling) and that order matters (positions alone) stalls at the order-blind solution;
patch tokens kept in their slots and frame differences make position and direction
visible from the first step (``benchmarks/bench_training.py``, notebook 03).  The hand
map (``ViTTemporal.hand_map``) and probe are trained by the hand loss
(:mod:`gesture_utils.training`).  ``encode_frames`` and ``classify_embeddings`` are
separate entry points, so a stream encodes each new frame once (notebooks 04, 06).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import resolve_data_config
from timm.layers import PatchEmbed, trunc_normal_
from timm.models import build_model_with_cfg, register_model
from timm.models.vision_transformer import (
    Block,
    VisionTransformer,
    checkpoint_filter_fn,
    init_weights_vit_timm,
)
from torch import Tensor, nn

from gesture_utils.config import ClipConfig, ModelConfig, from_dict, to_dict
from gesture_utils.errors import GestureError, input_error
from gesture_utils.paths import atomic_path

HEADS: tuple[str, ...] = ("mean", "transformer")
FRAME_POOLS: tuple[str, ...] = ("cls", "tokens")
#: ``format`` entry of every checkpoint this module writes.
CHECKPOINT_FORMAT = "gesture-vit-temporal"
#: What every refusal of a checkpoint that does not load says to do.
RETRAIN = "retrain it (make tutorial or notebook 03)"


class PretrainedFallbackWarning(UserWarning):
    """Pretrained weights were asked for but could not be loaded: training from scratch."""


# --------------------------------------------------------------------------- the small ViT

#: The series' from-scratch ViT (timm ``VisionTransformer`` arguments, plus
#: ``stem_width`` for :class:`ConvStemPatchEmbed`): 64 px frames, a 4-layer convolutional
#: stem down to a 4 x 4 grid of 16 px "patches" (+ CLS), width 128, 3 blocks.
GESTURE_VITS: dict[str, dict[str, Any]] = {
    "vit_gesture_tiny": dict(img_size=64, patch_size=16, embed_dim=128, depth=3, num_heads=4,
                             mlp_ratio=2.0, stem_width=16),
}


class ConvStemPatchEmbed(PatchEmbed):
    """timm ``PatchEmbed`` with a small convolutional stem instead of one ``patch x
    patch`` convolution: 3x3 stride-2 convolutions (BatchNorm + ReLU, widths doubling
    from ``stem_width``) down to the same token grid, then a 1x1 projection.  Its local,
    overlapping filters give a ViT trained from scratch on little data the locality bias
    it otherwise has to learn (Xiao et al., 2021, "Early convolutions help transformers
    see better")."""

    def __init__(self, img_size: Any = 224, patch_size: Any = 16, in_chans: int = 3,
                 embed_dim: int = 768, bias: bool = True, stem_width: int = 16,
                 **kwargs: Any) -> None:
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                         embed_dim=embed_dim, bias=bias, **kwargs)
        p = self.patch_size[0]
        n = int(round(math.log2(p)))
        if 2 ** n != p or self.patch_size[0] != self.patch_size[1]:
            raise GestureError(f"a conv stem needs a square power-of-2 patch size, got {patch_size}")
        layers: list[nn.Module] = []
        c = in_chans
        for i in range(n):
            w = min(embed_dim, stem_width * 2 ** i)
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.Conv2d(c, embed_dim, 1, bias=bias))
        self.proj = nn.Sequential(*layers)


#: timm reads a registered model's pretrained config from its module's ``default_cfgs``:
#: no weights, 0.5/0.5 normalisation, this input size.
default_cfgs: dict[str, dict[str, Any]] = {
    name: dict(url="", num_classes=1000, input_size=(3, kw["img_size"], kw["img_size"]),
               pool_size=None, crop_pct=1.0, interpolation="bilinear", mean=(0.5, 0.5, 0.5),
               std=(0.5, 0.5, 0.5), first_conv="patch_embed.proj.0", classifier="head")
    for name, kw in GESTURE_VITS.items()
}


@register_model
def vit_gesture_tiny(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """ViT 64 px, conv stem to 16 px patches, width 128, depth 3, 4 heads; from scratch."""
    args = {**GESTURE_VITS["vit_gesture_tiny"], **kwargs}
    args["embed_layer"] = partial(ConvStemPatchEmbed, stem_width=args.pop("stem_width"))
    return build_model_with_cfg(VisionTransformer, "vit_gesture_tiny", pretrained,
                                pretrained_filter_fn=checkpoint_filter_fn, **args)


# --------------------------------------------------------------------------- backbones


def _create_timm(name: str, **kwargs: Any) -> nn.Module:
    try:
        return timm.create_model(name, **kwargs)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            similar = timm.list_models(f"*{name.split('_')[0]}*")[:5]
            raise GestureError(f"unknown backbone {name!r} (timm {timm.__version__}); "
                               f"e.g. {similar or list(GESTURE_VITS)}") from None
        raise


def _pretrained_or_fallback(name: str, kwargs: dict[str, Any]) -> tuple[nn.Module, str]:
    """timm's pretrained weights (download or cache), else a random init, loudly."""
    try:
        return _create_timm(name, pretrained=True, **kwargs), "pretrained"
    except GestureError:
        raise
    except Exception as e:  # noqa: BLE001 - any download/cache failure means "no weights"
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__
    warnings.warn(
        f"pretrained weights for backbone {name!r} could not be loaded ({reason}). "
        "The backbone starts from RANDOM weights and is trained from scratch. For pretrained "
        "weights run with internet access (e.g. Colab) or pass a local file via "
        "ModelConfig(weights='path/to/weights.safetensors').",
        PretrainedFallbackWarning, stacklevel=3)
    return _create_timm(name, pretrained=False, **kwargs), "scratch (pretrained unavailable)"


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """A flat ``{name: tensor}`` from a weights file (safetensors, torch, our checkpoint)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt/unsupported files all mean "unreadable"
        raise input_error(path, f"cannot read weights ({type(e).__name__}: {e})",
                          "pass a .pth/.pt/.safetensors state dict saved with torch.save or "
                          "save_backbone_weights") from None
    if isinstance(state, Mapping) and state.get("format") == CHECKPOINT_FORMAT:
        state = {k[len("backbone."):]: v for k, v in state["model_state"].items()
                 if k.startswith("backbone.")}
    elif isinstance(state, Mapping):
        key = next((k for k in ("state_dict_ema", "model_ema", "state_dict", "model")
                    if isinstance(state.get(k), Mapping)), None)
        state = state[key] if key else state
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise input_error(path, "holds no state dict of tensors",
                          "save the backbone with save_backbone_weights(model, path)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a local weights file into ``backbone`` (in place) as timm would: the model's
    checkpoint filter (e.g. position-embedding resizing), classifier weights dropped.
    A one-line :class:`GestureError` when the file is unreadable or does not fit."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "backbone weights file not found",
                          "check ModelConfig.weights / --weights")
    state = _read_state_dict(path)
    filt = getattr(sys.modules.get(type(backbone).__module__), "checkpoint_filter_fn", None)
    try:
        state = filt(state, backbone) if filt is not None else state
    except Exception as e:  # noqa: BLE001
        raise input_error(path, f"weights do not fit {type(backbone).__name__} "
                                f"({type(e).__name__}: {e})", "use weights of the same backbone") from None
    classifier = (getattr(backbone, "pretrained_cfg", None) or {}).get("classifier") or "head"
    classifiers = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    state = {k: v for k, v in state.items() if not any(k.startswith(c + ".") for c in classifiers)}
    same = "use weights saved from the same architecture"
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError as e:
        first = str(e).split("\n\t")[1] if "\n\t" in str(e) else str(e)
        raise input_error(path, f"weights do not fit this backbone ({first.strip()[:200]})", same) from None
    if result.missing_keys:
        raise input_error(path, f"holds no weights for {len(result.missing_keys)} of "
                                f"{len(backbone.state_dict())} backbone tensors (e.g. "
                                f"{result.missing_keys[0]})", same)
    if result.unexpected_keys:
        warnings.warn(f"{path}: ignored {len(result.unexpected_keys)} tensors the backbone does "
                      f"not have (e.g. {result.unexpected_keys[0]})", stacklevel=2)


def build_backbone(name: str, pretrained: bool = False, weights: str | os.PathLike[str] | None = None,
                   image_size: int | None = None, **timm_kwargs: Any) -> nn.Module:
    """A timm backbone returning one embedding per image, ``num_classes=0``.

    Initialisation, recorded in ``backbone.init_source``: ``weights`` (local file) >
    ``pretrained`` (timm download/cache, else a warned random init) > random.
    ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``pretrained_cfg_overlay=dict(file=...)``).
    """
    kwargs: dict[str, Any] = dict(num_classes=0, **timm_kwargs)
    if image_size is not None:
        kwargs["img_size"] = int(image_size)
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    file = overlay.get("file")
    if weights is not None:
        backbone = _create_timm(name, pretrained=False, **kwargs)
        load_backbone_weights(backbone, weights)
        source = f"file:{Path(weights).name}"
    elif pretrained and (file or overlay.get("state_dict") is not None):
        if file is not None and not Path(file).is_file():
            raise input_error(file, "pretrained_cfg_overlay file not found", "check the path")
        backbone = _create_timm(name, pretrained=True, **kwargs)
        source = f"file:{Path(file).name}" if file else "state_dict"
    elif pretrained and name in GESTURE_VITS:
        warnings.warn(f"{name!r} is a from-scratch config of this series and has no pretrained "
                      "weights; the backbone starts from RANDOM weights.",
                      PretrainedFallbackWarning, stacklevel=2)
        backbone = _create_timm(name, pretrained=False, **kwargs)
        source = "scratch (no pretrained weights exist)"
    elif pretrained:
        backbone, source = _pretrained_or_fallback(name, kwargs)
    else:
        backbone, source = _create_timm(name, pretrained=False, **kwargs), "scratch"
    backbone.init_source = source
    return backbone


def save_backbone_weights(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save the backbone of a :class:`ViTTemporal` (or a bare timm model) as a state dict
    file (``.safetensors`` or torch), atomically; ``ModelConfig(weights=path)`` loads it."""
    backbone = model.backbone if isinstance(model, ViTTemporal) else model
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp))
        else:
            torch.save(state, tmp)
    return Path(path)


# --------------------------------------------------------------------------- heads


class MeanPoolHead(nn.Module):
    """The article's head: the mean of the T frame embeddings, then a linear classifier,
    ``(B, T, D) -> (B, K)``: blind to the order of the frames."""

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)
        self.apply(init_weights_vit_timm)

    def forward(self, emb: Tensor) -> Tensor:
        return self.fc(self.drop(emb.mean(dim=1)))


class TemporalTransformerHead(nn.Module):
    """Order-aware head, ``(B, T, D_in) -> (B, K)`` for any ``T <= num_frames``.

    Token ``t`` from the frame embeddings ``e``: ``proj(LN(e_t - mean)) + context(mean)``
    (``delta``: how frame t differs from the clip's average, LayerNorm-ed so small
    changes are as loud as the scene, plus the average; ``causal``: the running average;
    else ``proj(e_t)``), ``+ motion(g * (e_t - e_{t-1}))`` (``motion``: which way things
    moved; reversing a clip negates it), ``+ pos_t``.  A CLS token appended *after* the
    frames (a causal mask still lets it see them all), timm ``Block``s (``causal``: step t
    attends to steps <= t), LayerNorm, the classifier on the CLS output.
    """

    def __init__(self, in_dim: int, num_classes: int, num_frames: int, dim: int | None = None,
                 depth: int = 2, num_heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.1,
                 causal: bool = False, motion: bool = True, delta: bool = False) -> None:
        super().__init__()
        dim = int(dim or in_dim)
        if dim % num_heads:
            raise GestureError(f"temporal width {dim} is not divisible by {num_heads} heads")
        self.num_frames, self.causal = int(num_frames), bool(causal)
        self.delta_norm = nn.LayerNorm(in_dim) if delta else None
        self.context = nn.Linear(in_dim, dim) if delta else None
        self.proj = nn.Linear(in_dim, dim) if (dim != in_dim or delta) else nn.Identity()
        self.motion = nn.Linear(in_dim, dim) if motion else None
        self.motion_gain = nn.Parameter(torch.tensor(4.0)) if motion else None
        self.pos_embed = nn.Parameter(torch.zeros(1, num_frames, dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([
            Block(dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, proj_drop=dropout)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head_drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)
        self.register_buffer("causal_mask", torch.ones(num_frames + 1, num_frames + 1,
                                                       dtype=torch.bool).tril(), persistent=False)
        self.apply(init_weights_vit_timm)
        trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        trunc_normal_(self.cls_token, std=0.02)

    def tokens(self, emb: Tensor) -> Tensor:
        """``(B, T, D_in) -> (B, T, dim)``: frame (+ motion) tokens with positions."""
        T = emb.shape[1]
        if T > self.num_frames:
            raise GestureError(f"clip has {T} frames but the temporal head knows "
                               f"{self.num_frames} positions (ModelConfig.num_frames)")
        if self.delta_norm is not None:
            if self.causal:  # running average: step t only sees steps <= t
                steps = torch.arange(1, T + 1, device=emb.device, dtype=emb.dtype).view(1, T, 1)
                mean = emb.cumsum(dim=1) / steps
            else:
                mean = emb.mean(dim=1, keepdim=True)
            x = self.proj(self.delta_norm(emb - mean)) + self.context(mean) + self.pos_embed[:, :T]
        else:
            x = self.proj(emb) + self.pos_embed[:, :T]
        if self.motion is not None:
            prev = torch.cat([emb[:, :1], emb[:, :-1]], dim=1)
            x = x + self.motion(self.motion_gain * (emb - prev))
        return x

    def encode(self, emb: Tensor) -> Tensor:
        """``(B, T, D_in) -> (B, T + 1, dim)`` normalised outputs, the CLS token's last."""
        x = torch.cat([self.tokens(emb), self.cls_token.expand(emb.shape[0], -1, -1)], dim=1)
        x = self.pos_drop(x)
        n = x.shape[1]
        mask = self.causal_mask[:n, :n] if self.causal else None
        for blk in self.blocks:
            x = blk(x, attn_mask=mask)
        return self.norm(x)

    def forward(self, emb: Tensor) -> Tensor:
        return self.fc(self.head_drop(self.encode(emb)[:, -1]))


# --------------------------------------------------------------------------- the model


class FlattenTokens(nn.Module):
    """Frame embedding from all ``P`` patch tokens, flattened in grid order + Linear +
    LayerNorm, ``(N, P, D) -> (N, D)``: *where* something is stays by construction."""

    def __init__(self, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(num_tokens * dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.apply(init_weights_vit_timm)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.norm(self.fc(tokens.flatten(1)))


class FrameStandardize(nn.Module):
    """Each frame, each colour channel, to mean 0 / std 1 over its own pixels,
    ``(N, C, H, W) -> (N, C, H, W)``: a scene's colour cast, brightness and contrast are
    gone before the backbone, the hand stays.  Per frame, so a stream can encode frames
    as they arrive; ``eps`` keeps a uniform frame finite (all zeros)."""

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # centred twice: the second mean removes the first one's rounding error, which
        # the division would amplify on near-uniform frames (ONNX Runtime's ReduceMean
        # sums less exactly than torch's)
        centred = x - x.mean(dim=(-2, -1), keepdim=True)
        centred = centred - centred.mean(dim=(-2, -1), keepdim=True)
        var = (centred * centred).mean(dim=(-2, -1), keepdim=True)
        return centred / torch.sqrt(var + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class HandProbe(nn.Module):
    """Where the hand is, per frame, from the frame embedding alone (a linear probe):
    ``(B, T, D) -> (B, T, 3)`` raw ``(visible logit, x, y)``.  Trained by the hand loss
    (``TrainConfig.hand_weight``); streams ask it before an event fires (notebook 06).
    ``trained``: whether a hand loss ever reached it (an untrained probe is never asked)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 3)
        self.register_buffer("trained", torch.zeros((), dtype=torch.bool))

    def forward(self, emb: Tensor) -> Tensor:
        return self.fc(emb)


class ViTTemporal(nn.Module):
    """A timm backbone per frame + a temporal head: ``(B, T, C, H, W) -> (B, K)`` logits.

    Set by :func:`build_model`: ``cfg`` (:class:`ModelConfig`), ``labels``,
    ``data_config`` (timm's resolved input size / mean / std) and ``clip``
    (:class:`ClipConfig` for the datasets).  ``hand_map`` (patch tokens -> "the hand is
    here" scores, for backbones with patch tokens) is a training signal only.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, cfg: ModelConfig,
                 labels: Sequence[str] | None = None, frame_pool: nn.Module | None = None) -> None:
        super().__init__()
        self.frame_norm: nn.Module = FrameStandardize() if cfg.frame_norm else nn.Identity()
        self.backbone, self.frame_pool, self.head, self.cfg = backbone, frame_pool, head, cfg
        self.embed_dim = int(backbone.num_features)
        self.num_classes = int(head.fc.out_features)
        self.labels = list(labels) if labels is not None else [str(i) for i in range(self.num_classes)]
        size = cfg.image_size
        self.data_config = resolve_data_config(
            {"input_size": (3, size, size)} if size else {}, model=backbone)
        self.clip = clip_config_for(self.data_config, cfg.num_frames)
        self.hand_probe = HandProbe(self.embed_dim)
        self.hand_map: nn.Linear | None = None
        if hasattr(backbone, "patch_embed") and hasattr(backbone, "forward_features"):
            self.hand_map = nn.Linear(self.embed_dim, 1)

    @property
    def init_source(self) -> str:
        """How the backbone was initialised: pretrained, file:<name> or scratch."""
        return str(getattr(self.backbone, "init_source", "unknown"))

    def _frame_tokens(self, x: Tensor) -> Tensor:
        """``(B, T, C, H, W) -> (B*T, prefix + P, D)``, after the backbone's final norm."""
        return self.backbone.forward_features(self.frame_norm(x.flatten(0, 1)))

    def _pool_tokens(self, tokens: Tensor) -> Tensor:
        """``(B*T, prefix + P, D) -> (B*T, D)`` (without ``frame_pool``: the CLS token)."""
        if self.frame_pool is None:
            return self.backbone.forward_head(tokens)
        return self.frame_pool(tokens[:, self.backbone.num_prefix_tokens:])

    def encode_frames(self, x: Tensor) -> Tensor:
        """Frame embeddings: ``(B, T, C, H, W) -> (B, T, D)``."""
        return self._pool_tokens(self._frame_tokens(x)).unflatten(0, x.shape[:2])

    def encode_frames_and_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Frame embeddings ``(B, T, D)`` and the hand map's patch scores ``(B, T, P)``
        from one backbone pass (the hand loss; needs ``hand_map``)."""
        tokens = self._frame_tokens(x)
        scores = self.hand_map(tokens[:, self.backbone.num_prefix_tokens:]).squeeze(-1)
        return (self._pool_tokens(tokens).unflatten(0, x.shape[:2]),
                scores.unflatten(0, x.shape[:2]))

    def classify_embeddings(self, emb: Tensor) -> Tensor:
        """Class logits from frame embeddings: ``(B, T, D) -> (B, K)``."""
        return self.head(emb)

    def locate_hand(self, emb: Tensor) -> Tensor:
        """``(B, T, D) -> (B, T, 3)`` rows ``(P(hand in view), x, y)``, the centre in
        fractions of the frame side."""
        out = self.hand_probe(emb)
        return torch.cat([torch.sigmoid(out[..., :1]), out[..., 1:]], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify_embeddings(self.encode_frames(x))

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Stop (or restart) training the backbone; a frozen backbone stays in eval mode."""
        self.backbone.requires_grad_(not frozen)
        self._frozen = frozen
        if frozen:
            self.backbone.eval()

    def train(self, mode: bool = True) -> ViTTemporal:
        super().train(mode)
        if getattr(self, "_frozen", False):
            self.backbone.eval()
        return self


def clip_config_for(data_config: Mapping[str, Any], num_frames: int) -> ClipConfig:
    """The :class:`ClipConfig` a model expects, from timm's resolved data config."""
    return ClipConfig(num_frames=int(num_frames), image_size=int(data_config["input_size"][-1]),
                      mean=tuple(float(v) for v in data_config["mean"]),
                      std=tuple(float(v) for v in data_config["std"]))


def check_model_config(cfg: ModelConfig) -> None:
    """Raise :class:`GestureError` for impossible settings (before anything is built)."""
    if cfg.head not in HEADS:
        raise GestureError(f"ModelConfig.head must be one of {HEADS}, got {cfg.head!r}")
    if cfg.frame_pool not in FRAME_POOLS:
        raise GestureError(f"ModelConfig.frame_pool must be one of {FRAME_POOLS}, got {cfg.frame_pool!r}")
    if cfg.num_frames < 1:
        raise GestureError(f"ModelConfig.num_frames must be >= 1, got {cfg.num_frames}")
    if cfg.head == "transformer" and cfg.temporal_depth < 1:
        raise GestureError("ModelConfig.temporal_depth must be >= 1 for the transformer head")


def transfer_weights(src: ViTTemporal, dst: ViTTemporal) -> list[str]:
    """Start ``dst`` from ``src`` (same architecture, other labels): every tensor, and of
    the classifier (``head.fc``: one row per label) the rows of the labels both have, by
    label. Returns the labels ``dst`` learns from scratch (few-shot gestures, notebook 06)."""
    src_state, dst_state = src.state_dict(), dst.state_dict()
    rows = [(src.labels.index(lab), k) for k, lab in enumerate(dst.labels) if lab in src.labels]
    for name, value in dst_state.items():
        old = src_state.get(name)
        if name.startswith("head.fc.") and old is not None and old.shape[1:] == value.shape[1:]:
            for i, k in rows:
                value[k] = old[i]
        elif old is not None and old.shape == value.shape:
            value.copy_(old)
        else:
            raise GestureError(f"cannot start from a model with another architecture ({name}: "
                               f"{tuple(value.shape)} here, "
                               f"{None if old is None else tuple(old.shape)} there)")
    dst.load_state_dict(dst_state)
    return [lab for lab in dst.labels if lab not in src.labels]


def build_model(model_cfg: ModelConfig, num_classes: int, labels: Sequence[str] | None = None,
                **timm_kwargs: Any) -> ViTTemporal:
    """The :class:`ViTTemporal` of ``model_cfg`` for ``num_classes`` classes (``labels``
    in index order); ``timm_kwargs`` go to the backbone's ``timm.create_model``."""
    check_model_config(model_cfg)
    if labels is not None and len(labels) != num_classes:
        raise GestureError(f"{len(labels)} labels for {num_classes} classes")
    backbone = build_backbone(model_cfg.backbone, pretrained=model_cfg.pretrained,
                              weights=model_cfg.weights, image_size=model_cfg.image_size,
                              **timm_kwargs)
    dim = int(backbone.num_features)
    frame_pool = None
    if model_cfg.frame_pool == "tokens":
        n_tokens = getattr(getattr(backbone, "patch_embed", None), "num_patches", None)
        if n_tokens is None or not hasattr(backbone, "forward_features"):
            raise GestureError(f"frame_pool='tokens' needs a ViT with patch tokens; "
                               f"{model_cfg.backbone!r} has none (use frame_pool='cls')")
        frame_pool = FlattenTokens(int(n_tokens), dim)
    head: nn.Module
    if model_cfg.head == "mean":
        head = MeanPoolHead(dim, num_classes, dropout=model_cfg.dropout)
    else:
        head = TemporalTransformerHead(
            dim, num_classes, model_cfg.num_frames, dim=model_cfg.temporal_dim,
            depth=model_cfg.temporal_depth, num_heads=model_cfg.temporal_heads,
            mlp_ratio=model_cfg.temporal_mlp_ratio, dropout=model_cfg.dropout,
            causal=model_cfg.causal, motion=model_cfg.motion_tokens,
            delta=model_cfg.temporal_delta)
    return ViTTemporal(backbone, head, model_cfg, labels, frame_pool=frame_pool)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], model: ViTTemporal,
                    metrics: Mapping[str, Any] | None = None, **extra: Any) -> Path:
    """Write ``model`` (weights, :class:`ModelConfig`, labels, clip) plus ``metrics`` and
    any ``extra`` entries (history, train config, resume state) to ``path`` atomically.
    Only tensors and plain values, so it loads with ``weights_only=True``.
    ``extra['model_state']`` overrides the weights saved (e.g. the best epoch's)."""
    state = extra.pop("model_state", None)
    state = model.state_dict() if state is None else state
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model_state": {k: v.detach().cpu() for k, v in state.items()},
        "model_cfg": to_dict(model.cfg),
        "labels": list(model.labels),
        "clip": to_dict(model.clip),
        "data_config": {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in model.data_config.items()},
        "init_source": model.init_source,
        "metrics": dict(metrics or {}),
        "versions": {"torch": str(torch.__version__), "timm": str(timm.__version__)},
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint dict (``weights_only=True``); a one-line :class:`GestureError`
    naming the file when it is missing, unreadable or not a checkpoint of this series."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "checkpoint not found",
                          "train one with `gesture-utils train --out <file>.pt`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, pickle of other objects, ...
        lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()] or [""]
        msg = next((x for x in lines if "Unsupported global" in x), lines[0])[:160]
        raise input_error(path, f"is not a readable checkpoint ({type(e).__name__}: {msg})",
                          "re-train or re-download it; files are written by "
                          "`gesture-utils train`") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise input_error(path, "is not a gesture_utils model checkpoint",
                          "pass a .pt file written by `gesture-utils train`")
    for key in ("model_state", "model_cfg", "labels", "clip"):
        if key not in ckpt:
            raise input_error(path, f"checkpoint lacks {key!r}; {RETRAIN}")
    return ckpt


def stored_config(path: str | os.PathLike[str], cls: type, data: Any):
    """The config ``cls`` recorded in the checkpoint at ``path``; a one-line
    :class:`GestureError` when its fields are not exactly this package's."""
    try:
        return from_dict(cls, dict(data))
    except (GestureError, TypeError, ValueError) as e:
        raise input_error(path, f"stored config does not load ({e}); {RETRAIN}") from None


def _check_data(path: Path, stored: Any, want: Mapping[str, Any]) -> None:
    if not isinstance(stored, Mapping):
        raise input_error(path, f"does not record the settings of the data it was trained on; {RETRAIN}")
    diff = sorted(k for k in set(stored) | set(want) if stored.get(k) != want.get(k))
    if diff:
        what = ", ".join(f"{k}={stored.get(k)!r} (now {want.get(k)!r})" for k in diff[:3])
        raise input_error(path, f"trained on data generated with other settings: {what}; {RETRAIN}")


def load_checkpoint(path: str | os.PathLike[str], expected_labels: Sequence[str] | None = None,
                    data_config: Mapping[str, Any] | None = None,
                    map_location: str | torch.device = "cpu") -> tuple[ViTTemporal, dict[str, Any]]:
    """Rebuild the model stored at ``path``: returns ``(model in eval mode, info)``.

    ``info`` holds ``labels``, ``clip`` (:class:`ClipConfig`), ``model_cfg``
    (:class:`ModelConfig`), ``metrics`` and every other stored entry (``history``,
    ``train_cfg``, ``epoch``...).  Loading uses ``torch.load(weights_only=True)`` and no
    download.  A checkpoint that does not load (missing or unknown config fields, weights
    of other shapes), whose labels differ from ``expected_labels``, or that was trained on
    data other than ``data_config`` (:func:`gesture_utils.generation.dataset_config`)
    raises a one-line :class:`GestureError` naming the file.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    labels = [str(x) for x in ckpt["labels"]]
    if expected_labels is not None and list(expected_labels) != labels:
        raise input_error(path, f"was trained for labels {labels}, not {list(expected_labels)}",
                          "use a checkpoint trained on this dataset or re-train")
    cfg = stored_config(path, ModelConfig, ckpt["model_cfg"])
    clip = stored_config(path, ClipConfig, ckpt["clip"])
    if data_config is not None:
        _check_data(path, ckpt.get("dataset_config"), data_config)
    with warnings.catch_warnings():  # rebuilt without downloads, then filled in
        warnings.simplefilter("ignore", PretrainedFallbackWarning)
        model = build_model(replace(cfg, pretrained=False, weights=None), len(labels), labels=labels)
    try:
        model.load_state_dict(ckpt["model_state"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:200]
        raise input_error(path, f"weights do not fit the stored model config ({first}); {RETRAIN}") from None
    model.cfg, model.clip = cfg, clip
    model.backbone.init_source = str(ckpt.get("init_source", "checkpoint"))
    model.to(map_location).eval()
    info = {k: v for k, v in ckpt.items() if k not in ("model_state", "train_state")}
    info.update(labels=labels, clip=clip, model_cfg=cfg, path=str(path))
    return model, info


__all__ = [
    "CHECKPOINT_FORMAT",
    "FrameStandardize",
    "GESTURE_VITS",
    "HEADS",
    "MeanPoolHead",
    "PretrainedFallbackWarning",
    "TemporalTransformerHead",
    "ViTTemporal",
    "build_backbone",
    "build_model",
    "check_model_config",
    "clip_config_for",
    "stored_config",
    "count_parameters",
    "load_backbone_weights",
    "load_checkpoint",
    "read_checkpoint",
    "save_backbone_weights",
    "save_checkpoint",
]
