"""Training (gesture_utils.training): the overfit sanity check, checkpoints + resume,
determinism, frozen-backbone caching, the mean head's left/right blindness, the CLI."""

from __future__ import annotations

import contextlib
import io
import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from gesture_utils.cli import main
from gesture_utils.config import GenerateConfig, ModelConfig, TrainConfig
from gesture_utils.datasets import ClipCache, build_datasets, load_manifest, read_labels, to_tensor
from gesture_utils.errors import GestureError
from gesture_utils.generation import render_clip
from gesture_utils.models import build_model, load_checkpoint
from gesture_utils.training import (
    EmbeddingSet,
    amp_dtype,
    augment_batch,
    checkpoint_or_train,
    encode_dataset,
    evaluate,
    fit,
    hand_loss,
    hand_map_loss,
    lr_factor,
    make_optimizer,
    make_scheduler,
    pair_accuracy,
    plot_history,
    reverse_label_map,
    score_folder,
    train,
    train_one_epoch,
)
from gesture_utils.video import sample_indices

T, S = 4, 32
#: small and fast: 32 px frames, 4 frames, one temporal block
MODEL = ModelConfig(image_size=S, num_frames=T, temporal_depth=1)
#: hand_weight 0 here: the "hand" runs below turn the per-frame hand loss on against it
RECIPE = TrainConfig(epochs=3, batch_size=8, warmup_epochs=1, device="cpu", hand_weight=0.0)
#: history entries that must repeat exactly (timings never do)
KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


@pytest.fixture(scope="module")
def cache() -> ClipCache:
    """One decoded-clip cache for the whole module (decode each clip once)."""
    return ClipCache()


def _metrics(history):
    return [{k: r[k] for k in KEYS} for r in history]


# --------------------------------------------------------------------------- sanity


def test_a_tiny_model_overfits_a_handful_of_clips(tiny_dataset, cache):
    """The classic sanity check: with no regularisation the model memorises 12 clips."""
    labels = read_labels(tiny_dataset)
    torch.manual_seed(0)
    model = build_model(replace(MODEL, dropout=0.0), len(labels), labels=labels)
    sets = build_datasets(tiny_dataset, clip=model.clip, augment=False, cache=cache)
    ds = sets["train"]
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor(ds.targets)
    data = TensorDataset(x, y)
    cfg = TrainConfig(epochs=60, batch_size=len(ds), lr=3e-3, warmup_epochs=0, weight_decay=0.0,
                      label_smoothing=0.0, device="cpu", augment=False)
    result = fit(model, data, data, cfg, quiet=True)
    last = result.history[-1]
    assert last["train_acc"] == 1.0 and last["val_acc"] == 1.0
    assert last["train_loss"] < 0.1, last
    assert result.history[0]["train_loss"] > 1.0  # it started near chance (ln 6 = 1.79)


def test_train_one_epoch_is_the_plain_loop_a_notebook_writes():
    """One epoch of train_one_epoch = the textbook loop written out: same seed, same
    batches -> the same mean loss and the same weights."""
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(12, T, 3, S, S, generator=g), torch.arange(12) % 3)
    cfg = replace(RECIPE, epochs=1, batch_size=4)
    runs = []
    for inline in (False, True):
        torch.manual_seed(0)
        model = build_model(MODEL, 3, labels=["swipe_left", "swipe_right", "stop"])
        before = [p.detach().clone() for p in model.parameters()]
        optimizer = make_optimizer(model, cfg)
        scheduler = make_scheduler(optimizer, cfg, steps_per_epoch=3)
        loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True,
                                             generator=torch.Generator().manual_seed(1))
        if not inline:
            loss = train_one_epoch(model, loader, optimizer, scheduler, cfg)["loss"]
        else:
            criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
            model.train()
            total, n = 0.0, 0
            for x, y in loader:
                logits = model(x)
                optimizer.zero_grad()
                criterion(logits, y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
                n += len(y)
            loss = total / n
        runs.append((loss, [p.detach().clone() for p in model.parameters()]))
    (loss_a, params_a), (loss_b, params_b) = runs
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(params_a, params_b, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(params_a, before, strict=True))  # it trained


def test_clips_without_hand_positions_train_without_the_hand_loss_and_say_so(capsys):
    """hand_weight is on by default; data that does not say where the hand is (here a
    TensorDataset, like imported clips) trains without it and says so once, and a frozen
    backbone (which never uses it) says nothing."""
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(4, T, 3, S, S, generator=g), torch.tensor([0, 1, 0, 1]))
    cfg = TrainConfig(epochs=2, batch_size=4, warmup_epochs=0, device="cpu", augment=False)
    assert cfg.hand_weight > 0
    torch.manual_seed(0)
    model = build_model(MODEL, 2, labels=["swipe_left", "swipe_right"])
    fit(model, data, data, cfg, quiet=False)
    assert capsys.readouterr().out.count("no per-frame hand loss") == 1
    fit(model, data, data, replace(cfg, freeze_backbone=True), quiet=False)
    assert "hand loss" not in capsys.readouterr().out


