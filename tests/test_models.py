"""The ViT temporal model (gesture_utils.models): shapes, heads, order (in)sensitivity,
backbones (offline fallback, local weights), checkpoints and their refusals."""

from __future__ import annotations

import pickle
import warnings
from dataclasses import replace

import pytest
import timm
import torch
from timm.data import resolve_data_config

from gesture_utils import models
from gesture_utils.config import ClipConfig, ModelConfig
from gesture_utils.errors import GestureError
from gesture_utils.models import (
    FrameStandardize,
    MeanPoolHead,
    PretrainedFallbackWarning,
    TemporalTransformerHead,
    ViTTemporal,
    build_backbone,
    build_model,
    load_checkpoint,
    save_backbone_weights,
    save_checkpoint,
)

K, T, S = 6, 4, 32
LABELS = ["swipe_left", "swipe_right", "swipe_up", "swipe_down", "stop", "no_gesture"]
#: a small, fast configuration of the default backbone (32 px frames, 4 frames)
CFG = ModelConfig(image_size=S, num_frames=T, temporal_depth=1)


#: timm ViTs by name are shrunk to one block in these tests (speed); shapes are the same
SHALLOW = {"depth": 1}


def _model(seed: int = 0, **override) -> ViTTemporal:
    torch.manual_seed(seed)
    cfg = replace(CFG, **override)
    extra = SHALLOW if not cfg.backbone.startswith("vit_gesture") else {}
    return build_model(cfg, K, labels=LABELS, **extra).eval()


