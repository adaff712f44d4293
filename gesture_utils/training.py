"""Training for the gesture model (notebook 03, ``gesture-utils train``).

:func:`train_one_epoch` is one pass of the textbook loop; :func:`fit` runs it once per
epoch, scores the validation split (:func:`evaluate`), keeps the best epoch (accuracy,
ties broken by lower loss), stops early and writes a checkpoint after every epoch;
:func:`train` builds the model and datasets around it and scores the test split at the
end.  The recipe: AdamW (no weight decay on norms, biases, positions and tokens), linear
warm-up then cosine decay per step, label smoothing, gradient clipping, mixed precision
on CUDA, clip augmentation, and the hand loss (``hand_weight``: a probe on each frame
embedding and a map on each patch token learn where the generator put the hand).
Every epoch's randomness is a function of ``(seed, epoch)``, so a resumed run repeats an
uninterrupted one exactly on a CPU.  History losses are plain cross-entropy.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gesture_utils.config import AugmentConfig, ModelConfig, TrainConfig, to_dict
from gesture_utils.datasets import (
    ClipCache,
    GestureClipDataset,
    build_datasets,
    can_flip,
    flip_clip,
    read_labels,
    to_tensor,
)
from gesture_utils.errors import GestureError, input_error
from gesture_utils.generation import TIME_REVERSED, dataset_config
from gesture_utils.models import (
    ViTTemporal,
    build_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    stored_config,
    transfer_weights,
)
from gesture_utils.runtime import pick_device, seed_everything

#: Called after every epoch as ``callback(record, model)`` with the epoch's history
#: record and the model being trained; return True to stop.
EpochCallback = Callable[[dict[str, Any], ViTTemporal], "bool | None"]


# --------------------------------------------------------------------------- devices


def amp_dtype(device: str, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for ``device``: bf16 on CUDA GPUs that support it, else fp16
    on CUDA, ``None`` (full fp32) on CPU/MPS or when ``enabled`` is False."""
    if not enabled or not str(device).startswith("cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: str, dtype: torch.dtype | None):
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def device_summary(device: str, dtype: torch.dtype | None = None) -> str:
    """One line: the device and its precision/threads, e.g. ``cpu · 2 threads · fp32``."""
    prec = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[dtype]
    if str(device).startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(device)}) · {prec}"
    if device == "cpu":
        return f"cpu · {torch.get_num_threads()} threads · {prec}"
    return f"{device} · {prec}"