def test_lr_schedule_warms_up_then_follows_a_cosine():
    warm, total, lo = 10, 110, 0.01
    f = [lr_factor(s, warm, total, lo) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.1) and f[warm - 1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:warm - 1], f[1:warm], strict=True))
    mid = warm + (total - warm) // 2
    assert f[mid] == pytest.approx(lo + (1 - lo) * 0.5)
    assert f[total] == pytest.approx(lo)
    # same curve as torch's CosineAnnealingLR after the warm-up
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm, eta_min=lo)
    for s in range(warm, total):
        assert f[s] == pytest.approx(opt.param_groups[0]["lr"], abs=1e-9)
        opt.step()
        ref.step()


def test_amp_only_on_cuda():
    assert amp_dtype("cpu") is None and amp_dtype("mps") is None
    assert amp_dtype("cuda", enabled=False) is None


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def runs(tiny_dataset, cache, tmp_path_factory):
    """Uninterrupted, repeated, other-seed and interrupted+resumed runs of one recipe."""
    tmp = tmp_path_factory.mktemp("runs")
    out = {}
    out["a"] = train(tiny_dataset, tmp / "a.pt", MODEL, RECIPE, quiet=True, cache=cache)
    out["a_again"] = train(tiny_dataset, tmp / "a2.pt", MODEL, RECIPE, quiet=True, cache=cache)
    out["seed1"] = train(tiny_dataset, tmp / "s1.pt", MODEL, replace(RECIPE, seed=1), quiet=True,
                         cache=cache)
    out["interrupted"] = train(tiny_dataset, tmp / "b.pt", MODEL, RECIPE, quiet=True, cache=cache,
                               on_epoch_end=lambda r, m: r["epoch"] == 1)
    out["resumed"] = train(tiny_dataset, resume=tmp / "b.pt", quiet=True, cache=cache)
    hand = replace(RECIPE, hand_weight=1.0)
    out["hand"] = train(tiny_dataset, tmp / "h.pt", MODEL, hand, quiet=True, cache=cache)
    train(tiny_dataset, tmp / "h2.pt", MODEL, hand, quiet=True, cache=cache,
          on_epoch_end=lambda r, m: r["epoch"] == 2)
    out["hand_resumed"] = train(tiny_dataset, resume=tmp / "h2.pt", quiet=True, cache=cache)
    out["tmp"] = tmp
    return out


def test_same_seed_same_metrics_other_seed_differs(runs):
    assert _metrics(runs["a"].history) == _metrics(runs["a_again"].history)
    assert runs["a"].metrics["test_acc"] == runs["a_again"].metrics["test_acc"]
    assert _metrics(runs["a"].history) != _metrics(runs["seed1"].history)


