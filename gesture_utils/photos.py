"""Real photographs and faces for the generator's scenes (notebook 01).

All ship inside installed packages (scikit-image's data images and LFW faces,
scikit-learn's and matplotlib's sample photos), so it works offline.  Photos are split by
name, faces by index, into those of training scenes and those reserved for the
out-of-distribution set (``GenerateConfig(holdout=True)``, ``benchmarks/bench_ood.py``).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from gesture_utils.errors import GestureError

#: Photos of training scenes: people, animals, objects, textures, documents, sky.
TRAIN_PHOTOS: tuple[str, ...] = (
    "skimage:astronaut", "skimage:chelsea", "skimage:rocket", "skimage:hubble_deep_field",
    "skimage:grass", "skimage:gravel", "skimage:coins", "skimage:moon",
    "skimage:immunohistochemistry", "skimage:retina", "skimage:text", "skimage:logo",
    "skimage:colorwheel", "skimage:clock", "skimage:cell", "sklearn:flower.jpg",
)
#: Reserved for the out-of-distribution set only (two of them show a person).
HOLDOUT_PHOTOS: tuple[str, ...] = (
    "skimage:camera", "skimage:coffee", "skimage:brick", "skimage:page",
    "sklearn:china.jpg", "matplotlib:grace_hopper.jpg",
)
#: LFW faces (scikit-image's subset: the first 100 of its 200 images are faces).
N_FACES = 100
HOLDOUT_FACES = range(75, 100)  #: faces 75-99 appear only in the out-of-distribution set
#: Shorter side of every loaded photo; crops are resized to the clip size from here.
PHOTO_SIDE = 256


def photo_names(holdout: bool) -> tuple[str, ...]:
    """The photos a scene may use: the reserved ones if ``holdout`` else the training ones."""
    return HOLDOUT_PHOTOS if holdout else TRAIN_PHOTOS


def face_indices(holdout: bool) -> range:
    """Indices into :func:`faces` a scene may use (disjoint for the two settings)."""
    return HOLDOUT_FACES if holdout else range(HOLDOUT_FACES.start)


def _read(name: str) -> np.ndarray:
    source, _, item = name.partition(":")
    if source == "skimage":
        import skimage.data

        return np.asarray(getattr(skimage.data, item)())
    if source == "sklearn":
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(item))
    if source == "matplotlib":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data(item) as f:
            data = np.frombuffer(f.read(), np.uint8)
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raise GestureError(f"unknown photo source in {name!r} (skimage:, sklearn: or matplotlib:)")


@lru_cache(maxsize=32)
def photo(name: str) -> np.ndarray:
    """Photo ``name`` as float32 RGB ``(h, w, 3)`` with shorter side :data:`PHOTO_SIDE`
    (grey photos become three equal channels; transparency is put on white).  Read-only,
    cached per process."""
    img = _read(name)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        alpha = img[:, :, 3:].astype(np.float32) / 255.0
        img = img[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    img = np.asarray(img, np.float32)
    scale = PHOTO_SIDE / min(img.shape[:2])
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    out = cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def faces() -> np.ndarray:
    """The LFW faces, ``(100, 25, 25)`` float32 grey in [0, 1] (read-only)."""
    import skimage.data

    out = np.asarray(skimage.data.lfw_subset()[:N_FACES], np.float32)
    out.setflags(write=False)
    return out