# --------------------------------------------------------------------------- optimiser


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.01) -> float:
    """Learning-rate multiplier at optimiser ``step``: linear warm-up from ~0 to 1 over
    ``warmup_steps``, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with four parameter groups: backbone/head x decay/no-decay.

    No weight decay on 1-d tensors (norms, biases) and on position embeddings and
    tokens; the backbone's learning rate is ``lr * backbone_lr_scale``.  Frozen
    parameters are left out.  The hand probe trains like the head.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim <= 1 or name.endswith(("pos_embed", "cls_token", "reg_token"))
        is_backbone = name.startswith("backbone.")
        groups.setdefault((is_backbone, no_decay), []).append(p)
    if not groups:
        raise GestureError("the model has no trainable parameters")
    param_groups = [
        {"params": ps, "weight_decay": 0.0 if no_decay else cfg.weight_decay,
         "lr": cfg.lr * (cfg.backbone_lr_scale if is_backbone else 1.0)}
        for (is_backbone, no_decay), ps in sorted(groups.items())]
    return torch.optim.AdamW(param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay,
                             foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warm-up + cosine schedule (:func:`lr_factor`) over ``cfg.epochs``."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        return lr_factor(step, warmup, total, cfg.min_lr_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- data


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


@dataclass
class EmbeddingSet:
    """Cached frame embeddings for head-only training (``freeze_backbone=True``):
    ``emb`` ``(V, N, T, D)``, V views (the clip, then its flips when augmenting) of N
    clips, ``y`` ``(V, N)`` (flipped labels swapped).  Each epoch draws a view per clip."""

    emb: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.emb.shape[1])

    @property
    def views(self) -> int:
        return int(self.emb.shape[0])


def _views(dataset: GestureClipDataset) -> list[str]:
    aug = dataset.aug
    flips = (("h", aug.hflip_p), ("v", aug.vflip_p)) if aug is not None else ()
    return ["none"] + [view for view, p in flips if p > 0]


@torch.no_grad()
def encode_dataset(model: ViTTemporal, dataset: GestureClipDataset, device: str = "cpu",
                   batch_size: int = 16, views: Sequence[str] | None = None,
                   progress: bool = False) -> EmbeddingSet:
    """Encode every clip of ``dataset`` once, per view: ``'none'``, ``'h'`` / ``'v'``
    (horizontal / vertical flip, labels swapped; default: the flips its augmentation uses)."""
    views = list(views) if views is not None else _views(dataset)
    model.eval()
    dtype = amp_dtype(device)
    index = {name: i for i, name in enumerate(dataset.labels)}
    all_emb, all_y = [], []
    for view in views:
        embs, ys = [], []
        order = range(0, len(dataset), batch_size)
        for start in tqdm(order, desc=f"encode ({view})", leave=False, disable=not progress):
            clips, labels = [], []
            for i in range(start, min(start + batch_size, len(dataset))):
                frames, label = dataset.uint8(i), dataset.records[i].label
                if view != "none" and can_flip(label, dataset.labels, view == "h"):
                    frames, label = flip_clip(frames, label, view == "h", dataset.labels)
                clips.append(to_tensor(frames, dataset.clip.mean, dataset.clip.std))
                labels.append(index[label])
            with _autocast(device, dtype):
                e = model.encode_frames(torch.stack(clips).to(device))
            embs.append(e.float().cpu())
            ys.append(torch.tensor(labels))
        all_emb.append(torch.cat(embs))
        all_y.append(torch.cat(ys))
    return EmbeddingSet(torch.stack(all_emb), torch.stack(all_y))


def _batches(data: Dataset | EmbeddingSet, batch_size: int, shuffle: bool, seed: int,
             epoch: int, num_workers: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches ``(x, y)`` for one epoch; order and augmentation depend only on
    ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
    if isinstance(data, EmbeddingSet):
        n = len(data)
        order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        view = (torch.randint(data.views, (n,), generator=g) if shuffle
                else torch.zeros(n, dtype=torch.long))
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            yield data.emb[view[idx], idx], data.y[view[idx], idx]
        return
    if hasattr(data, "set_epoch"):
        data.set_epoch(epoch)
    loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=g,
                        num_workers=num_workers, persistent_workers=False)
    yield from loader


def reverse_label_map(labels: Sequence[str]) -> Tensor:
    """``(K,)`` index of each class's time-reversed class, ``-1`` where none is known
    (:data:`gesture_utils.generation.TIME_REVERSED`)."""
    return torch.tensor([labels.index(TIME_REVERSED[name])
                         if TIME_REVERSED.get(name) in labels else -1 for name in labels])


def augment_batch(x: Tensor, y: Tensor, g: torch.Generator, reverse_map: Tensor,
                  reverse_p: float = 0.5, color: bool = True,
                  mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                  hand: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Clip-level augmentation of a normalised batch ``(B, T, C, H, W)``, labels ``(B,)``,
    randomness from ``g`` only: time reversal with probability ``reverse_p`` (label mapped
    by ``reverse_map``; -1: left alone); with ``color``, per clip a random RGB order and a
    colour inversion (p = 0.5), in pixel space.  ``hand`` targets ``(B, T, ...)`` are
    reversed with their clips; then returns ``(x, y, hand)``."""
    B = x.shape[0]
    if reverse_p > 0:
        target = reverse_map[y]
        flip = (torch.rand(B, generator=g) < reverse_p) & (target >= 0)
        x = torch.where(flip.view(B, 1, 1, 1, 1), x.flip(1), x)
        y = torch.where(flip, target, y)
        if hand is not None:
            hand = torch.where(flip.view(B, *[1] * (hand.ndim - 1)), hand.flip(1), hand)
    if color:
        m = torch.tensor(mean, dtype=x.dtype).view(1, 1, 3, 1, 1)
        s = torch.tensor(std, dtype=x.dtype).view(1, 1, 3, 1, 1)
        pix = x * s + m
        perm = torch.argsort(torch.rand(B, 3, generator=g), dim=1)
        pix = torch.gather(pix, 2, perm.view(B, 1, 3, 1, 1).expand_as(pix))
        inv = (torch.rand(B, generator=g) < 0.5).view(B, 1, 1, 1, 1)
        pix = torch.where(inv, 1.0 - pix, pix)
        x = (pix - m) / s
    return (x, y) if hand is None else (x, y, hand)  # type: ignore[return-value]


