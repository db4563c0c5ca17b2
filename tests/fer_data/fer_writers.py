"""Writers of tiny FER files in the official on-disk formats (fer-method.md §3), for loader tests."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

FER2013_HEADER = "emotion,pixels,Usage"
FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
                    "valence,arousal")


def pixel_string(rng: np.random.Generator) -> str:
    return " ".join(str(v) for v in rng.integers(0, 256, 48 * 48))


def write_fer2013(path: Path, rows: Sequence[tuple[int, str]], seed: int = 0,
                  header: str = FER2013_HEADER) -> list[str]:
    """rows = (emotion, usage); returns the pixel strings written."""
    rng = np.random.default_rng(seed)
    pixels = [pixel_string(rng) for _ in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        fh.write(header + "\n")
        w = csv.writer(fh)
        for (emotion, usage), px in zip(rows, pixels):
            w.writerow([emotion, px, usage])
    return pixels


def write_ferplus(path: Path, rows: Sequence[tuple[str, str, Sequence[int]]]) -> None:
    """rows = (usage, image name or '', 10 votes)."""
    with open(path, "w", newline="") as fh:
        fh.write(FERPLUS_HEADER + "\n")
        w = csv.writer(fh)
        for usage, name, votes in rows:
            w.writerow([usage, name, *votes])


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok, path
    return path


def solid(value: int, size: int = 24, channel_shift: int = 0) -> np.ndarray:
    """A flat colour image whose colour encodes ``value`` (so a test can tell images apart after decoding)."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (value % 256, (value * 7 + channel_shift) % 256, 128)
    return img


def write_rafdb(root: Path, entries: Sequence[tuple[str, int]], size: int = 24) -> None:
    """entries = (name like train_00001.jpg, label 1..7); writes the partition file and the aligned PNG-in-JPG."""
    basic = root / "basic"
    (basic / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (basic / "EmoLabel" / "list_patition_label.txt").write_text(
        "".join(f"{name} {label}\n" for name, label in entries))
    for k, (name, _) in enumerate(entries):
        write_image(basic / "Image" / "aligned" / f"{Path(name).stem}_aligned.jpg", solid(10 * k, size))


def landmarks_string(box: Sequence[int]) -> str:
    x, y, w, h = box
    rng = np.random.default_rng(1)
    pts = np.stack([x + rng.uniform(0, w, 68), y + rng.uniform(0, h, 68)], axis=1)
    # put the eye centres at known places: right eye (36-41) left, left eye (42-47) right
    pts[36:42] = (x + 0.3 * w, y + 0.4 * h)
    pts[42:48] = (x + 0.7 * w, y + 0.4 * h)
    return ";".join(f"{v:.2f}" for v in pts.reshape(-1))


def write_affectnet_csv(root: Path, split: str, rows: Sequence[tuple[str, Sequence[int], int]],
                        image_size: int = 64, header: str = AFFECTNET_HEADER, write_images: bool = True) -> None:
    """rows = (subDirectory_filePath, (x, y, w, h), expression code); images are written under
    Manually_Annotated_Images/."""
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    with open(lists / f"{split}.csv", "w", newline="") as fh:
        fh.write(header + "\n")
        w = csv.writer(fh)
        for k, (rel, box, code) in enumerate(rows):
            w.writerow([rel, *box, landmarks_string(box) if box[2] > 0 else "", code, 0.1, -0.2])
            if write_images:
                img = np.zeros((image_size, image_size, 3), np.uint8)
                img[:, :, 0] = np.arange(image_size, dtype=np.uint8)[None, :]  # x ramp, to check the crop
                img[:, :, 1] = np.arange(image_size, dtype=np.uint8)[:, None]  # y ramp
                write_image(root / "Manually_Annotated_Images" / rel, img)


def write_affectnet_npy(root: Path, folder: str, items: Sequence[tuple[str, int]], as_string: bool = True,
                        size: int = 32) -> None:
    """items = (id, code): ``<folder>/images/<id>.jpg`` + ``annotations/<id>_exp.npy`` (a string scalar, as in the
    release, or an int)."""
    for k, (ident, code) in enumerate(items):
        write_image(root / folder / "images" / f"{ident}.jpg", solid(20 * k, size))
        (root / folder / "annotations").mkdir(parents=True, exist_ok=True)
        np.save(root / folder / "annotations" / f"{ident}_exp.npy", np.array(str(code) if as_string else code))