def _clip(b: int = 2, t: int = T, s: int = S, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, 3, s, s, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("override", [
    dict(head="mean"),
    dict(head="transformer"),
    dict(head="transformer", causal=True),
    dict(head="transformer", temporal_dim=64, temporal_heads=2),
    dict(head="transformer", temporal_delta=False, motion_tokens=False),
    dict(frame_pool="cls"),
    dict(image_size=None),
    dict(backbone="vit_tiny_patch16_224", image_size=S),  # any timm ViT by name
    dict(backbone="vit_tiny_patch16_224", image_size=S, frame_pool="cls"),
], ids=["mean", "transformer", "causal", "projected", "plain-tokens", "cls",
        "default-size", "timm-vit-tiny", "timm-vit-tiny-cls"])
def test_forward_shapes_and_entry_points_compose(override):
    model = _model(**override)
    s = model.clip.image_size
    x = _clip(s=s)
    emb = model.encode_frames(x)
    assert emb.shape == (2, T, model.embed_dim)
    with torch.no_grad():
        logits = model(x)
        composed = model.classify_embeddings(model.encode_frames(x))
    assert logits.shape == (2, K)
    torch.testing.assert_close(logits, composed, rtol=0, atol=0)
    # the per-frame encoder treats frames independently: frame t of a clip = that frame alone
    with torch.no_grad():
        alone = model.encode_frames(x[:, 2:3])
    torch.testing.assert_close(alone[:, 0], emb[:, 2].detach(), rtol=1e-5, atol=1e-5)


def test_shorter_clips_work_and_longer_ones_are_refused():
    model = _model()
    with torch.no_grad():
        assert model(_clip(t=T - 1)).shape == (2, K)
    with pytest.raises(GestureError, match="num_frames"):
        model(_clip(t=T + 1))


def test_clip_config_comes_from_the_backbone_data_config():
    model = _model()
    assert model.clip == ClipConfig(num_frames=T, image_size=S, mean=(0.5, 0.5, 0.5),
                                    std=(0.5, 0.5, 0.5))
    default = build_model(ModelConfig(), K)
    assert default.clip.image_size == models.GESTURE_VITS["vit_gesture_tiny"]["img_size"]
    # the model's default input is the datasets' default clip
    assert (default.clip.num_frames, default.clip.image_size) == (
        ClipConfig().num_frames, ClipConfig().image_size)
    assert default.clip.num_frames == ModelConfig().num_frames == ClipConfig().num_frames
    # a timm ViT with ImageNet normalisation: mean/std/size are timm's own resolution
    deit = build_model(ModelConfig(backbone="deit_tiny_patch16_224", image_size=48,
                                   num_frames=T, temporal_depth=1), K, **SHALLOW)
    ref = resolve_data_config({"input_size": (3, 48, 48)}, model=deit.backbone)
    assert deit.clip.mean == pytest.approx(ref["mean"]) and deit.clip.std == pytest.approx(ref["std"])
    assert deit.clip.image_size == 48 and deit.clip.mean != (0.5, 0.5, 0.5)


def test_frame_embedding_comes_from_the_backbones_normed_tokens():
    x = _clip()
    tokens_model = _model()
    cls_model = _model(frame_pool="cls")
    frames = FrameStandardize()(x.flatten(0, 1))  # the default frame norm comes first
    with torch.no_grad():
        # default: every patch token after the final norm, flattened in grid order
        feats = tokens_model.backbone.forward_features(frames)  # (B*T, 1+P, D)
        expected = tokens_model.frame_pool(feats[:, 1:]).unflatten(0, (2, T))
        torch.testing.assert_close(tokens_model.encode_frames(x), expected)
        # "cls": timm's own pooling = the CLS token after the final norm
        feats = cls_model.backbone.forward_features(frames)
        torch.testing.assert_close(cls_model.encode_frames(x), feats[:, 0].unflatten(0, (2, T)))
    # the conv stem reaches the same token grid as a 16 px patchify convolution
    grid = tokens_model.backbone.patch_embed.grid_size
    assert feats.shape[1] == 1 + grid[0] * grid[1] == 1 + (S // 16) ** 2


def test_conv_stem_reaches_the_patch_grid():
    from gesture_utils.models import ConvStemPatchEmbed

    x = torch.randn(2, 3, 64, 64)
    stem = ConvStemPatchEmbed(img_size=64, patch_size=16, embed_dim=32)
    assert stem(x).shape == (2, 16, 32)  # (B, 4 x 4 tokens, D)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in stem.proj) == 4 + 1  # 4 stride-2 + 1x1
    with pytest.raises(GestureError, match="patch"):
        ConvStemPatchEmbed(img_size=64, patch_size=12, embed_dim=32)


def test_bad_settings_are_refused():
    with pytest.raises(GestureError, match="head"):
        build_model(replace(CFG, head="lstm"), K)
    with pytest.raises(GestureError, match="frame_pool"):
        build_model(replace(CFG, frame_pool="spatial"), K)
    with pytest.raises(GestureError, match="unknown backbone"):
        build_model(replace(CFG, backbone="vit_does_not_exist"), K)


# --------------------------------------------------------------------------- order


def test_mean_head_cannot_tell_a_clip_from_its_time_reversal_but_the_transformer_can():
    """The article's flaw, exactly: averaging over time forgets the order of the frames."""
    x = _clip(b=3)
    rev = x.flip(1)
    mean_model = _model(head="mean")
    trans_model = _model(head="transformer")
    with torch.no_grad():
        # same frame embeddings, reversed order
        e, e_rev = mean_model.encode_frames(x), mean_model.encode_frames(rev)
        torch.testing.assert_close(e_rev, e.flip(1), rtol=1e-6, atol=1e-6)
        a, b = mean_model(x), mean_model(rev)
        ta, tb = trans_model(x), trans_model(rev)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)  # identical up to float rounding
    # even untrained, the transformer's answer depends on the order (learned positions),
    # by far more than float rounding
    assert (ta - tb).abs().max() > 100 * max((a - b).abs().max().item(), 1e-7)
    # on identical embeddings the mean head is exactly order-blind as a function
    emb = torch.randn(2, T, mean_model.embed_dim)
    with torch.no_grad():
        torch.testing.assert_close(mean_model.classify_embeddings(emb),
                                   mean_model.classify_embeddings(emb.flip(1)),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("delta", [True, False])
def test_causal_head_outputs_do_not_depend_on_future_frames(delta):
    head = TemporalTransformerHead(32, K, num_frames=6, depth=2, num_heads=4, causal=True,
                                   delta=delta).eval()
    emb = torch.randn(2, 6, 32)
    changed = emb.clone()
    changed[:, 4:] = torch.randn(2, 2, 32)
    with torch.no_grad():
        a, b = head.encode(emb), head.encode(changed)
        torch.testing.assert_close(a[:, :4], b[:, :4])
        assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-3
        # the answer after 4 frames does not depend on what comes later
        torch.testing.assert_close(head(emb[:, :4]), head(changed[:, :4]))
    # a non-causal head does look ahead
    full = TemporalTransformerHead(32, K, num_frames=6, depth=2, num_heads=4, delta=delta).eval()
    with torch.no_grad():
        assert (full.encode(emb)[:, :4] - full.encode(changed)[:, :4]).abs().max() > 1e-3


def test_temporal_head_is_built_from_timm_blocks_for_attention_capture():
    from gesture_utils.attention import capture_attention

    model = _model()
    with capture_attention(model.head) as cap, torch.no_grad():
        model(_clip())
    # one temporal block: (B, heads, T+1, T+1) with the CLS token appended last
    assert len(cap.maps) == 1 and cap.maps[0].shape == (2, CFG.temporal_heads, T + 1, T + 1)
    torch.testing.assert_close(cap.maps[0].sum(-1), torch.ones(2, CFG.temporal_heads, T + 1))


def test_temporal_tokens_match_a_hand_computation():
    """token_t = proj(LN(e_t - mean)) + context(mean) + motion(g * (e_t - e_{t-1})) + pos_t"""
    head = TemporalTransformerHead(16, K, num_frames=5, depth=1, num_heads=4, delta=True).eval()
    emb = torch.randn(2, 5, 16)
    mean = emb.mean(1, keepdim=True)
    prev = torch.cat([emb[:, :1], emb[:, :-1]], 1)
    ln = torch.nn.functional.layer_norm(emb - mean, (16,), head.delta_norm.weight,
                                        head.delta_norm.bias)
    expected = (head.proj(ln) + head.context(mean) + head.motion(head.motion_gain * (emb - prev))
                + head.pos_embed)
    with torch.no_grad():
        torch.testing.assert_close(head.tokens(emb), expected)
    # reversing time negates the motion input: d'_t = -d_{T-t}
    rev = emb.flip(1)
    d = emb - prev
    d_rev = rev - torch.cat([rev[:, :1], rev[:, :-1]], 1)
    torch.testing.assert_close(d_rev[:, 1:], -d.flip(1)[:, :-1])


def test_mean_pool_head_matches_a_hand_computation():
    head = MeanPoolHead(8, 3).eval()
    emb = torch.randn(2, 5, 8)
    torch.testing.assert_close(head(emb), emb.mean(1) @ head.fc.weight.T + head.fc.bias)


# --------------------------------------------------------------------------- backbones


def _offline(monkeypatch, tmp_path):
    """No hub and an empty weight cache, whatever machine the tests run on."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_pretrained_offline_falls_back_to_random_init_loudly(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    with pytest.warns(PretrainedFallbackWarning) as record:
        model = build_model(replace(CFG, backbone="vit_tiny_patch16_224", pretrained=True), K,
                            **SHALLOW)
    message = str(record[0].message)
    assert "vit_tiny_patch16_224" in message and "RANDOM" in message and "weights=" in message
    assert model.init_source.startswith("scratch")
    with torch.no_grad():
        assert model(_clip()).shape == (2, K)


def test_series_configs_have_no_pretrained_weights_and_say_so():
    with pytest.warns(PretrainedFallbackWarning, match="from-scratch"):
        backbone = build_backbone("vit_gesture_tiny", pretrained=True, image_size=S)
    assert backbone.init_source.startswith("scratch")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_initialises_the_backbone(tmp_path, suffix):
    source = _model(seed=1)
    path = save_backbone_weights(source, tmp_path / f"backbone{suffix}")
    fresh = _model(seed=2)
    assert not torch.equal(fresh.backbone.pos_embed, source.backbone.pos_embed)
    loaded = _model(seed=2, weights=str(path))
    for (name, a), (_, b) in zip(source.backbone.state_dict().items(),
                                 loaded.backbone.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert loaded.init_source == f"file:{path.name}"
    x = _clip()[:, 0]
    with torch.no_grad():
        torch.testing.assert_close(loaded.backbone.forward_features(x),
                                   source.backbone.forward_features(x))


def test_timm_style_pretrained_cfg_overlay_file_is_accepted(tmp_path):
    source = _model(seed=1)
    path = save_backbone_weights(source, tmp_path / "w.pth")
    backbone = build_backbone("vit_gesture_tiny", pretrained=True, image_size=S,
                              pretrained_cfg_overlay=dict(file=str(path)))
    assert torch.equal(backbone.pos_embed, source.backbone.pos_embed)
    assert backbone.init_source == "file:w.pth"


def test_checkpoint_file_can_seed_a_new_models_backbone(tmp_path):
    source = _model(seed=1)
    ckpt = save_checkpoint(tmp_path / "m.pt", source)
    new = _model(seed=3, weights=str(ckpt), head="mean")
    assert torch.equal(new.backbone.cls_token, source.backbone.cls_token)


def test_weights_of_another_architecture_are_refused(tmp_path):
    other = build_backbone("vit_tiny_patch16_224", image_size=S, depth=1)
    path = save_backbone_weights(other, tmp_path / "small.pth")
    with pytest.raises(GestureError, match="small.pth"):
        _model(weights=str(path))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a weights file")
    with pytest.raises(GestureError, match="junk.pth"):
        _model(weights=str(junk))
    with pytest.raises(GestureError, match="not found"):
        _model(weights=str(tmp_path / "missing.pth"))


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path):
    model = _model(seed=4)
    path = save_checkpoint(tmp_path / "ckpt.pt", model, metrics={"val_acc": 0.5}, history=[])
    assert not list(tmp_path.glob(".*.tmp*"))  # atomic write leaves no temp file
    loaded, info = load_checkpoint(path, expected_labels=LABELS)
    x = _clip()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert info["labels"] == LABELS and info["clip"] == model.clip
    assert info["model_cfg"] == CFG and info["metrics"] == {"val_acc": 0.5}
    assert loaded.labels == LABELS and loaded.clip == model.clip and not loaded.training
    # everything stored loads with weights_only=True
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == models.CHECKPOINT_FORMAT


def test_frame_norm_standardises_each_frame_and_channel_on_its_own():
    x = _clip(b=3).flatten(0, 1) * torch.tensor([0.5, 3.0, 1.0]).view(1, 3, 1, 1) + 5.0
    y = FrameStandardize()(x)
    torch.testing.assert_close(y.mean(dim=(-2, -1)), torch.zeros(x.shape[:2]), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(-2, -1), unbiased=False), torch.ones(x.shape[:2]),
                               atol=1e-3, rtol=0)
    flat = torch.full((2, 3, 8, 8), 0.7)  # a uniform frame stays finite: (about) zeros
    assert FrameStandardize()(flat).abs().max() < 1e-3


@pytest.mark.parametrize("frame_norm", [True, False])
def test_frame_norm_makes_the_model_blind_to_each_frames_colour_cast(frame_norm):
    """A per-frame, per-channel gain and offset (a new camera's white balance, a
    flickering light) changes nothing the backbone sees -- only with the frame norm."""
    model = _model(seed=2, frame_norm=frame_norm)
    x = _clip()
    g = torch.Generator().manual_seed(3)
    gain = 0.3 + 2 * torch.rand(2, T, 3, 1, 1, generator=g)
    shift = torch.randn(2, T, 3, 1, 1, generator=g)
    with torch.no_grad():
        a, b = model(x), model(x * gain + shift)
    assert torch.allclose(a, b, atol=1e-4) == frame_norm


@pytest.mark.parametrize("edit", ["missing", "unknown"])
def test_a_checkpoint_whose_config_does_not_load_says_retrain(tmp_path, edit):
    path = save_checkpoint(tmp_path / "old.pt", _model(seed=5))
    raw = torch.load(path, weights_only=True)
    if edit == "missing":
        del raw["model_cfg"]["frame_norm"]
    else:
        raw["model_cfg"]["spatial_heads"] = 8
    torch.save(raw, path)
    with pytest.raises(GestureError, match=f"{edit}.*retrain it") as err:
        load_checkpoint(path)
    assert "old.pt" in str(err.value) and "\n" not in str(err.value)
    assert "make tutorial or notebook 03" in str(err.value)


def test_checkpoint_mismatches_are_refused_in_one_line(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pt", _model())
    with pytest.raises(GestureError) as err:
        load_checkpoint(path, expected_labels=["stop", "no_gesture"])
    assert "ckpt.pt" in str(err.value) and "\n" not in str(err.value)


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", _model())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    plain = tmp_path / "plain_state_dict.pt"
    torch.save(_model().state_dict(), plain)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(warnings.WarningMessage, protocol=2))  # an arbitrary global
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    for path, what in [(truncated, "readable"), (plain, "not a gesture_utils"),
                       (evil, "readable"), (text, "readable"), (tmp_path / "nope.pt", "not found")]:
        with pytest.raises(GestureError, match=what) as err:
            load_checkpoint(path)
        assert path.name in str(err.value) and "\n" not in str(err.value)


def test_damaged_weights_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pt", _model())
    raw = torch.load(path, weights_only=True)
    raw["model_state"].pop("head.fc.weight")
    torch.save(raw, path)
    with pytest.raises(GestureError, match="do not fit.*retrain it") as err:
        load_checkpoint(path)
    assert "ckpt.pt" in str(err.value) and "\n" not in str(err.value)


def test_registered_configs_are_timm_models():
    for name, kw in models.GESTURE_VITS.items():
        m = timm.create_model(name, num_classes=0)
        assert m.num_features == kw["embed_dim"]
        assert m.pretrained_cfg["input_size"] == (3, kw["img_size"], kw["img_size"])


def test_transfer_weights_keeps_what_fits_and_the_rows_of_known_labels():
    from gesture_utils.models import transfer_weights

    torch.manual_seed(0)
    src = build_model(CFG, K, labels=LABELS)
    mine = ["wave", LABELS[1], LABELS[0]]  # a new gesture and two known ones, reordered
    dst = build_model(CFG, len(mine), labels=mine)
    fresh = dst.head.fc.weight.detach().clone()
    assert transfer_weights(src, dst) == ["wave"]
    s, d = src.state_dict(), dst.state_dict()
    assert all(torch.equal(s[k], v) for k, v in d.items() if not k.startswith("head.fc."))
    for k, lab in enumerate(mine[1:], start=1):
        assert torch.equal(d["head.fc.weight"][k], s["head.fc.weight"][LABELS.index(lab)])
        assert torch.equal(d["head.fc.bias"][k], s["head.fc.bias"][LABELS.index(lab)])
    assert torch.equal(d["head.fc.weight"][0], fresh[0])  # the new label starts fresh
    with pytest.raises(GestureError, match="another architecture"):
        transfer_weights(src, build_model(replace(CFG, temporal_depth=2), K, labels=LABELS))
    reordered = build_model(CFG, K, labels=LABELS[::-1])  # same size, rows still by label
    assert transfer_weights(src, reordered) == []
    assert torch.equal(reordered.head.fc.weight, src.head.fc.weight.flip(0))