def hand_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Loss of :class:`~gesture_utils.models.HandProbe` outputs ``(B, T, 3)`` against ``(visible, x, y)``
    targets: binary cross-entropy on visibility, plus squared error of the centre
    (in units of the frame side) on frames that show the hand; ``NaN`` targets
    (clips with unknown hands) are left out.  0 when nothing is known."""
    known = ~torch.isnan(target[..., 0])
    if not bool(known.any()):
        return pred.sum() * 0.0
    p, t = pred[known], target[known]
    loss = F.binary_cross_entropy_with_logits(p[:, 0], t[:, 0])
    seen = t[:, 0] > 0.5
    if bool(seen.any()):
        loss = loss + F.mse_loss(p[seen, 1:], t[seen, 1:], reduction="sum") / max(1, int(known.sum()))
    return loss


def hand_map_target(target: Tensor, grid: Sequence[int]) -> Tensor:
    """What the hand map is asked, per frame: ``(N, 3)`` ``(visible, x, y)`` targets ->
    ``(N, P + 1)`` distributions over the ``grid`` (rows, cols) of patches, row-major,
    plus "no hand" last: a Gaussian bump (sigma half a patch) round the hand's centre,
    or all of it on "no hand"."""
    gh, gw = int(grid[0]), int(grid[1])
    ys, xs = torch.meshgrid((torch.arange(gh, device=target.device) + 0.5) / gh,
                            (torch.arange(gw, device=target.device) + 0.5) / gw, indexing="ij")
    d2 = (xs.reshape(1, -1) - target[:, 1:2]) ** 2 + (ys.reshape(1, -1) - target[:, 2:3]) ** 2
    seen = target[:, :1] > 0.5
    bump = torch.exp(-d2 / (2 * (0.5 / gw) ** 2)) * seen
    want = torch.cat([bump, (~seen).to(bump.dtype)], dim=1)
    return want / want.sum(1, keepdim=True)


def hand_map_loss(scores: Tensor, target: Tensor, grid: Sequence[int]) -> Tensor:
    """Loss of the model's hand map: per frame, the patch scores ``(B, T, P)`` plus a
    fixed 0 score for "no hand" are a softmax, asked for :func:`hand_map_target` of the
    ``(B, T, 3)`` targets (soft-target cross-entropy).  Every patch token learns whether
    the hand is on it.  ``NaN`` targets are left out; 0 when nothing is known."""
    known = ~torch.isnan(target[..., 0])
    if not bool(known.any()):
        return scores.sum() * 0.0
    s = scores[known]
    logits = torch.cat([s, torch.zeros_like(s[:, :1])], dim=1)
    return -(hand_map_target(target[known], grid) * logits.log_softmax(1)).sum(1).mean()


def _hand_step(model: ViTTemporal, x: Tensor, hand: Tensor) -> tuple[Tensor, Tensor]:
    """Class logits and the hand loss (probe + map) of one batch, from one backbone pass."""
    if model.hand_map is None:
        emb, aux = model.encode_frames(x), 0.0
    else:
        emb, scores = model.encode_frames_and_map(x)
        aux = hand_map_loss(scores.float(), hand, model.backbone.patch_embed.grid_size)
    return model.classify_embeddings(emb), aux + hand_loss(model.hand_probe(emb).float(), hand)


def _forward(model: ViTTemporal, x: Tensor) -> Tensor:
    """Logits of clips ``(B, T, C, H, W)`` or of frame embeddings ``(B, T, D)``."""
    return model.classify_embeddings(x) if x.ndim == 3 else model(x)


@torch.no_grad()
def evaluate(model: ViTTemporal, data: Dataset | EmbeddingSet, device: str = "cpu",
             batch_size: int = 32, amp: bool = True) -> dict[str, Any]:
    """Mean cross-entropy ``loss``, ``acc``, ``y_true`` / ``y_pred`` ``(N,)`` and ``probs``
    ``(N, K)`` of ``model`` on a clip dataset (or cached embeddings, first view)."""
    model.eval()
    dtype = amp_dtype(device, amp)
    ys, logits_all = [], []
    for batch in _batches(data, batch_size, shuffle=False, seed=0, epoch=0):
        x, y = batch[0], batch[1]  # a dataset with_hand also yields hand targets
        with _autocast(device, dtype):
            logits = _forward(model, x.to(device))
        logits_all.append(logits.float().cpu())
        ys.append(y.cpu())
    if not ys:
        raise GestureError("cannot evaluate on an empty dataset")
    logits = torch.cat(logits_all)
    y = torch.cat(ys)
    loss = F.cross_entropy(logits, y).item()
    pred = logits.argmax(1)
    return {"loss": float(loss), "acc": float((pred == y).float().mean()),
            "y_true": y.numpy(), "y_pred": pred.numpy(),
            "probs": torch.softmax(logits, 1).numpy()}


def error_pairs(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, int]:
    """Misclassified clips counted per ``"true -> predicted"`` pair, most frequent first
    (the off-diagonal of the confusion matrix, in a form a JSON report can hold)."""
    from collections import Counter

    pairs = Counter(f"{labels[t]} -> {labels[p]}" for t, p in zip(y_true, y_pred, strict=True) if t != p)
    return dict(pairs.most_common())


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Recall of every class: ``{label: fraction of its clips predicted right}``."""
    out = {}
    for i, name in enumerate(labels):
        mask = np.asarray(y_true) == i
        out[name] = float((np.asarray(y_pred)[mask] == i).mean()) if mask.any() else float("nan")
    return out


def score_folder(model: ViTTemporal, root: str | os.PathLike[str],
                 splits: Sequence[str] = ("train", "val", "test"), device: str = "cpu",
                 cache: ClipCache | None = None) -> dict[str, Any]:
    """Accuracy of ``model`` on the clips of ``splits`` of the dataset at ``root``,
    pooled: ``acc``, ``n``, ``per_class`` recall, ``y_true`` / ``y_pred``.  E.g. the
    out-of-distribution set (every split) next to a test split (notebooks 03, 05)."""
    sets = build_datasets(root, clip=model.clip, augment=False, cache=cache)
    runs = [evaluate(model, sets[s], device) for s in splits if len(sets[s])]
    if not runs:
        raise GestureError(f"{root}: no clips in the splits {list(splits)}")
    y = np.concatenate([r["y_true"] for r in runs])
    p = np.concatenate([r["y_pred"] for r in runs])
    return {"acc": float((y == p).mean()), "n": int(len(y)), "y_true": y, "y_pred": p,
            "per_class": per_class_accuracy(y, p, model.labels)}


