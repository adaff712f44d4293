"""gesture_utils.attention against PyTorch/timm and known values (notebook 02)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from timm.layers import Attention, PatchEmbed
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from gesture_utils.attention import (
    LearnedPositions,
    MultiHeadAttention,
    attention_rollout,
    capture_attention,
    fit_exponent,
    patch_grid,
    patchify,
    peak_memory_bytes,
    scaled_dot_product_attention,
    sinusoidal_positions,
    unpatchify,
)
from gesture_utils.errors import GestureError

ATOL = 1e-5


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _qkv(gen, B=2, H=3, L=5, S=7, d=8):
    return (torch.randn(B, H, L, d, generator=gen), torch.randn(B, H, S, d, generator=gen),
            torch.randn(B, H, S, d, generator=gen))


# ---------------------------------------------------------------- scaled dot-product


@pytest.mark.parametrize("case", ["plain", "bool", "float", "scale", "no_heads"])
def test_sdpa_matches_torch(gen, case):
    q, k, v = _qkv(gen)
    kwargs, theirs = {}, {}
    if case == "bool":
        m = torch.rand(2, 1, 5, 7, generator=gen) > 0.3
        m[..., 0] = True                                   # every query keeps one key
        kwargs, theirs = {"mask": m}, {"attn_mask": m}
    elif case == "float":
        m = torch.randn(5, 7, generator=gen)
        kwargs, theirs = {"mask": m}, {"attn_mask": m}
    elif case == "scale":
        kwargs, theirs = {"scale": 0.3}, {"scale": 0.3}
    elif case == "no_heads":
        q, k, v = q[0, 0], k[0, 0], v[0, 0]                 # plain (L, d)
    out, w = scaled_dot_product_attention(q, k, v, **kwargs)
    ref = F.scaled_dot_product_attention(q, k, v, **theirs)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-4)
    assert w.shape == (*q.shape[:-1], k.shape[-2])
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_sdpa_causal_matches_torch_and_hides_the_future(gen):
    q, k, v = _qkv(gen, L=6, S=6)
    out, w = scaled_dot_product_attention(q, k, v, causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True),
                               atol=ATOL, rtol=1e-4)
    assert torch.all(w.triu(diagonal=1) == 0)
    assert torch.allclose(w[..., 0, 0], torch.ones(()))   # first token only sees itself


def test_sdpa_causal_combined_with_padding_mask(gen):
    q, k, v = _qkv(gen, L=6, S=6)
    pad = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    pad[1, ..., 4:] = False                                # sample 1 has 2 padded frames
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    out, w = scaled_dot_product_attention(q, k, v, mask=pad, causal=True)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=pad & causal)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-4)
    assert torch.all(w[1, ..., 4:] == 0)


def test_sdpa_fully_masked_row_is_zero_like_torch(gen):
    q, k, v = _qkv(gen, B=1, H=1, L=3, S=3)
    m = torch.ones(3, 3, dtype=torch.bool)
    m[1] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=m)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    assert not torch.isnan(out).any()
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-4)
    assert torch.all(w[..., 1, :] == 0)


def test_sdpa_worked_example_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    out, w = scaled_dot_product_attention(q, k, v)
    e = math.exp(1 / math.sqrt(2))                         # scores 1/sqrt(2) and 0
    expected_w = torch.tensor([[e / (e + 1), 1 / (e + 1)]])
    torch.testing.assert_close(w, expected_w)
    torch.testing.assert_close(out, expected_w * 10)


def test_sdpa_rejects_mismatched_dims(gen):
    with pytest.raises(ValueError, match="last dim"):
        scaled_dot_product_attention(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4))


# ---------------------------------------------------------------- multi-head


def _pair(E=16, H=4, bias=True):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(E, H, batch_first=True, bias=bias).eval()
    with torch.no_grad():                                  # non-zero biases, so they are tested
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = MultiHeadAttention(E, H, bias=bias).load_from_torch(theirs).eval()
    return ours, theirs


@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention_matches_torch(average, bias):
    ours, theirs = _pair(bias=bias)
    x = torch.randn(3, 5, 16)
    o1, w1 = ours(x, average_attn_weights=average)
    o2, w2 = theirs(x, x, x, need_weights=True, average_attn_weights=average)
    torch.testing.assert_close(o1, o2, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(w1, w2, atol=ATOL, rtol=1e-4)
    assert w1.shape == ((3, 5, 5) if average else (3, 4, 5, 5))


def test_mha_cross_attention_and_masks_match_torch():
    ours, theirs = _pair()
    x, mem = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 4:] = True                                      # True = padding, torch convention
    forbid = torch.zeros(4, 6, dtype=torch.bool)
    forbid[:, 1] = True                                    # nobody may look at key 1
    o1, w1 = ours(x, mem, mem, key_padding_mask=pad, attn_mask=forbid, average_attn_weights=False)
    o2, w2 = theirs(x, mem, mem, key_padding_mask=pad, attn_mask=forbid,
                    average_attn_weights=False)
    torch.testing.assert_close(o1, o2, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(w1, w2, atol=ATOL, rtol=1e-4)
    assert torch.all(w1[0, ..., 4:] == 0) and torch.all(w1[..., 1] == 0)


def test_mha_causal_matches_torch_float_mask():
    ours, theirs = _pair()
    x = torch.randn(2, 5, 16)
    causal = nn.Transformer.generate_square_subsequent_mask(5)   # float, -inf above diagonal
    o1, w1 = ours(x, causal=True)
    o2, w2 = theirs(x, x, x, attn_mask=causal)
    torch.testing.assert_close(o1, o2, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(w1, w2, atol=ATOL, rtol=1e-4)
    o3, _ = ours(x, attn_mask=causal)
    torch.testing.assert_close(o3, o2, atol=ATOL, rtol=1e-4)


def test_mha_load_from_torch_rejects_other_sizes():
    with pytest.raises(GestureError, match="sizes differ"):
        MultiHeadAttention(16, 2).load_from_torch(nn.MultiheadAttention(16, 4))


# ---------------------------------------------------------------- positions


def test_sinusoidal_known_values_and_relative_shift():
    P = sinusoidal_positions(50, 8)
    assert P.shape == (50, 8)
    torch.testing.assert_close(P[0], torch.tensor([0.0, 1.0] * 4))
    t = torch.arange(50, dtype=torch.float32)
    torch.testing.assert_close(P[:, 0], torch.sin(t))
    torch.testing.assert_close(P[:, 3], torch.cos(t / 10000 ** (2 / 8)))
    # P[t + k] is a rotation of P[t] that depends only on k
    k = 7
    for i in range(4):
        w = 10000 ** (-2 * i / 8)
        c, s = math.cos(k * w), math.sin(k * w)
        rot = torch.tensor([[c, -s], [s, c]])
        torch.testing.assert_close(P[k:, 2 * i:2 * i + 2], P[:-k, 2 * i:2 * i + 2] @ rot,
                                   atol=1e-5, rtol=1e-5)
    assert torch.cdist(P, P).add(torch.eye(50)).min() > 0.1   # every position distinct
    with pytest.raises(ValueError):
        sinusoidal_positions(4, 7)


def test_learned_positions_add_per_position():
    pos = LearnedPositions(10, 4)
    x = torch.zeros(2, 6, 4)
    torch.testing.assert_close(pos(x), pos.weight[:, :6].expand(2, 6, 4))
    assert pos.weight.requires_grad and pos.weight[0, 0].ne(pos.weight[0, 1]).any()
    with pytest.raises(ValueError):
        pos(torch.zeros(1, 11, 4))


# ---------------------------------------------------------------- patches


def test_patchify_order_and_roundtrip(gen):
    x = torch.randn(2, 3, 32, 48, generator=gen)
    tokens = patchify(x, 16)
    assert tokens.shape == (2, 6, 3 * 16 * 16) and patch_grid(32, 48, 16) == (2, 3)
    torch.testing.assert_close(tokens[:, 4], x[:, :, 16:32, 16:32].flatten(1))  # row 1, col 1
    torch.testing.assert_close(unpatchify(tokens, 16, 32, 48), x)
    with pytest.raises(ValueError):
        patchify(torch.zeros(1, 3, 30, 32), 16)


def test_patchify_equals_conv_and_timm_patch_embed(gen):
    embed = PatchEmbed(img_size=64, patch_size=16, in_chans=3, embed_dim=24)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    w, b = embed.proj.weight, embed.proj.bias
    ours = patchify(x, 16) @ w.flatten(1).T + b
    conv = F.conv2d(x, w, b, stride=16).flatten(2).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours, conv, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours, embed(x), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- attention maps


def _tiny_vit():
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=16, embed_dim=32, depth=2, num_heads=4,
                             num_classes=3).eval()


def _manual_maps(module: nn.Module, run) -> list[torch.Tensor]:
    """Recompute each timm Attention's weights from its qkv projection (independent path)."""
    maps, handles = [], []

    def pre(attn: Attention, args):
        (x,) = args
        B, N, _ = x.shape
        qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
        maps.append(((q @ k.transpose(-2, -1)) * attn.scale).softmax(-1))

    for m in module.modules():
        if isinstance(m, Attention):
            handles.append(m.register_forward_pre_hook(pre))
    with torch.no_grad():
        out = run()
    for h in handles:
        h.remove()
    return out, maps