def test_resume_continues_and_matches_the_uninterrupted_run(runs):
    assert len(runs["interrupted"].history) == 1
    resumed = runs["resumed"]
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert _metrics(resumed.history) == _metrics(runs["a"].history)
    a = load_checkpoint(runs["tmp"] / "a.pt")[0].state_dict()
    b = load_checkpoint(runs["tmp"] / "b.pt")[0].state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_hand_loss_changes_training_and_resumes_exactly(runs):
    """hand_weight > 0 trains the model's hand probe: another run than without it, a
    probe marked trained (and moved off its initial weights) only in that run, and a
    resumed run that picks the probe up where it was."""
    assert _metrics(runs["hand"].history) != _metrics(runs["a"].history)
    assert _metrics(runs["hand_resumed"].history) == _metrics(runs["hand"].history)
    a = load_checkpoint(runs["tmp"] / "a.pt")[0]
    h = load_checkpoint(runs["tmp"] / "h.pt")[0]
    assert a.state_dict().keys() == h.state_dict().keys()
    assert bool(h.hand_probe.trained) and not bool(a.hand_probe.trained)
    fresh = build_model(h.cfg, h.num_classes, h.labels)
    assert not torch.equal(fresh.hand_probe.fc.weight, h.hand_probe.fc.weight)
    # both runs start from the same weights (train seeds before it builds): the hand map
    # moved only where the hand loss reached it
    assert not torch.equal(a.hand_map.weight, h.hand_map.weight)