def pair_accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str],
                  pair: tuple[str, str] = ("swipe_left", "swipe_right")) -> float:
    """Accuracy on the clips of the two classes in ``pair`` (a prediction of any other
    class counts as wrong): a model that cannot tell the two apart scores at most 0.5."""
    a, b = labels.index(pair[0]), labels.index(pair[1])
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    mask = (y_true == a) | (y_true == b)
    return float((y_pred[mask] == y_true[mask]).mean()) if mask.any() else float("nan")


# --------------------------------------------------------------------------- one epoch


def _train_step(model: ViTTemporal, x: Tensor, y: Tensor, hand: Tensor | None,
                optimizer: torch.optim.Optimizer, scheduler: Any, cfg: TrainConfig,
                scaler: torch.amp.GradScaler, dtype: torch.dtype | None) -> Tensor:
    """One optimiser step on one batch; returns its logits."""
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    with _autocast(str(x.device), dtype):
        if hand is not None:
            logits, aux = _hand_step(model, x, hand.to(x.device))
            loss = criterion(logits.float(), y) + cfg.hand_weight * aux
        else:
            logits = _forward(model, x)
            loss = criterion(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    if scheduler is not None:
        scheduler.step()
    return logits


def train_one_epoch(model: ViTTemporal, batches: Iterable[Sequence[Tensor]],
                    optimizer: torch.optim.Optimizer, scheduler: Any = None,
                    cfg: TrainConfig | None = None, *, scaler: torch.amp.GradScaler | None = None,
                    augment: Callable[..., tuple] | None = None,
                    hand: bool = False) -> dict[str, float]:
    """One pass over ``batches`` (``(x, y[, hand targets])``, clips or frame embeddings)
    on the model's device, one step per batch: cross-entropy with ``cfg.label_smoothing``
    (+ ``cfg.hand_weight`` x the hand loss when ``hand``), backward, clipping at
    ``cfg.grad_clip``, optimiser and scheduler step.  ``augment(x, y, hand)`` changes each
    batch first.  Returns the mean plain cross-entropy ``loss`` and ``acc``."""
    cfg = cfg or TrainConfig()
    device = next(model.parameters()).device
    dtype = amp_dtype(str(device), cfg.amp)
    if scaler is None:
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    model.train()
    n_seen, loss_sum, correct = 0, 0.0, 0
    for batch in batches:
        x, y = batch[0], batch[1]
        target = batch[2] if hand and len(batch) > 2 else None
        if augment is not None:
            x, y, target = augment(x, y, target)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = _train_step(model, x, y, target, optimizer, scheduler, cfg, scaler, dtype)
        with torch.no_grad():
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
            n_seen += int(y.numel())
    if not n_seen:
        raise GestureError("train_one_epoch got no batches")
    return {"loss": loss_sum / n_seen, "acc": correct / n_seen}


def _augmenter(model: ViTTemporal, cfg: TrainConfig, epoch: int) -> Callable[..., tuple]:
    """The clip augmentation of one epoch (time reversal, colours), seeded by it."""
    g = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch) + 1)
    reverse_map = reverse_label_map(list(model.labels))

    def augment(x: Tensor, y: Tensor, hand: Tensor | None) -> tuple:
        out = augment_batch(x, y, g, reverse_map, cfg.time_reverse_p, cfg.color_aug,
                            model.clip.mean, model.clip.std, hand=hand)
        return out[0], out[1], (out[2] if hand is not None else None)

    return augment


# --------------------------------------------------------------------------- fit


@dataclass
class TrainResult:
    """What :func:`fit` / :func:`train` return."""

    model: ViTTemporal  #: with the best (val) weights loaded, in eval mode
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    stopped_early: bool = False


def _score(record: Mapping[str, Any]) -> tuple[float, float]:
    return (record["val_acc"], -record["val_loss"])


@dataclass
class _Run:
    """Where a :func:`fit` stands: its history and best epoch so far (what resumes it)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, Tensor] | None = None
    best_score: tuple[float, float] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def add(self, record: dict[str, Any], model: nn.Module) -> None:
        """Append an epoch's record; keep the weights if it is the best so far."""
        self.history.append(record)
        if self.best_score is None or _score(record) > tuple(self.best_score):
            self.best_score, self.best_epoch, self.bad_epochs = _score(record), record["epoch"], 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1


def _resume(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: torch.amp.GradScaler) -> _Run:
    model.load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    best = tuple(state["best_score"]) if state.get("best_score") else None
    return _Run([dict(r) for r in state["history"]], state.get("best_state"), best,
                int(state["best_epoch"]), int(state["bad_epochs"]))


def _save_epoch(path: str | os.PathLike[str], model: ViTTemporal, cfg: TrainConfig, run: _Run,
                optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler,
                finished: bool, extra: Mapping[str, Any] | None) -> None:
    """The best weights so far, plus everything needed to resume after this epoch."""
    state = {"epoch": run.history[-1]["epoch"], "model_state": model.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict() if scaler.is_enabled() else {},
             "history": run.history, "best_state": None, "best_score": list(run.best_score),
             "best_epoch": run.best_epoch, "bad_epochs": run.bad_epochs, "finished": finished}
    save_checkpoint(path, model, metrics=_best_metrics(run.history, run.best_epoch),
                    model_state=run.best_state, train_state=state, train_cfg=to_dict(cfg),
                    history=run.history, epoch=run.best_epoch, selection_split="val",
                    **dict(extra or {}))


