"""Every default of the series in one place, as dataclasses (all notebooks).

Functions take explicit arguments; when a caller has none it passes one of these
configs.  Each stage owns one dataclass; a notebook's ``parameters`` cell overrides the
fields a learner may turn, e.g. ``GenerateConfig(clips_per_class=8)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: The six default classes. ``stop`` is a hand held still in view; ``no_gesture`` is
#: anything else: no hand, a hand resting part of the time, or one that fidgets.
DEFAULT_CLASSES: tuple[str, ...] = (
    "swipe_left",
    "swipe_right",
    "swipe_up",
    "swipe_down",
    "stop",
    "no_gesture",
)

#: The three classes of the original article, for comparison experiments.
ARTICLE_CLASSES: tuple[str, ...] = ("swipe_left", "swipe_right", "stop")

#: Classes that become each other under a horizontal / vertical flip of the frames.
HFLIP_PAIRS: dict[str, str] = {"swipe_left": "swipe_right", "swipe_right": "swipe_left"}
VFLIP_PAIRS: dict[str, str] = {"swipe_up": "swipe_down", "swipe_down": "swipe_up"}


@dataclass(frozen=True)
class GenerateConfig:
    """Synthetic dataset generation (notebook 01, ``gesture-utils generate``)."""

    classes: tuple[str, ...] = DEFAULT_CLASSES
    #: 300 clips x 6 classes = 1800 clips in 150 sessions -> 360 test clips (30 unseen
    #: sessions), 288 val, 1152 train; generates in ~10-20 s on 2 cores.  Fewer sessions
    #: leave the small model at chance for epochs (benchmarks/bench_training.py)
    clips_per_class: int = 300
    size: int = 112  #: frame height = width, pixels
    fps: int = 12
    seconds: float = 2.0
    seed: int = 0
    text_overlay: bool = False  #: the article's label leak; opt-in only (notebook 03)
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    #: clips *of each class* per simulated recording session; a session (= group) has
    #: its own background, clutter, camera and hand, and is never split across
    #: train/val/test
    group_size: int = 2
    #: fraction of ``no_gesture`` clips in which a hand, held still, appears or leaves
    #: part-way through, in view for at most half of the clip.  A live stream shows
    #: exactly this between gestures (notebook 06; docs/EXPERIMENTS.md has the stream
    #: measurements behind it).  In photo scenes half of the other no_gesture clips show
    #: a hand that fidgets without swiping, the rest no hand.  0 = no idle hand.
    idle_hand_fraction: float = 0.5
    #: "photo": webcam-like scenes -- real photographs seen through a camera that pans,
    #: zooms and cuts, people with real faces, a skin-coloured hand with its forearm
    #: entering from a frame edge, and hard-negative no_gesture clips (a hand that
    #: fidgets without swiping) | "procedural": the flat look (solid, gradient or blotchy
    #: backgrounds, plain shapes, a still camera), kept for notebook 03's sim-to-real
    #: experiment
    scene: str = "photo"
    #: draw only from the photos and faces reserved for the out-of-distribution set, with
    #: the held-out hand style (fingers together, outlined) and motion profile
    #: (anticipate / overshoot on a bowed path, faster): benchmarks/bench_ood.py.  Never
    #: for training
    holdout: bool = False
    #: processes for generate_dataset: 0 = automatic (one per core for >= 100 clips);
    #: changes speed only, never the data
    workers: int = 0


@dataclass(frozen=True)
class ClipConfig:
    """How a clip becomes a model input (notebook 01; recorded in checkpoints)."""

    num_frames: int = 8
    image_size: int = 64
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelConfig:
    """The ViT-per-frame + temporal-head model (notebook 03; recorded in checkpoints).

    ``backbone`` is any timm model name; ``vit_gesture_*`` are this series' small
    from-scratch ViTs that train in minutes on a CPU.  Input size and normalisation come
    from the backbone's pretrained config (``ClipConfig`` is derived from the model).
    """

    backbone: str = "vit_gesture_tiny"
    #: load timm's pretrained weights (needs internet or a warm cache); when they cannot
    #: be loaded the backbone starts from random weights with a loud warning
    pretrained: bool = False
    #: a local weights file for the backbone (.pth/.pt/.safetensors, or one of our checkpoints)
    weights: str | None = None
    image_size: int | None = None  #: override the backbone's input size (None: its default)
    #: frame embedding: "tokens" (all patch tokens after the backbone's final norm,
    #: flattened + Linear: keeps *where* things are) | "cls" (the CLS token, timm's
    #: default pooling: position must then be learned)
    frame_pool: str = "tokens"
    head: str = "transformer"  #: "transformer" (order-aware) | "mean" (the article's baseline)
    num_frames: int = 8  #: T, number of learned temporal positions (= ClipConfig.num_frames)
    temporal_dim: int | None = None  #: width of the temporal transformer (None: backbone width)
    temporal_depth: int = 2  #: timm Blocks in the temporal transformer
    temporal_heads: int = 4
    temporal_mlp_ratio: float = 2.0
    causal: bool = False  #: each time step attends only to the past (streaming-friendly)
    #: the temporal tokens carry what *changes*: each frame's embedding minus the clip
    #: average (LayerNorm-ed, so small changes are as loud as the scene), plus the
    #: average itself (what stays the same).  Without it 2 of 5 seeds never learned
    #: (docs/EXPERIMENTS.md)
    temporal_delta: bool = True
    #: ... and the difference with the previous frame (which way things move), so the
    #: order of the frames is in the input, not only in the position embeddings
    motion_tokens: bool = True
    #: standardise each frame, each colour channel, to mean 0 / std 1 over its own pixels
    #: before the backbone (``models.FrameStandardize``): a scene's colour cast,
    #: brightness and contrast are gone, the hand stays.  It lifted validation and
    #: unseen-settings accuracy, not the test split (docs/EXPERIMENTS.md)
    frame_norm: bool = True
    dropout: float = 0.1  #: in the temporal head


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (notebook 03, ``gesture-utils train``).

    The defaults are the CPU recipe measured in ``benchmarks/bench_training.py``.
    """

    #: about 20 s each on 2 cores with the photo scenes (docs/EXPERIMENTS.md)
    epochs: int = 12
    batch_size: int = 16
    lr: float = 1e-3  #: peak learning rate (AdamW), reached after the warm-up
    backbone_lr_scale: float = 1.0  #: backbone lr = lr * this (e.g. 0.1 for pretrained)
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0  #: linear warm-up, then cosine decay to lr * min_lr_ratio
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    grad_clip: float = 1.0  #: max gradient norm (0 = off)
    patience: int = 0  #: early stopping: epochs without a better val score (0 = off)
    freeze_backbone: bool = False  #: train the temporal head on cached frame embeddings
    augment: bool = True  #: direction-aware flips + crop + colour jitter on train clips
    #: play a training clip backwards with this probability, swapping its label
    #: (swipe_left <-> swipe_right, swipe_up <-> swipe_down; stop / no_gesture unchanged;
    #: classes with no known reverse are never reversed). Only with ``augment``.
    time_reverse_p: float = 0.5
    #: random RGB channel order and colour inversion per training clip.  Off: in the
    #: photo scenes a hand is skin-coloured, as in front of a real camera, and hiding
    #: that cue slowed learning (docs/EXPERIMENTS.md has the measurements; it helped a
    #: little on the procedural look, whose actors had arbitrary colours).
    color_aug: bool = False
    #: weight of an auxiliary loss that asks the frame encoder, for every frame, whether
    #: the hand is in view and where: a linear probe on each frame embedding and a hand
    #: map on each patch token (``training.hand_map_loss``).  The generator records the
    #: hand in the manifest, so it costs no labelling; imported clips without it are left
    #: out of this loss.  0 = off.  Only when the backbone trains (docs/EXPERIMENTS.md)
    hand_weight: float = 1.0
    seed: int = 0
    device: str | None = None  #: None = best available (cuda, mps, cpu)
    amp: bool = True  #: mixed precision on CUDA (bf16 when supported, else fp16 + scaler)
    num_workers: int = 0  #: DataLoader workers (0 is fastest on 2 cores with cached clips)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time clip augmentation (notebook 01; ``GestureClipDataset(augment=...)``).

    Flips swap direction labels (HFLIP_PAIRS / VFLIP_PAIRS); the crop and colour jitter
    are drawn once per clip and applied to every frame alike.  A flip axis is used only
    when the dataset has *both* classes of each of its pairs (else it is off for every
    class: flipping only the unpaired classes would make "mirrored" a clue to the label).

    Why ``vflip_p`` is 0 by default: a left-right mirror of a hand is just the other
    hand, a view the camera really gets; an up-down mirror is a hand hanging upside down
    with the wrist at the top, which no webcam shows. Training on such frames spends
    capacity on views that never occur at test time. Turn it on for data where up and
    down look alike (e.g. an overhead camera).
    """

    hflip_p: float = 0.5  #: probability of a horizontal flip (swipe_left <-> swipe_right)
    vflip_p: float = 0.0  #: probability of a vertical flip (swipe_up <-> swipe_down); see above
    brightness: float = 0.2  #: brightness factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2  #: contrast factor drawn from [1 - c, 1 + c]
    crop_scale: tuple[float, float] = (0.8, 1.0)  #: area fraction of the random crop
    crop_ratio: tuple[float, float] = (0.9, 1.1)  #: aspect (w/h) range of the random crop


@dataclass(frozen=True)
class ExportConfig:
    """ONNX export, parity checks and INT8 quantisation (notebook 04, ``gesture-utils export``)."""

    name: str = "vit_temporal"  #: files NAME.onnx, NAME.encoder.onnx, NAME.head.onnx, NAME.int8.onnx
    opset: int = 18  #: ONNX opset (>= 17 for LayerNormalization as one op)
    parity_atol: float = 1e-4  #: max |logit difference| allowed between ONNX fp32 and PyTorch
    calibration_clips: int = 32  #: training clips that calibrate static INT8 activation ranges
    int8_ops: tuple[str, ...] = ("MatMul", "Gemm", "Conv")  #: op types INT8 quantisation touches
    latency_runs: int = 30  #: timed batch-1 runs per model when comparing fp32 and INT8
    int8_max_accuracy_drop: float = 0.01  #: INT8 is accepted if it loses at most this accuracy
    int8_min_speedup: float = 1.1  #: ... and is at least this much faster than fp32
    threads: int | None = None  #: ONNX Runtime intra-op threads (None = all cores)
    seed: int = 0  #: picks the calibration clips


@dataclass(frozen=True)
class BenchmarkConfig:
    """Latency benchmark (notebook 05, ``gesture-utils benchmark``)."""

    warmup: int = 10  #: untimed calls per backend before timing starts
    runs: int = 100  #: timed calls per backend (percentiles need many)
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)  #: throughput-vs-batch sweep
    threads: int | None = None  #: intra-op threads for torch (and ORT, see below); None = all cores
    #: ONNX Runtime intra-op threads: "auto" times 1 and ``threads`` on the clip graph
    #: (batch 1) and keeps the faster -- for a model this small, handing ops between two
    #: threads costs more than it saves (benchmarks/bench_latency.py --investigate);
    #: None = ``threads``; an int = that many
    ort_threads: int | str | None = "auto"
    peak_matmul_size: int = 1024  #: n of the n×n fp32 matmul that measures the FLOP/s bound
    #: let ONNX Runtime's idle threads spin-wait for work between calls. Off by default:
    #: spinning threads keep the cores busy after each call and slow down whichever
    #: backend runs next in an interleaved benchmark
    ort_spinning: bool = False


@dataclass(frozen=True)
class StreamConfig:
    """Real-time recognition from a frame stream (notebook 06, ``gesture-utils stream``).

    Times are counted in *source frames* unless a field says "updates" (one update is
    one temporal-head pass, i.e. every ``frame_step * head_every`` source frames).
    """

    #: Feed every k-th source frame to the encoder, so the T buffered frames span about
    #: window_seconds, as long as a training clip. 0 = from the source's frame rate:
    #: round(fps * window_seconds / T), e.g. 2.0 * 12 / 8 = 3 at 12 fps, 8 at 30 fps
    #: (12 fps assumed when the source does not say). Use 1 when the stream is already
    #: at the model's frame rate.
    frame_step: int = 0
    window_seconds: float = 2.0  #: GenerateConfig.seconds of the training clips
    #: Run the temporal head every n-th encoded frame (1 = after every new embedding).
    head_every: int = 1
    #: Weight of the newest probabilities in the exponential moving average
    #: s <- alpha * p + (1 - alpha) * s (1.0 = no smoothing).
    ema_alpha: float = 0.5
    #: A gesture class must reach this smoothed probability to start an event ...
    enter_threshold: float = 0.6
    #: ... and the state returns to rest only when it falls below this (hysteresis;
    #: must be <= enter_threshold).
    exit_threshold: float = 0.4
    #: Consecutive updates above enter_threshold (same class) before an event fires.
    min_consecutive: int = 2
    #: Source frames after an event during which no new event may fire.
    cooldown_frames: int = 12
    #: An event needs the hand probe's evidence (models whose probe was trained, i.e.
    #: TrainConfig.hand_weight > 0): a hand in view in at least min_hand_frames of the
    #: window's frames and, for a swipe, moving at least min_travel (fraction of the
    #: frame side) in the swipe's direction. benchmarks/bench_ood.py measures it.
    hand_evidence: bool = True
    min_hand_frames: int = 3
    min_travel: float = 0.15
    #: The resting class: never fires an event (a stream with no such class rests
    #: whenever no class passes the threshold).
    rest_label: str = "no_gesture"
    #: Flip frames horizontally before recognition (selfie cameras). A flip turns a
    #: left swipe into a right swipe, so use it only to undo a mirror, never as a default.
    mirror: bool = False
    #: Run the head only once the buffer holds T embeddings (True), instead of on a
    #: window padded by repeating the first frame (False).
    wait_for_full_window: bool = True
    #: Number of recent frames the running latency / FPS statistics cover.
    stats_window: int = 60
    #: Event matching for the online metric: a predicted event matches a ground-truth
    #: gesture of the same class if it fires between its first frame and
    #: tolerance_frames after its last frame.
    tolerance_frames: int = 12


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a plain JSON-friendly dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def from_dict(cls: type, data: Mapping[str, Any]):
    """Rebuild a config from :func:`to_dict` output; unknown or missing keys are an error."""
    names = {f.name for f in fields(cls)}
    unknown, missing = set(data) - names, names - set(data)
    if unknown or missing:
        from gesture_utils.errors import GestureError

        what = [f"{kind} {sorted(keys)}" for kind, keys in (("unknown", unknown), ("missing", missing))
                if keys]
        raise GestureError(f"{cls.__name__} fields: {'; '.join(what)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


__all__ = [
    "ARTICLE_CLASSES",
    "AugmentConfig",
    "BenchmarkConfig",
    "DEFAULT_CLASSES",
    "ExportConfig",
    "HFLIP_PAIRS",
    "VFLIP_PAIRS",
    "ClipConfig",
    "GenerateConfig",
    "ModelConfig",
    "StreamConfig",
    "TrainConfig",
    "field",
    "from_dict",
    "replace",
    "to_dict",
]
