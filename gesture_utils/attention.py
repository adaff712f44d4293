"""Attention from scratch, positions, patches and attention maps (notebook 02).

Everything here is written out so a learner can read it line by line, and each piece is
tested against the library version it re-derives (``tests/test_attention.py``):

* :func:`scaled_dot_product_attention` -- scores, scaling, masks, softmax, weighted sum;
  equal to ``torch.nn.functional.scaled_dot_product_attention`` but also returns the
  weights.
* :class:`MultiHeadAttention` -- several heads on top of it, with the same parameter layout
  as ``torch.nn.MultiheadAttention`` (:meth:`MultiHeadAttention.load_from_torch`).
* :func:`sinusoidal_positions`, :class:`LearnedPositions` -- telling tokens apart by place.
* :func:`patchify`, :func:`unpatchify` -- an image as a sequence of patch tokens, the
  input side of a ViT (equal to a strided ``Conv2d`` / timm ``PatchEmbed``).
* :func:`capture_attention` -- the softmax weights of every timm
  ``Attention`` module during a forward pass (a ViT, or the temporal encoder of the
  gesture model of notebook 03), without changing the model's output.
* :func:`attention_rollout` -- Abnar & Zuidema (2020): attention propagated through layers.
* :func:`attention_cost` -- time and memory of attention vs sequence length.

Shapes follow PyTorch: ``(..., L, d)`` for queries, ``(..., S, d)`` for keys/values,
weights ``(..., L, S)``; batch-first ``(B, L, E)`` for modules.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gesture_utils.errors import GestureError, input_error
from gesture_utils.runtime import time_calls

# ---------------------------------------------------------- Scaled dot-product attention


def _merge_masks(
    scores: Tensor, mask: Tensor | None, causal: bool
) -> tuple[Tensor, Tensor | None]:
    """``scores`` (..., L, S) with ``mask`` and the causal mask applied, and the boolean
    "allowed" tensor (None when nothing was forbidden)."""
    allowed: Tensor | None = None
    L, S = scores.shape[-2], scores.shape[-1]
    if causal:
        # query i may look at keys 0..i (top-left aligned, as torch's is_causal)
        allowed = torch.ones(L, S, dtype=torch.bool, device=scores.device).tril()
    if mask is not None:
        if mask.dtype == torch.bool:
            allowed = mask if allowed is None else allowed & mask
        else:
            scores = scores + mask.to(scores.dtype)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores, allowed


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Attention written out: ``softmax(q k^T * scale + mask) v`` for queries ``(..., L, d)``
    and keys/values ``(..., S, d)``. ``mask`` broadcasts to ``(..., L, S)``: boolean with
    True = may attend (SDPA's convention), or float, added to the scores. ``causal``: query
    ``i`` sees keys ``0..i``; ``scale`` defaults to ``1/sqrt(d)``. Returns ``(out, weights)``;
    a row whose keys are all masked gets weight 0 and output 0, as in PyTorch."""
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same last dim, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same length, got {k.shape[-2]} and {v.shape[-2]}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale          # (..., L, S) similarity
    scores, allowed = _merge_masks(scores, mask, causal)
    weights = scores.softmax(dim=-1)                     # rows sum to 1
    if allowed is not None or mask is not None:          # a row with every key masked
        dead = torch.isneginf(scores).all(dim=-1, keepdim=True)  # gives NaN: make it 0
        weights = weights.masked_fill(dead, 0.0)
    return weights @ v, weights


# ------------------------------------------------------------------ Multi-head attention