def _prepare(model: ViTTemporal, train_data: Any, val_data: Any, cfg: TrainConfig,
             quiet: bool) -> bool:
    """Check the data, move and (maybe) freeze the model; True when the hand loss trains."""
    embeddings = isinstance(train_data, EmbeddingSet)
    if embeddings != isinstance(val_data, EmbeddingSet):
        raise GestureError("train_data and val_data must both be datasets or both embeddings")
    if len(train_data) == 0 or len(val_data) == 0:
        raise GestureError(f"need training and validation clips, got {len(train_data)} and "
                           f"{len(val_data)}")
    model.to(cfg.device or pick_device())
    if embeddings or cfg.freeze_backbone:
        model.freeze_backbone(True)
    trains_backbone = not (embeddings or cfg.freeze_backbone)
    wants_hand = cfg.hand_weight > 0 and trains_backbone and getattr(train_data, "with_hand", False)
    if cfg.hand_weight > 0 and trains_backbone and not wants_hand and not quiet:
        tqdm.write("no per-frame hand loss in this run (hand_weight): this dataset gives no "
                   "hand positions (generated clips do, with "
                   "GestureClipDataset(with_hand=True))")
    if wants_hand:  # the hand loss trains the model's own probe (and hand map)
        model.hand_probe.trained.fill_(True)
    return bool(wants_hand)


def fit(model: ViTTemporal, train_data: Dataset | EmbeddingSet, val_data: Dataset | EmbeddingSet,
        cfg: TrainConfig | None = None, *, checkpoint: str | os.PathLike[str] | None = None,
        resume_state: Mapping[str, Any] | None = None, quiet: bool = False,
        on_epoch_end: EpochCallback | None = None,
        checkpoint_extra: Mapping[str, Any] | None = None) -> TrainResult:
    """:func:`train_one_epoch` and :func:`evaluate` on ``val_data`` per epoch, keeping the
    best epoch, with early stopping (``cfg.patience``).  Clip datasets or
    :class:`EmbeddingSet` s (then only the head trains).  ``checkpoint``: written after
    every epoch; ``resume_state``: its ``train_state``.  ``on_epoch_end(record, model)``
    returning True stops as an interruption would (the run can be resumed)."""
    cfg = cfg or TrainConfig()
    device = cfg.device or pick_device()
    hand = _prepare(model, train_data, val_data, cfg, quiet)
    steps = math.ceil(len(train_data) / cfg.batch_size)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(device, cfg.amp) == torch.float16)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    run = _Run() if resume_state is None else _resume(resume_state, model, optimizer, scheduler, scaler)
    clip_aug = (not isinstance(train_data, EmbeddingSet) and cfg.augment
                and (cfg.time_reverse_p > 0 or cfg.color_aug))
    start, stopped_early = (run.history[-1]["epoch"] if run.history else 0), False
    epochs = tqdm(range(start, cfg.epochs), desc="epochs", disable=quiet, initial=start, total=cfg.epochs)
    for epoch in epochs:
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))  # dropout etc.
        batches = tqdm(_batches(train_data, cfg.batch_size, True, cfg.seed, epoch, cfg.num_workers),
                       total=steps, desc=f"epoch {epoch + 1}", leave=False, disable=quiet)
        stats = train_one_epoch(model, batches, optimizer, scheduler, cfg, scaler=scaler, hand=hand,
                                augment=_augmenter(model, cfg, epoch) if clip_aug else None)
        train_seconds = time.perf_counter() - t0
        val = evaluate(model, val_data, device, batch_size=max(cfg.batch_size, 32), amp=cfg.amp)
        record = {"epoch": epoch + 1, "train_loss": stats["loss"], "train_acc": stats["acc"],
                  "val_loss": val["loss"], "val_acc": val["acc"],
                  "lr": float(optimizer.param_groups[-1]["lr"]),
                  "seconds": time.perf_counter() - t0, "train_seconds": train_seconds}
        run.add(record, model)
        stopped_early = cfg.patience > 0 and run.bad_epochs >= cfg.patience
        if not quiet:
            epochs.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{record['val_acc']:.3f}")
            tqdm.write(format_record(record, cfg.epochs))
        if checkpoint is not None:
            _save_epoch(checkpoint, model, cfg, run, optimizer, scheduler, scaler,
                        stopped_early or epoch + 1 == cfg.epochs, checkpoint_extra)
        if stopped_early and not quiet:
            tqdm.write(f"early stop: no better val score for {cfg.patience} epochs "
                       f"(best epoch {run.best_epoch})")
        if stopped_early or (on_epoch_end is not None and on_epoch_end(record, model)):
            break
    epochs.close()
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return TrainResult(model=model, history=run.history, best_epoch=run.best_epoch,
                       metrics=_best_metrics(run.history, run.best_epoch),
                       checkpoint=Path(checkpoint) if checkpoint is not None else None,
                       stopped_early=stopped_early)


