"""Inputs for the predict tests: a real photograph shipped in scikit-image, the generated smile video, bad files."""
import cv2
import numpy as np
import pytest


def write_rgb(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)), path
    return path


def write_video(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="session")
def astronaut():
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture
def astronaut_png(tmp_path, astronaut):
    return write_rgb(tmp_path / "astronaut.png", astronaut)


@pytest.fixture
def two_faces_png(tmp_path, astronaut):
    """The astronaut at full size (right) and at 5/8 size (left): the larger face must be the one analysed."""
    small = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 336 + 512, 3), 255, dtype=np.uint8)
    canvas[96:416, :320] = small
    canvas[:, 336:] = astronaut
    return write_rgb(tmp_path / "two_faces.png", canvas)


@pytest.fixture
def faceless_video(tmp_path):
    """A readable 2-second video of smooth noise: no face anywhere."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
    frames = [np.roll(base, 3 * i, axis=1) for i in range(50)]
    return write_video(tmp_path / "no_face.mp4", frames)


@pytest.fixture(scope="session")
def smile_video(tmp_path_factory):
    from datasets.demo.video import make_smile_video

    return make_smile_video(tmp_path_factory.mktemp("video") / "smile.mp4", seed=0, fps=25, seconds=3.0)


@pytest.fixture(scope="session")
def trained_results(tmp_path_factory):
    """A results folder with one Hadamard fold and one HAFEM seed trained by the real study code on demo data."""
    from tests.predict.training import train_demo_checkpoints

    return train_demo_checkpoints(tmp_path_factory.mktemp("trained") / "results")