class MultiHeadAttention(nn.Module):
    """Multi-head attention on :func:`scaled_dot_product_attention`, batch first, with the
    parameters and forward arguments of ``torch.nn.MultiheadAttention`` (so
    :meth:`load_from_torch` copies its weights): ``key_padding_mask`` ``(B, S)`` and a
    boolean ``attn_mask`` use True = *not allowed*, the opposite of SDPA's convention."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape                                    # (B, L, E) -> (B, h, L, d)
        return x.view(B, L, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = True,
        average_attn_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """``query`` ``(B, L, E)``, ``key``/``value`` ``(B, S, E)`` (default: self-attention)
        -> ``(out, weights)``, weights averaged over heads unless ``average_attn_weights``
        is False, None when ``need_weights`` is False."""
        key = query if key is None else key
        value = key if value is None else value
        B, L, _ = query.shape
        S = key.shape[1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
        q = self._split_heads(F.linear(query, w_q, b_q))
        k = self._split_heads(F.linear(key, w_k, b_k))
        v = self._split_heads(F.linear(value, w_v, b_v))

        allowed: Tensor | None = None                         # SDPA convention: True = keep
        additive: Tensor | None = None
        if attn_mask is not None:
            if attn_mask.dim() == 3:                          # (B*h, L, S) -> (B, h, L, S)
                attn_mask = attn_mask.view(B, self.num_heads, L, S)
            if attn_mask.dtype == torch.bool:
                allowed = ~attn_mask
            else:
                additive = attn_mask
        if key_padding_mask is not None:
            if key_padding_mask.dtype == torch.bool:
                keep = ~key_padding_mask[:, None, None, :]     # (B, 1, 1, S)
                allowed = keep if allowed is None else allowed & keep
            else:
                pad = key_padding_mask[:, None, None, :].to(q.dtype)
                additive = pad if additive is None else additive + pad
        if allowed is not None and additive is not None:
            additive = additive.masked_fill(~allowed, float("-inf"))
            allowed = None
        mask = allowed if allowed is not None else additive

        out, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dim))
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` with the same sizes."""
        problems = []
        if mha.embed_dim != self.embed_dim or mha.num_heads != self.num_heads:
            problems.append(f"sizes differ: theirs E={mha.embed_dim}, heads={mha.num_heads}; "
                            f"ours E={self.embed_dim}, heads={self.num_heads}")
        if not mha._qkv_same_embed_dim:
            problems.append("kdim/vdim differ from embed_dim (separate q/k/v weights)")
        if (mha.in_proj_bias is None) != (self.in_proj_bias is None):
            problems.append("one has biases and the other not")
        if mha.bias_k is not None or mha.add_zero_attn:
            problems.append("add_bias_kv/add_zero_attn are not supported")
        if problems:
            raise input_error(None, "cannot copy nn.MultiheadAttention: " + "; ".join(problems),
                              "build MultiHeadAttention with the same embed_dim, num_heads and bias")
        self.in_proj_weight.copy_(mha.in_proj_weight)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if self.in_proj_bias is not None:
            self.in_proj_bias.copy_(mha.in_proj_bias)
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


# ----------------------------------------------------------------------------- Positions


def sinusoidal_positions(length: int, dim: int, base: float = 10000.0) -> Tensor:
    """Fixed positions of Vaswani et al. (2017), ``(length, dim)``: ``P[t, 2i] =
    sin(t / base^(2i/dim))``, ``P[t, 2i+1] = cos(...)``, so ``P[t + k]`` is a fixed
    rotation of ``P[t]``."""
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    pos = torch.arange(length, dtype=torch.float32)[:, None]          # (L, 1)
    freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim/2,)
    angles = pos * freq                                                # (L, dim/2)
    out = torch.empty(length, dim)
    out[:, 0::2] = angles.sin()
    out[:, 1::2] = angles.cos()
    return out


class LearnedPositions(nn.Module):
    """One trainable vector per position, added to the tokens (ViT style).

    ``forward(x (B, L, D)) -> x + P[:L]`` for ``L <= max_length``.
    """

    def __init__(self, max_length: int, dim: int, init_std: float = 0.02) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.trunc_normal_(self.weight, std=init_std)

    def forward(self, x: Tensor) -> Tensor:
        L = x.shape[1]
        if L > self.weight.shape[1]:
            raise ValueError(f"sequence of {L} tokens is longer than max_length {self.weight.shape[1]}")
        return x + self.weight[:, :L]