def _best_metrics(history: Sequence[Mapping[str, Any]], best_epoch: int) -> dict[str, Any]:
    if not history or best_epoch < 1:
        return {}
    best = next(r for r in history if r["epoch"] == best_epoch)
    return {"best_epoch": best_epoch, "val_acc": best["val_acc"], "val_loss": best["val_loss"],
            "train_acc": best["train_acc"], "epochs_run": len(history),
            "train_seconds": float(sum(r["seconds"] for r in history))}


def format_record(record: Mapping[str, Any], epochs: int | None = None) -> str:
    """One fixed-format line for an epoch's history record."""
    of = f"/{epochs}" if epochs else ""
    return (f"epoch {record['epoch']:>3d}{of} · train loss {record['train_loss']:.3f} "
            f"acc {record['train_acc']:.3f} · val loss {record['val_loss']:.3f} "
            f"acc {record['val_acc']:.3f} · lr {record['lr']:.2e} · {record['seconds']:.1f} s")


# --------------------------------------------------------------------------- train()


def _differences(a: Any, b: Any, allowed: frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in fields(a)
            if f.name not in allowed and getattr(a, f.name) != getattr(b, f.name)}


def _resume_configs(path: Path, ckpt: Mapping[str, Any], model_cfg: ModelConfig | None,
                    train_cfg: TrainConfig | None) -> tuple[ModelConfig, TrainConfig]:
    """The stored configs of an interrupted run; changing the model or recipe is refused."""
    if "train_state" not in ckpt or "train_cfg" not in ckpt:
        raise input_error(path, "holds no training state to resume from",
                          "resume from the checkpoint file a `train` run wrote")
    stored_model = stored_config(path, ModelConfig, ckpt["model_cfg"])
    stored_train = stored_config(path, TrainConfig, ckpt["train_cfg"])
    if model_cfg is not None:
        diff = _differences(stored_model, model_cfg)
        if diff:
            raise input_error(path, f"cannot resume with a different model config: "
                                    f"{', '.join(f'{k}={v[0]!r} vs {v[1]!r}' for k, v in diff.items())}",
                              "resume without changing the model, or start a new run")
    if train_cfg is not None:
        diff = _differences(train_cfg, stored_train, frozenset({"device", "num_workers"}))
        if diff:
            raise input_error(path, f"cannot resume with a different training recipe: {sorted(diff)}",
                              "resume with the stored settings, or start a new run")
        stored_train = replace(stored_train, device=train_cfg.device, num_workers=train_cfg.num_workers)
    return stored_model, stored_train


def _datasets(root: Path, model: ViTTemporal, cfg: TrainConfig, augment: AugmentConfig | None,
              cache: ClipCache | None, quiet: bool) -> tuple[dict[str, GestureClipDataset], float]:
    """The train/val/test datasets for ``model``, decoded; and the seconds decoding took."""
    aug: bool | AugmentConfig = (augment or AugmentConfig()) if cfg.augment else False
    sets = build_datasets(root, clip=model.clip, augment=aug, cache=cache or ClipCache(),
                          seed=cfg.seed)
    if not quiet:
        print(f"{root.name}: {len(sets['train'])} train / {len(sets['val'])} val / "
              f"{len(sets['test'])} test clips · {len(model.labels)} classes · "
              f"{model.cfg.backbone} ({model.init_source}) + {model.cfg.head} head · "
              f"{device_summary(cfg.device, amp_dtype(cfg.device, cfg.amp))}")
    if cfg.hand_weight > 0 and not cfg.freeze_backbone:
        # clips whose manifest does not say where the hand is: fit() trains without the
        # hand loss and says so
        sets["train"].with_hand = sets["train"].has_hand_targets
    t0 = time.perf_counter()
    for ds in sets.values():
        ds.preload(progress=not quiet)
    return sets, time.perf_counter() - t0


def _score_test(result: TrainResult, test_set: Dataset, cfg: TrainConfig,
                out: str | os.PathLike[str] | None) -> None:
    """Score the kept model on the test split, into ``result.metrics`` and the checkpoint."""
    labels = list(result.model.labels)
    test = evaluate(result.model, test_set, cfg.device, amp=cfg.amp)
    result.metrics.update(
        test_acc=test["acc"], test_loss=test["loss"],
        test_per_class=per_class_accuracy(test["y_true"], test["y_pred"], labels),
        test_errors=error_pairs(test["y_true"], test["y_pred"], labels))
    if out is not None:
        ckpt = read_checkpoint(out)
        extras = {k: v for k, v in ckpt.items()
                  if k not in ("format", "model_state", "model_cfg", "labels", "clip",
                               "data_config", "init_source", "metrics", "versions")}
        save_checkpoint(out, result.model, metrics={**ckpt["metrics"], **result.metrics},
                        model_state=ckpt["model_state"], **extras)


