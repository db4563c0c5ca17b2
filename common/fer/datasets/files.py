"""Reading and checking FER dataset files: images (decoded through :mod:`common.face.media`), face-box crops, csv
files, FER2013 pixel strings and integer / float fields, each error a :class:`FerDataError` naming file and row."""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

N_PIXELS = 48 * 48
_DIGITS_AND_SPACES = re.compile(r"[0-9 \t]+")


class FerDataError(ValueError):
    """A dataset file is malformed; the message names the file and, where there is one, the row."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 HxWx3 RGB, or raise :class:`FerDataError` naming the file."""
    from common.face.media import UnreadableMediaError, decode_image

    path = Path(path)
    if not path.is_file():
        raise FerDataError(f"image file not found: {path}")
    try:
        return decode_image(np.fromfile(path, dtype=np.uint8), str(path))
    except UnreadableMediaError:
        raise FerDataError(f"cannot decode image file (corrupt or not an image): {path}") from None


def crop_box(image: np.ndarray, box: Sequence[float], source: Any = "") -> np.ndarray:
    """Crop an (x, y, w, h) pixel box, clipped to the image; an empty intersection is an error naming the source."""
    x, y, w, h = (int(round(float(v))) for v in box)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 <= x0 or y1 <= y0:
        raise FerDataError(f"{source}: face box {tuple(box)} lies outside the {image.shape[1]}x{image.shape[0]} image")
    return image[y0:y1, x0:x1]


# leading bytes of the image formats OpenCV decodes: JPEG, PNG, BMP, GIF, TIFF, PBM/PGM/PPM, JPEG 2000 (WebP: RIFF
# header with WEBP at offset 8)
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
                     b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head.startswith(_IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def require_files(paths: Sequence[Path], what: str) -> None:
    """Every listed image exists and starts like an image file (checked when the split loads, before any training,
    so a damaged file is reported at once rather than when the split is first read)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:5])
        raise FerDataError(f"{len(missing)} of {len(paths)} {what} image files are missing, e.g.:\n  {shown}")
    corrupt = [p for p in paths if not _looks_like_image(p)]
    if corrupt:
        shown = "\n  ".join(str(p) for p in corrupt[:5])
        raise FerDataError(f"{len(corrupt)} of {len(paths)} {what} image files are not images (empty, corrupt or "
                           f"another format), e.g.:\n  {shown}")


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise FerDataError(f"file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FerDataError(f"{path}: not a readable csv file ({exc})") from exc
    if not rows:
        raise FerDataError(f"{path}: empty file, expected a header row")
    return [c.strip() for c in rows[0]], rows[1:]


def parse_pixels(text: str, where: str) -> np.ndarray:
    """A FER2013 ``pixels`` string -> 48x48 uint8, or an error naming ``where`` (file and row)."""
    if _DIGITS_AND_SPACES.fullmatch(text):  # fast path: only unsigned integers, parsed in C
        values = np.fromstring(text, dtype=np.int64, sep=" ")
        if values.size == N_PIXELS and values.max() <= 255:
            return values.astype(np.uint8).reshape(48, 48)
    parts = text.split()
    if len(parts) != N_PIXELS:
        raise FerDataError(f"{where}: pixels has {len(parts)} values, expected {N_PIXELS} (48x48)")
    try:
        values = np.array(parts, dtype=np.int64)
    except ValueError:
        bad = next(p for p in parts if not p.lstrip("-").isdigit())
        raise FerDataError(f"{where}: pixel value {bad!r} is not an integer") from None
    if values.min() < 0 or values.max() > 255:
        raise FerDataError(f"{where}: pixel values must lie in 0..255, found {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(48, 48)


def int_field(value: str, where: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise FerDataError(f"{where}: {what} {value!r} is not an integer") from None



def float_field(value: str, where: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise FerDataError(f"{where}: {what} {value!r} is not a number") from None