# ------------------------------------------------------------------------------- Patches


def patch_grid(height: int, width: int, patch: int) -> tuple[int, int]:
    """Number of patch rows and columns of an image (sizes must divide evenly)."""
    if height % patch or width % patch:
        raise ValueError(f"image {height}x{width} is not divisible into {patch}x{patch} patches")
    return height // patch, width // patch


def patchify(images: Tensor, patch: int) -> Tensor:
    """Images ``(B, C, H, W)`` -> tokens ``(B, N, C*patch*patch)``, patches row by row,
    each flattened in ``(C, py, px)`` order, a ``Conv2d`` weight's: ``patchify(x) @
    W.flatten(1).T + b`` is the stride-``patch`` convolution of a ViT patch embedding."""
    B, C, H, W = images.shape
    gh, gw = patch_grid(H, W, patch)
    x = images.reshape(B, C, gh, patch, gw, patch)
    x = x.permute(0, 2, 4, 1, 3, 5)                     # (B, gh, gw, C, p, p)
    return x.reshape(B, gh * gw, C * patch * patch)


def unpatchify(tokens: Tensor, patch: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`patchify`: ``(B, N, C*p*p)`` back to images ``(B, C, H, W)``."""
    B, N, F_ = tokens.shape
    gh, gw = patch_grid(height, width, patch)
    C = F_ // (patch * patch)
    if N != gh * gw or C * patch * patch != F_:
        raise ValueError(f"{N} tokens of {F_} features do not make a {height}x{width} image")
    x = tokens.reshape(B, gh, gw, C, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(B, C, height, width)


# --------------------------------------------------------- Attention maps of timm models


def _timm_attention_types() -> tuple[type, ...]:
    from timm.layers import Attention

    return (Attention,)


_UNSET = object()


@dataclass
class AttentionCapture:
    """What :func:`capture_attention` recorded, one entry per attention call in call
    order: ``maps[i]`` ``(B, heads, N, N)``, made by the module named ``names[i]``."""

    names: list[str] = field(default_factory=list)
    maps: list[Tensor] = field(default_factory=list)

    def clear(self) -> None:
        self.names.clear()
        self.maps.clear()

    def __len__(self) -> int:
        return len(self.maps)


@contextmanager
def capture_attention(
    module: nn.Module,
    types: Sequence[type] | None = None,
    to_cpu: bool = True,
) -> Iterator[AttentionCapture]:
    """Record the softmax weights of every timm ``Attention`` inside ``module`` (which may
    be a part of the model you call, e.g. ``model.head``)::

        with capture_attention(vit) as cap:
            vit(images)
        cap.maps  # per layer (B, heads, N, N)

    timm's fused path never stores the weights, so inside the block each module runs its
    explicit path (``fused_attn = False``) and a hook on ``attn_drop`` reads them; on exit
    hooks and flags are restored, even after an error. ``types``: other classes to hook.
    """
    types = tuple(types) if types is not None else _timm_attention_types()
    targets = [(name, m) for name, m in module.named_modules() if isinstance(m, types)]
    if not targets:
        raise GestureError(
            f"capture_attention: no {', '.join(t.__name__ for t in types)} module inside "
            f"{type(module).__name__} (pass the part of the model built from timm Blocks)"
        )
    cap = AttentionCapture()
    saved: list[tuple[nn.Module, Any]] = []
    handles = []
    try:
        for name, m in targets:
            if not hasattr(m, "attn_drop"):
                raise GestureError(f"capture_attention: {name} ({type(m).__name__}) has no attn_drop")
            saved.append((m, m.__dict__.get("fused_attn", _UNSET)))
            m.fused_attn = False

            def hook(_mod, inputs, _out, name=name):
                w = inputs[0].detach()
                cap.names.append(name)
                cap.maps.append(w.cpu() if to_cpu else w)

            handles.append(m.attn_drop.register_forward_hook(hook))
        yield cap
    finally:
        for h in handles:
            h.remove()
        for m, flag in saved:
            if flag is _UNSET:            # the flag lived on the class: drop our override
                m.__dict__.pop("fused_attn", None)
            else:
                m.fused_attn = flag


def attention_rollout(maps: Sequence[Tensor]) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): how much each output token draws on
    each *input* token after all layers.

    Per layer: the mean over heads ``A`` ``(B, N, N)``, the residual path added,
    ``(A + I) / 2``, rows renormalised; then the product ``R = A_L ... A_1``, rows summing
    to 1.
    """
    if not maps:
        raise ValueError("attention_rollout needs at least one attention map")
    result: Tensor | None = None
    for w in maps:
        a = w.float().mean(1)                                 # (B, N, N)
        a = (a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        result = a if result is None else a @ result
    return result


# ---------------------------------------------------------------------------------- Cost


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to the null device (the profiler's C++ start/stop log lines
    would otherwise land in notebook output); Python's ``sys.stderr`` object is untouched."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def peak_memory_bytes(fn: Callable[[], Any], device: str = "cpu") -> int:
    """Peak extra memory (bytes) allocated while ``fn()`` runs: CUDA's peak counter, or on a
    CPU the profiler's allocation records summed in time order."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU],
                                            profile_memory=True) as prof:
        fn()
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage),
        key=lambda e: e.time_range.end,
    )
    current = peak = 0
    for e in events:
        current += e.self_cpu_memory_usage
        peak = max(peak, current)
    return int(peak)


def attention_cost(
    lengths: Sequence[int],
    dim: int = 64,
    heads: int = 4,
    batch: int = 1,
    repeats: int = 3,
    device: str = "cpu",
    seed: int = 0,
) -> list[dict[str, float]]:
    """Time (p50 of ``repeats`` interleaved calls) and peak memory of self-attention per
    sequence length: ours (stores the ``L x L`` weights) against the fused
    ``F.scaled_dot_product_attention``. One dict per length: ``length, ours_ms,
    torch_ms, ours_mb, torch_mb, weights_mb`` (one float32 weight matrix)."""
    gen = torch.Generator().manual_seed(seed)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    rows = []
    with torch.no_grad():
        for L in lengths:
            q, k, v = (torch.randn(batch, heads, L, dim, generator=gen).to(device) for _ in range(3))

            def ours(q=q, k=k, v=v):
                return scaled_dot_product_attention(q, k, v)

            def theirs(q=q, k=k, v=v):
                return F.scaled_dot_product_attention(q, k, v)

            rows.append({
                "length": float(L),
                **{f"{k}_ms": t.p50_ms for k, t in time_calls(
                    {"ours": ours, "torch": theirs}, runs=repeats, warmup=1, sync=sync).items()},
                "ours_mb": peak_memory_bytes(ours, device) / 2**20,
                "torch_mb": peak_memory_bytes(theirs, device) / 2**20,
                "weights_mb": batch * heads * L * L * 4 / 2**20,
            })
    return rows


def fit_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """Slope of ``log(values)`` against ``log(lengths)``: ``values ~ lengths**slope``."""
    import numpy as np

    x, y = np.log(np.asarray(lengths, float)), np.log(np.maximum(np.asarray(values, float), 1e-12))
    return float(np.polyfit(x, y, 1)[0])


__all__ = [
    "AttentionCapture",
    "LearnedPositions",
    "MultiHeadAttention",
    "attention_cost",
    "attention_rollout",
    "capture_attention",
    "fit_exponent",
    "patch_grid",
    "patchify",
    "peak_memory_bytes",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
    "unpatchify",
]