def train(data: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
          model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
          resume: str | os.PathLike[str] | None = None, quiet: bool = False,
          cache: ClipCache | None = None, on_epoch_end: EpochCallback | None = None,
          evaluate_test: bool = True, augment: AugmentConfig | None = None,
          start: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train a :class:`ViTTemporal` on the dataset folder ``data`` (notebook 03, CLI):
    build the model (its backbone decides image size and normalisation) and the datasets,
    :func:`fit` (checkpointing to ``out`` after every epoch), score the kept epoch on the
    test split (``metrics['test_acc']``, ``['test_per_class']``).

    ``resume``: a checkpoint of an interrupted run; its configs are used (different ones
    are refused) and training continues after its last finished epoch.  ``cache``: a
    :class:`ClipCache` shared between runs.  ``augment``: instead of :class:`AugmentConfig`.
    ``start``: a checkpoint to start from (:func:`~gesture_utils.models.transfer_weights`:
    all of it, with classifier rows for the labels it knows; its model config unless
    ``model_cfg`` is given; few-shot, notebook 06).
    """
    root, resume_state, stored_labels = Path(data), None, None
    if resume is not None:
        resume = Path(resume)
        ckpt = read_checkpoint(resume)
        model_cfg, train_cfg = _resume_configs(resume, ckpt, model_cfg, train_cfg)
        resume_state = dict(ckpt["train_state"], best_state=ckpt["model_state"])
        stored_labels = list(ckpt["labels"])
        out = resume if out is None else out
    base = load_checkpoint(start) if start is not None else None
    model_cfg = model_cfg or (replace(base[1]["model_cfg"], pretrained=False) if base else ModelConfig())
    train_cfg = train_cfg or TrainConfig()
    train_cfg = replace(train_cfg, device=train_cfg.device or pick_device())
    seed_everything(train_cfg.seed)
    labels = read_labels(root)
    if stored_labels is not None and stored_labels != list(labels):
        raise input_error(resume, f"was trained for labels {stored_labels}, but {root} has "
                                  f"{labels}", "resume on the same dataset")
    model = build_model(model_cfg, len(labels), labels=labels)
    if base is not None:
        transfer_weights(base[0], model)
    sets, decode_seconds = _datasets(root, model, train_cfg, augment, cache, quiet)
    train_data: Dataset | EmbeddingSet = sets["train"]
    val_data: Dataset | EmbeddingSet = sets["val"]
    if train_cfg.freeze_backbone:
        model.to(train_cfg.device)
        train_data = encode_dataset(model, sets["train"], train_cfg.device, progress=not quiet)
        val_data = encode_dataset(model, sets["val"], train_cfg.device, views=["none"],
                                  progress=not quiet)
    result = fit(model, train_data, val_data, train_cfg, checkpoint=out, resume_state=resume_state,
                 quiet=quiet, on_epoch_end=on_epoch_end,
                 checkpoint_extra={"dataset": str(root.name), "dataset_config": dataset_config(root)})
    result.metrics["decode_seconds"] = decode_seconds
    if evaluate_test and len(sets["test"]):
        _score_test(result, sets["test"], train_cfg, out)
    if not quiet:
        m = result.metrics
        test_txt = f" · test acc {m['test_acc']:.3f}" if "test_acc" in m else ""
        print(f"best epoch {result.best_epoch}/{len(result.history)} · val acc {m['val_acc']:.3f}"
              f"{test_txt} · {m['train_seconds']:.0f} s training"
              + (f" · saved {out}" if out is not None else ""))
    return result


def _load_problem(path: Path, data_config: Mapping[str, Any] | None) -> str | None:
    try:
        load_checkpoint(path, data_config=data_config)
    except GestureError as e:
        return str(e)
    return None


def checkpoint_or_train(candidates: Sequence[str | os.PathLike[str]], stand_in: str | os.PathLike[str],
                        data: str | os.PathLike[str] | Callable[[], str | os.PathLike[str]],
                        model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
                        log: Callable[[str], None] = print,
                        data_config: Mapping[str, Any] | None = None) -> Path:
    """The first of ``candidates`` that loads (and was trained on ``data_config``'s data),
    saying why each other one is skipped; else ``stand_in``, reused if it loads, else
    (with its exports ``<stem>.*`` deleted) trained there on ``data`` (a folder, or a
    function returning one).  Notebooks 04-06 run without notebook 03's model."""
    candidates = [Path(p) for p in candidates]
    for path in candidates:
        if path.exists():
            problem = _load_problem(path, data_config)
            if problem is None:
                log(f"using {path}")
                return path
            log(f"skipping {problem}")
    stand_in = Path(stand_in)
    if stand_in.exists():
        problem = _load_problem(stand_in, data_config)
        if problem is None:
            log(f"using stand-in {stand_in} (run notebook 03 for the real model)")
            return stand_in
        log(f"replacing outdated stand-in: {problem}")
        for old in stand_in.parent.glob(f"{stand_in.stem}.*"):
            old.unlink()
    names = ", ".join(p.name for p in candidates) or "none given"
    log(f"no usable checkpoint ({names}): training a stand-in at {stand_in} "
        "(run notebook 03 for the real model)")
    root = data() if callable(data) else data
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    train(root, out=stand_in, model_cfg=model_cfg, train_cfg=train_cfg, quiet=True)
    return stand_in


# --------------------------------------------------------------------------- plots


def plot_history(histories: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
                 axes: Any = None, title: str | None = None):
    """Loss and accuracy curves (train dashed, val solid) of one run or several.

    ``histories``: one history (list of epoch records) or ``{name: history}``.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    runs = dict(histories) if isinstance(histories, Mapping) else {"": histories}
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    else:
        fig = axes[0].figure
    for i, (name, hist) in enumerate(runs.items()):
        color = f"C{i}"
        ep = [r["epoch"] for r in hist]
        prefix = f"{name} " if name else ""
        for ax, key in zip(axes, ("loss", "acc"), strict=True):
            ax.plot(ep, [r[f"train_{key}"] for r in hist], "--", color=color, label=f"{prefix}train")
            ax.plot(ep, [r[f"val_{key}"] for r in hist], "-", color=color, label=f"{prefix}val")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- CLI


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils train --data DIR --out FILE.pt [model/recipe options] [--resume FILE]``."""
    d_m, d_t = ModelConfig(), TrainConfig()
    parser.add_argument("--data", required=True, help="dataset folder (labels.txt + manifest.csv)")
    parser.add_argument("--out", default=None,
                        help="checkpoint to write (default: artifacts/model.pt; with --resume: "
                             "the resumed file)")
    parser.add_argument("--resume", default=None,
                        help="continue the interrupted run saved in this checkpoint")
    m = parser.add_argument_group("model (ModelConfig)")
    m.add_argument("--backbone", default=None, help=f"timm model name (default {d_m.backbone})")
    m.add_argument("--pretrained", action="store_true", default=None,
                   help="load timm's pretrained weights (needs internet; else a warned random init)")
    m.add_argument("--weights", default=None, help="local backbone weights file")
    m.add_argument("--head", choices=("transformer", "mean"), default=None,
                   help=f"temporal head (default {d_m.head})")
    m.add_argument("--causal", action="store_true", default=None, help="causal temporal attention")
    m.add_argument("--image-size", type=int, default=None, help="override the backbone input size")
    m.add_argument("--num-frames", type=int, default=None, help=f"frames per clip (default {d_m.num_frames})")
    m.add_argument("--no-frame-norm", dest="frame_norm", action="store_false", default=None,
                   help="feed frames to the backbone without standardising each one first")
    t = parser.add_argument_group("recipe (TrainConfig)")
    t.add_argument("--epochs", type=int, default=None, help=f"default {d_t.epochs}")
    t.add_argument("--batch-size", type=int, default=None, help=f"default {d_t.batch_size}")
    t.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d_t.lr})")
    t.add_argument("--patience", type=int, default=None, help="early-stopping patience (0 = off)")
    t.add_argument("--freeze-backbone", action="store_true", default=None,
                   help="train only the temporal head on cached frame embeddings")
    t.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                   help="turn training augmentation off")
    t.add_argument("--color-aug", action=argparse.BooleanOptionalAction, default=None,
                   help="random channel order and colour inversion per training clip "
                        "(default off: a hand's skin colour is a real cue)")
    t.add_argument("--hand-weight", type=float, default=None,
                   help=f"weight of the per-frame 'where is the hand' loss (generated data "
                        f"only; 0 = off; default {d_t.hand_weight})")
    t.add_argument("--seed", type=int, default=None, help=f"default {d_t.seed}")
    t.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or epoch lines")
    parser.set_defaults(run=_run)