def test_hand_map_loss_is_a_soft_cross_entropy_over_patches_and_no_hand():
    """Against a loop over frames: a 2 x 2 grid, targets a hand at a patch centre, one
    between patches, no hand, and an unknown frame (left out)."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(1, 4, 4, generator=g)
    target = torch.tensor([[[1, 0.25, 0.75], [1, 0.5, 0.25], [0, 0, 0], [float("nan")] * 3]])
    centres = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]  # row-major (x, y)
    ref = []
    for s, (vis, x, y) in zip(scores[0, :3], target[0, :3].tolist(), strict=True):
        if vis:
            want = [math.exp(-((cx - x) ** 2 + (cy - y) ** 2) / (2 * 0.25 ** 2)) for cx, cy in centres]
            want = torch.tensor(want + [0.0])
        else:
            want = torch.tensor([0.0] * 4 + [1.0])
        logp = torch.log_softmax(torch.cat([s, torch.zeros(1)]), 0)
        ref.append(-(want / want.sum() * logp).sum())
    assert hand_map_loss(scores, target, (2, 2)) == pytest.approx(float(torch.stack(ref).mean()), rel=1e-5)
    # the patch under the hand wins: scores peaked there beat scores peaked elsewhere
    right = torch.tensor([[[-9.0, -9, 9, -9]]])
    wrong = torch.tensor([[[9.0, -9, -9, -9]]])
    hand = torch.tensor([[[1, 0.25, 0.75]]])
    assert hand_map_loss(right, hand, (2, 2)) < hand_map_loss(wrong, hand, (2, 2))
    assert hand_map_loss(torch.full((1, 1, 4), -20.0), torch.zeros(1, 1, 3), (2, 2)) < 1e-6
    nan = scores.clone().requires_grad_()
    loss = hand_map_loss(nan, torch.full_like(target, float("nan")), (2, 2))
    loss.backward()
    assert loss.item() == 0 and (nan.grad == 0).all()


def test_score_folder_pools_the_splits_it_is_given(runs, tiny_dataset, cache):
    model = runs["a"].model
    sets = build_datasets(tiny_dataset, clip=model.clip, augment=False, cache=cache)
    parts = {s: evaluate(model, sets[s]) for s in ("val", "test")}
    both = score_folder(model, tiny_dataset, ("val", "test"), cache=cache)
    assert both["n"] == len(sets["val"]) + len(sets["test"])
    right = sum(float(r["acc"]) * len(sets[s]) for s, r in parts.items())
    assert both["acc"] == pytest.approx(right / both["n"])
    alone = score_folder(model, tiny_dataset, ("test",), cache=cache)
    assert alone["acc"] == pytest.approx(parts["test"]["acc"])
    assert set(both["per_class"]) == set(model.labels)


def test_a_dataset_with_hand_targets_can_be_evaluated_and_resumed_without_them(runs, tiny_dataset,
                                                                               cache):
    ds = build_datasets(tiny_dataset, clip=runs["hand"].model.clip, augment=False, cache=cache)["val"]
    ds.with_hand = True
    assert len(ds[0]) == 3
    assert evaluate(runs["hand"].model, ds)["acc"] == evaluate(
        runs["hand"].model, build_datasets(tiny_dataset, clip=ds.clip, augment=False,
                                           cache=cache)["val"])["acc"]
    # a run trained with the probe, resumed with the backbone frozen (no probe needed):
    # its optimiser state still holds the probe, which must not break the resume
    ckpt = torch.load(runs["tmp"] / "h2.pt", weights_only=True)
    model = load_checkpoint(runs["tmp"] / "h2.pt")[0]
    sets = build_datasets(tiny_dataset, clip=model.clip, augment=False, cache=cache)
    state = dict(ckpt["train_state"], best_state=ckpt["model_state"])
    fit(model, sets["train"], sets["val"], replace(RECIPE, hand_weight=1.0), resume_state=state,
        quiet=True)


def test_hand_loss_leaves_unknown_frames_out():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 4, 3, generator=g)
    target = torch.tensor([[1, 0.2, 0.3], [0, 0, 0], [1, 0.9, 0.1], [0, 0, 0]]).expand(2, 4, 3)
    target = target.clone()
    target[1] = float("nan")  # clip 2: an imported clip
    ref = (torch.nn.functional.binary_cross_entropy_with_logits(pred[0, :, 0], target[0, :, 0])
           + ((pred[0, [0, 2], 1:] - target[0, [0, 2], 1:]) ** 2).sum() / 4)
    assert hand_loss(pred, target) == pytest.approx(float(ref))
    # a perfect probe scores ~0; unknown-only batches give 0 (and a gradient of 0)
    perfect = torch.where(target[0, :, :1] > 0.5, 20.0, -20.0)
    perfect = torch.cat([perfect, target[0, :, 1:]], -1)
    assert hand_loss(perfect[None], target[:1]) < 1e-6
    only_nan = pred.clone().requires_grad_()
    loss = hand_loss(only_nan, torch.full_like(target, float("nan")))
    loss.backward()
    assert loss.item() == 0 and (only_nan.grad == 0).all()


def test_checkpoint_holds_everything_later_stages_need(runs, tiny_dataset):
    labels = read_labels(tiny_dataset)
    model, info = load_checkpoint(runs["tmp"] / "a.pt", expected_labels=labels)
    assert info["model_cfg"] == MODEL
    assert info["clip"] == model.clip and info["clip"].image_size == S
    assert info["selection_split"] == "val" and info["epoch"] == runs["a"].best_epoch
    assert info["metrics"]["test_acc"] == pytest.approx(runs["a"].metrics["test_acc"])
    # the test errors per (true -> predicted) pair add up to the misclassified clips
    n_test = sum(1 for r in load_manifest(tiny_dataset) if r.split == "test")
    wrong = round((1 - runs["a"].metrics["test_acc"]) * n_test)
    assert sum(info["metrics"]["test_errors"].values()) == wrong
    assert len(info["history"]) == RECIPE.epochs and info["train_cfg"]["seed"] == 0
    # the stored weights are the best epoch's, and reproduce the returned model
    x = torch.randn(1, T, 3, S, S)
    with torch.no_grad():
        torch.testing.assert_close(model(x), runs["a"].model.cpu()(x))


def test_resume_refuses_a_changed_recipe_or_model(runs, tiny_dataset):
    b = runs["tmp"] / "b.pt"
    with pytest.raises(GestureError, match="b.pt"):
        train(tiny_dataset, resume=b, train_cfg=replace(RECIPE, lr=0.5), quiet=True)
    with pytest.raises(GestureError, match="temporal_depth"):
        train(tiny_dataset, resume=b, model_cfg=replace(MODEL, temporal_depth=2), quiet=True)


def test_the_cli_refuses_to_resume_a_checkpoint_whose_recipe_does_not_load(runs, tiny_dataset,
                                                                          cache, tmp_path, capsys):
    """A recipe with a field missing (a checkpoint of another version) is not guessed at:
    one line naming the file says to retrain."""
    old = tmp_path / "old.pt"
    train(tiny_dataset, old, MODEL, RECIPE, quiet=True, cache=cache,
          on_epoch_end=lambda r, m: r["epoch"] == 1)
    raw = torch.load(old, weights_only=True)
    del raw["train_cfg"]["hand_weight"]
    torch.save(raw, old)
    rc = main(["train", "--data", str(tiny_dataset), "--resume", str(old), "--quiet",
               "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "old.pt" in err and "hand_weight" in err and "retrain it" in err


def _problem(path, data_config=None):
    try:
        load_checkpoint(path, data_config=data_config)
    except GestureError as e:
        return str(e)
    return None


def test_checkpoint_or_train_picks_a_usable_checkpoint_or_trains_a_stand_in(runs, tiny_dataset,
                                                                           tmp_path, monkeypatch):
    """Notebooks 04-06: notebook 03's checkpoint if loadable; an unusable one is named and
    skipped; a valid stand-in is reused; an outdated one (and its exports) replaced."""
    import gesture_utils.training as tr

    good = runs["tmp"] / "a.pt"
    broken = tmp_path / "vit_temporal.pt"
    broken.write_bytes(b"written by an old version")
    assert _problem(good) is None
    assert "vit_temporal.pt" in _problem(broken)
    assert "not found" in _problem(tmp_path / "missing.pt")

    trained = []

    def fake_train(data, out, model_cfg=None, train_cfg=None, quiet=False):
        trained.append((data, out))
        out.write_bytes(good.read_bytes())

    monkeypatch.setattr(tr, "train", fake_train)
    said: list[str] = []
    stand_in = tmp_path / "stand_in" / "vit_temporal.pt"
    pick = lambda *c: checkpoint_or_train(c, stand_in, lambda: tiny_dataset, log=said.append)  # noqa: E731
    assert pick(tmp_path / "missing.pt", broken, good) == good and not trained
    assert any("skipping" in m and "vit_temporal.pt" in m for m in said)
    # the checkpoint records its data's settings: other data -> skipped, same data -> used
    from gesture_utils.generation import dataset_config
    here = dataset_config(tiny_dataset)
    assert here is not None and _problem(good, here) is None
    other = {**here, "idle_hand_fraction": 0.0 if here["idle_hand_fraction"] else 0.5}
    assert "idle_hand_fraction" in _problem(good, other)
    said.clear()
    assert checkpoint_or_train([good], stand_in, tiny_dataset, log=said.append,
                               data_config=other) == stand_in and trained
    assert any("other settings" in m for m in said)
    trained.clear()
    stand_in.unlink()
    assert pick(broken) == stand_in and trained == [(tiny_dataset, stand_in)]
    assert _problem(stand_in) is None
    assert pick(broken) == stand_in and len(trained) == 1  # reused, not retrained
    export = stand_in.with_suffix(".onnx")
    export.write_bytes(b"exported from the outdated stand-in")
    stand_in.write_bytes(b"outdated")
    said.clear()
    assert pick() == stand_in and len(trained) == 2 and not export.exists()
    assert any("outdated stand-in" in m for m in said)


def test_history_has_the_documented_fields_and_plots(runs):
    import matplotlib

    matplotlib.use("Agg")
    rec = runs["a"].history[0]
    for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
        assert key in rec
    assert 0 <= rec["val_acc"] <= 1 and rec["seconds"] > 0
    fig = plot_history({"a": runs["a"].history, "seed 1": runs["seed1"].history})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4  # train + val per run


# --------------------------------------------------------------------------- frozen


def test_frozen_backbone_trains_only_the_head_on_cached_embeddings(tiny_dataset, cache):
    labels = read_labels(tiny_dataset)
    torch.manual_seed(0)
    model = build_model(MODEL, len(labels), labels=labels)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sets = build_datasets(tiny_dataset, clip=model.clip, augment=True, cache=cache)
    emb = encode_dataset(model, sets["train"])
    assert isinstance(emb, EmbeddingSet) and emb.views == 2  # the clip + its mirror image
    n = len(sets["train"])
    assert emb.emb.shape == (2, n, T, model.embed_dim)
    # the mirrored view swaps left/right labels and keeps the others
    swap = {labels.index("swipe_left"): labels.index("swipe_right"),
            labels.index("swipe_right"): labels.index("swipe_left")}
    assert [swap.get(int(y), int(y)) for y in emb.y[0]] == [int(y) for y in emb.y[1]]
    val = encode_dataset(model, sets["val"], views=["none"])
    result = fit(model, emb, val, replace(RECIPE, epochs=3), quiet=True)
    after = result.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("head.") for k in changed), sorted(changed)[:5]


# --------------------------------------------------------------------------- order


def _left_and_reversed(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n swipe_left clips and their exact time reversals (= valid swipe_right clips)."""
    cfg = replace(GenerateConfig(), size=S, fps=8, seconds=1.0)
    clips = []
    for i in range(n):
        frames, _ = render_clip("swipe_left", np.random.default_rng(100 + i), cfg)
        clips.append(frames[sample_indices(len(frames), T)])
    left = torch.stack([to_tensor(c, (0.5,) * 3, (0.5,) * 3) for c in clips])
    x = torch.cat([left, left.flip(1)])
    y = torch.tensor([0] * n + [1] * n)
    return x, y


