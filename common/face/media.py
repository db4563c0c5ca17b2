"""Reading images and videos with OpenCV, with errors that name the file and say what is wrong.

Images come back as RGB uint8 (H, W, 3) (gray and RGBA files are converted); :func:`encode_jpeg` goes the other way.
Videos are decoded sequentially (seeking is unreliable for many codecs); :class:`VideoReader` also reads the
container's frame count so a caller can tell a short read (a damaged or truncated file that stops decoding early)
from a complete one. :class:`LoopedVideo` serves a file's BGR frames endlessly, for timing a video pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
# a container frame count may differ from what decodes by a frame or two (edit lists, B-frame padding); more than
# this fraction missing is a short read
SHORT_READ_TOLERANCE = 0.02


class UnreadableMediaError(ValueError):
    """A file cannot be read as an image or a video; the message names it and the reason."""


def rgb_uint8(image: np.ndarray, source: str = "") -> np.ndarray:
    """``image`` as a contiguous (H, W, 3) uint8 RGB array (a gray (H, W) image is repeated on 3 channels)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"{source or 'image'}: expected an HxWx3 uint8 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def decode_image(data: bytes | np.ndarray, source: str = "image") -> np.ndarray:
    """Encoded image bytes (PNG, JPEG, ...) -> RGB uint8; raises :class:`UnreadableMediaError` naming ``source``."""
    import cv2

    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else np.asarray(data)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise UnreadableMediaError(f"{source}: not a readable image (OpenCV cannot decode it)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file; any problem raises :class:`UnreadableMediaError` naming the file."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # also reads non-ASCII paths, which cv2.imread does not
    except OSError as exc:
        raise UnreadableMediaError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return decode_image(data, str(path))


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """RGB uint8 image -> JPEG bytes at ``quality`` (what a camera or a file reader hands over)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


@dataclass(frozen=True)
class VideoInfo:
    fps: float | None          # None when the container reports none
    width: int
    height: int
    n_frames_header: int       # the container's frame count (0 when it does not say)


class VideoReader:
    """Sequential frames of one video file.

    ``info`` is read on opening (a file OpenCV cannot open raises :class:`UnreadableMediaError`). Iterating yields
    frames (BGR by default, RGB with ``rgb=True``) until decoding stops; ``n_read`` then says how many came out and
    :meth:`short_read` whether that is clearly fewer than the container announced.
    """

    def __init__(self, path: str | Path, rgb: bool = False):
        import cv2

        self.path, self.rgb = Path(path), rgb
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise UnreadableMediaError(f"{self.path}: cannot be opened as a video")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.info = VideoInfo(fps if fps > 0 else None, int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
                              int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
                              max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0))
        self.n_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return
            self.n_read += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if self.rgb else frame

    def grab(self) -> bool:
        """Advance one frame without decoding it into an array; False at the end."""
        ok = self._cap.grab()
        self.n_read += bool(ok)
        return bool(ok)

    def retrieve(self) -> np.ndarray | None:
        import cv2

        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if self.rgb else frame

    def short_read(self) -> str | None:
        """A sentence describing a short read (frames decoded well below the container's count), or None."""
        expected = self.info.n_frames_header
        if expected <= 0 or self.n_read >= expected * (1 - SHORT_READ_TOLERANCE) - 1:
            return None
        return (f"{self.path}: only {self.n_read} of the {expected} frames the container announces could be decoded "
                f"(damaged or truncated file)")

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LoopedVideo:
    """Decoded BGR frames of a video file, restarting at the end (the restart, a scene cut, is timed like a frame).
    ``threads`` sets the decoder's threads (OpenCV's FFmpeg backend)."""

    def __init__(self, path: str | Path, threads: int = 1):
        import cv2

        self.path, self.threads = Path(path), int(threads)
        self._open = lambda: cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, self.threads])
        self._cap = self._open()
        if not self._cap.isOpened():
            raise UnreadableMediaError(f"{self.path}: cannot be opened as a video")
        self.restarts = 0

    def read(self) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok:
            self._cap.release()
            self._cap = self._open()
            self.restarts += 1
            ok, frame = self._cap.read()
            if not ok:
                raise UnreadableMediaError(f"{self.path}: no frame decodes")
        return frame

    def close(self) -> None:
        self._cap.release()


def probe_video(path: str | Path) -> dict:
    """fps, size and header frame count of a video whose first frame decodes (else :class:`UnreadableMediaError`)."""
    try:
        reader = VideoReader(path)
    except UnreadableMediaError as exc:
        raise UnreadableMediaError(f"{path}: not a readable video (OpenCV cannot open it)") from exc
    with reader:
        first = next(iter(reader), None)
        if first is None:
            raise UnreadableMediaError(f"{path}: not a readable video (OpenCV cannot decode a first frame)")
        return {"fps": reader.info.fps, "width": int(first.shape[1]), "height": int(first.shape[0]),
                "n_frames_header": reader.info.n_frames_header}


def read_frames(path: str | Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """RGB frames at ``indices`` (0-based), decoding sequentially and retrieving only the wanted ones."""
    wanted = {int(i) for i in indices}
    frames: dict[int, np.ndarray] = {}
    if not wanted:
        return frames
    with VideoReader(path, rgb=True) as reader:
        for i in range(max(wanted) + 1):
            if not reader.grab():
                break
            if i in wanted:
                frame = reader.retrieve()
                if frame is not None:
                    frames[i] = frame
    return frames