_MODEL_ARGS = ("backbone", "pretrained", "weights", "head", "causal", "image_size", "num_frames",
               "frame_norm")
_TRAIN_ARGS = ("epochs", "batch_size", "lr", "patience", "freeze_backbone", "augment", "seed",
               "device", "hand_weight", "color_aug")


def _run(args: argparse.Namespace) -> int:
    model_kw = {a: getattr(args, a) for a in _MODEL_ARGS if getattr(args, a) is not None}
    train_kw = {a: getattr(args, a) for a in _TRAIN_ARGS if getattr(args, a) is not None}
    if args.resume:
        ckpt = read_checkpoint(args.resume)
        if "train_cfg" not in ckpt:
            raise input_error(args.resume, "holds no training state to resume from",
                              "resume from a checkpoint written by `gesture-utils train`")
        model_cfg = replace(stored_config(args.resume, ModelConfig, ckpt["model_cfg"]), **model_kw)
        train_cfg = replace(stored_config(args.resume, TrainConfig, ckpt["train_cfg"]), **train_kw)
        train_cfg = replace(train_cfg, device=args.device)
    else:
        model_cfg = ModelConfig(**model_kw)
        train_cfg = TrainConfig(**train_kw)
    out = args.out
    if out is None and not args.resume:
        from gesture_utils.paths import artifacts_dir

        out = artifacts_dir(quick=False) / "model.pt"
    train(args.data, out=out, model_cfg=model_cfg, train_cfg=train_cfg, resume=args.resume,
          quiet=args.quiet)
    return 0


__all__ = [
    "EmbeddingSet",
    "TrainResult",
    "amp_dtype",
    "augment_batch",
    "checkpoint_or_train",
    "device_summary",
    "encode_dataset",
    "error_pairs",
    "evaluate",
    "fit",
    "format_record",
    "hand_loss",
    "hand_map_loss",
    "hand_map_target",
    "load_checkpoint",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
    "pair_accuracy",
    "score_folder",
    "per_class_accuracy",
    "plot_history",
    "reverse_label_map",
    "train",
    "train_one_epoch",
]