def test_mean_head_confuses_left_and_right_where_the_transformer_does_not():
    """Trained on swipe_left clips and their time reversals (labelled swipe_right), the
    mean head gives both members of a pair the same answer, so it can never beat 50% on
    the pair; the transformer head learns them all."""
    x, y = _left_and_reversed(6)
    data = TensorDataset(x, y)
    labels = ["swipe_left", "swipe_right"]
    cfg = TrainConfig(epochs=60, batch_size=len(y), lr=3e-3, warmup_epochs=0, weight_decay=0.0,
                      label_smoothing=0.0, device="cpu", augment=False)
    acc = {}
    for head in ("mean", "transformer"):
        torch.manual_seed(0)
        model = build_model(replace(MODEL, head=head, dropout=0.0), 2, labels=labels)
        model = fit(model, data, data, cfg, quiet=True).model
        with torch.no_grad():
            pred = model(x).argmax(1).numpy()
        acc[head] = pair_accuracy(y.numpy(), pred, labels)
    assert acc["mean"] <= 0.5, acc
    assert acc["transformer"] == 1.0, acc


# --------------------------------------------------------------------------- CLI


def test_cli_train_writes_a_loadable_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "cli.pt"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["train", "--data", str(tiny_dataset), "--out", str(out), "--epochs", "1",
                   "--image-size", str(S), "--num-frames", str(T), "--quiet", "--device", "cpu",
                   "--hand-weight", "0.5", "--color-aug", "--no-frame-norm"])
    assert rc == 0
    model, info = load_checkpoint(out, expected_labels=read_labels(tiny_dataset))
    assert info["model_cfg"].image_size == S and len(info["history"]) == 1
    assert info["model_cfg"].frame_norm is False and isinstance(model.frame_norm, torch.nn.Identity)
    assert info["train_cfg"]["hand_weight"] == 0.5 and info["train_cfg"]["color_aug"] is True
    assert math.isfinite(info["metrics"]["test_acc"])


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    rc = main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "m.pt"),
               "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "missing" in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- clip augmentation