def test_capture_on_vit_matches_manual_and_keeps_output(gen):
    vit = _tiny_vit()
    x = torch.randn(2, 3, 32, 32, generator=gen)
    ref_out, manual = _manual_maps(vit, lambda: vit(x))
    flags = [m.fused_attn for m in vit.modules() if isinstance(m, Attention)]
    with torch.no_grad(), capture_attention(vit) as cap:
        out = vit(x)
    assert len(cap) == 2 and cap.names == ["blocks.0.attn", "blocks.1.attn"]
    for got, want in zip(cap.maps, manual, strict=True):
        assert got.shape == (2, 4, 5, 5)                   # CLS + 2x2 patches
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got.sum(-1), torch.ones(2, 4, 5))
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    # the model is back to how it was: fused flag restored, no hooks left behind
    assert [m.fused_attn for m in vit.modules() if isinstance(m, Attention)] == flags
    assert all(not m.attn_drop._forward_hooks for m in vit.modules() if isinstance(m, Attention))


def test_capture_restores_model_after_an_error():
    vit = _tiny_vit()
    attn = vit.blocks[0].attn
    attn.fused_attn = True
    with pytest.raises(RuntimeError), capture_attention(vit):
        assert attn.fused_attn is False
        vit(torch.zeros(1, 5, 32, 32))                     # wrong channel count
    assert attn.fused_attn is True and not attn.attn_drop._forward_hooks