def test_augment_batch_reverses_time_with_the_label_and_recolours_exactly():
    labels = ["swipe_left", "swipe_right", "swipe_up", "swipe_down", "stop", "no_gesture", "wink"]
    rmap = reverse_label_map(labels)
    assert rmap.tolist() == [1, 0, 3, 2, 4, 5, -1]  # "wink" has no known reverse
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 3, 2, 2) * 2 - 1  # normalised with mean = std = 0.5
    y = torch.arange(64) % len(labels)
    xr, yr = augment_batch(x, y, g, rmap, reverse_p=1.0, color=False)
    known = rmap[y] >= 0
    assert torch.equal(xr[known], x[known].flip(1)) and torch.equal(yr[known], rmap[y][known])
    assert torch.equal(xr[~known], x[~known]) and torch.equal(yr[~known], y[~known])
    # per-frame targets travel with their clips
    hand = torch.rand(64, 3, 3)
    xh, yh, hh = augment_batch(x, y, torch.Generator().manual_seed(0), rmap, reverse_p=1.0,
                               color=False, hand=hand)
    assert torch.equal(xh, xr) and torch.equal(yh, yr)
    assert torch.equal(hh[known], hand[known].flip(1)) and torch.equal(hh[~known], hand[~known])
    # colour: every clip is a channel permutation of the original, possibly inverted
    xc, yc = augment_batch(x, y, torch.Generator().manual_seed(1), rmap, reverse_p=0.0)
    assert torch.equal(yc, y)
    inverted = 0
    for a, b in zip(x, xc, strict=True):
        ok = [torch.allclose(b, s * a[:, list(p)]) for p in itertools.permutations(range(3))
              for s in (1, -1)]
        assert any(ok)
        inverted += not any(ok[0::2])
    assert 10 < inverted < 54  # about half