def test_capture_temporal_blocks_of_a_part_of_the_model(gen):
    torch.manual_seed(0)
    temporal = nn.Sequential(*[Block(dim=16, num_heads=2) for _ in range(3)]).eval()
    frames = nn.Linear(10, 16)
    seq = torch.randn(2, 8, 10, generator=gen)             # (B, T, features)
    ref_out, manual = _manual_maps(temporal, lambda: temporal(frames(seq)))
    with torch.no_grad(), capture_attention(temporal) as cap:
        out = temporal(frames(seq))
    maps = cap.maps
    assert [m.shape for m in maps] == [(2, 2, 8, 8)] * 3   # T x T per layer and head
    for got, want in zip(maps, manual, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_capture_on_the_gesture_model_space_and_time(gen, causal):
    from gesture_utils.config import ModelConfig
    from gesture_utils.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(num_frames=4, causal=causal), num_classes=3).eval()
    size = model.clip.image_size
    clips = torch.randn(2, 4, 3, size, size, generator=gen)         # (B, T, C, H, W)
    with torch.no_grad():
        plain = model(clips)
        with capture_attention(model.backbone) as space:
            emb = model.encode_frames(clips)
        with capture_attention(model.head) as time_:
            logits = model.classify_embeddings(emb)
    torch.testing.assert_close(logits, plain, atol=1e-5, rtol=1e-5)
    grid = model.backbone.patch_embed.grid_size
    n_tokens = model.backbone.num_prefix_tokens + grid[0] * grid[1]
    assert {m.shape[0] for m in space.maps} == {2 * 4}             # every frame of every clip
    assert all(m.shape[-2:] == (n_tokens, n_tokens) for m in space.maps)
    assert len(time_.maps) == model.cfg.temporal_depth
    assert all(m.shape == (2, model.cfg.temporal_heads, 5, 5) for m in time_.maps)  # T + CLS
    for m in [*space.maps, *time_.maps]:
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]))
    above = torch.ones(5, 5, dtype=torch.bool).triu(diagonal=1)      # key later than query
    future = torch.stack(time_.maps)[..., above]
    assert (future == 0).all() if causal else (future > 0).all()   # causal: no look-ahead


def test_capture_without_attention_modules_is_a_clear_error():
    with pytest.raises(GestureError, match="no Attention module"), capture_attention(nn.Linear(2, 2)):
        pass


# ---------------------------------------------------------------- rollout


def test_rollout_uniform_attention_known_value():
    N = 4
    uniform = torch.full((1, 2, N, N), 1 / N)
    step = (torch.full((N, N), 1 / N) + torch.eye(N)) / 2
    torch.testing.assert_close(attention_rollout([uniform]), step[None])
    torch.testing.assert_close(attention_rollout([uniform] * 3), (step @ step @ step)[None])


def test_rollout_rows_sum_to_one_and_mixes_heads_by_their_mean(gen):
    maps = [torch.rand(2, 3, 6, 6, generator=gen).softmax(-1) for _ in range(4)]
    r = attention_rollout(maps)
    assert r.shape == (2, 6, 6) and (r >= 0).all()
    torch.testing.assert_close(r.sum(-1), torch.ones(2, 6))
    averaged = [m.mean(1, keepdim=True) for m in maps]        # one head = the mean of three
    torch.testing.assert_close(attention_rollout(averaged), r)
    with pytest.raises(ValueError, match="at least one"):
        attention_rollout([])


# ---------------------------------------------------------------- cost


def test_peak_memory_sees_the_weight_matrix_and_exponent_fit():
    q = torch.randn(1, 2, 256, 16)
    weights_bytes = 1 * 2 * 256 * 256 * 4
    peak = peak_memory_bytes(lambda: scaled_dot_product_attention(q, q, q))
    assert weights_bytes <= peak <= 6 * weights_bytes
    assert fit_exponent([10, 100, 1000], [3e2, 3e4, 3e6]) == pytest.approx(2.0)


def test_attention_cost_rows_hold_times_and_the_weight_matrix_size():
    from gesture_utils.attention import attention_cost

    rows = attention_cost([32, 64], dim=8, heads=2, repeats=2)
    assert [r["length"] for r in rows] == [32.0, 64.0]
    for r in rows:
        assert r["weights_mb"] == 2 * r["length"] ** 2 * 4 / 2**20
        assert r["ours_ms"] > 0 and r["torch_ms"] > 0
        assert r["ours_mb"] >= r["weights_mb"]              # ours stores the L x L weights
