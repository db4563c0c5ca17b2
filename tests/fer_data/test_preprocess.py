"""Face preprocessing on real images: scikit-image's astronaut() (a face), coffee() (no face)."""
import cv2
import numpy as np
import pytest
from skimage import data

from common import face as F
from common.face import landmarks68 as L68
from common.fer import datasets as D
from common.fer import preprocess as P


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


def rotate(image, degrees):
    h, w = image.shape[:2]
    return cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), (w, h))


def eye_angle_68(image):
    """Roll of the eye line measured with dlib's 68 points (reliable on near-upright faces)."""
    face = F.detect_faces(image)[0]
    right, left = L68.eyes_from_68(L68.landmarks_68(image, face.box))
    return float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))


def test_detects_the_astronaut_face_with_keypoints(astronaut):
    faces = F.detect_faces(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.8 and f.keypoints.shape == (6, 2)
    x0, y0, x1, y1 = f.box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # the face is in the upper middle of the 512x512 photo
    (rx, ry), (lx, ly) = f.eyes
    assert x0 < rx < lx < x1 and y0 < ry < y1  # subject's right eye on the image's left
    # dlib's 68 points agree with MediaPipe's eyes within a few pixels
    np.testing.assert_allclose(L68.eyes_from_68(L68.landmarks_68(astronaut, f.box)), f.eyes, atol=8)


def test_no_face_gives_a_clear_error_naming_the_file():
    assert F.detect_faces(data.coffee()) == []
    with pytest.raises(P.NoFaceError, match="no face detected in coffee.png"):
        P.preprocess_image(data.coffee(), source="coffee.png")


def test_several_faces_largest_first(astronaut):
    small = np.pad(cv2.resize(astronaut, (384, 384)), ((64, 64), (0, 0), (0, 0)))
    two = np.hstack([small, astronaut])
    faces = F.detect_faces(two, model="full")  # full range: faces at several scales
    assert len(faces) == 2 and faces[0].area > faces[1].area and faces[0].box[0] > 512
    result = P.preprocess_image(two, P.PreprocessConfig(clahe=False, detector="full"))
    assert result.n_faces == 2 and result.box[0] > 512  # the larger face (right half) was aligned


@pytest.mark.parametrize("degrees", [20, -25])
def test_alignment_levels_the_eyes(astronaut, degrees):
    tilted = rotate(astronaut, degrees)
    (rx, ry), (lx, ly) = F.detect_faces(tilted)[0].eyes
    assert abs(np.degrees(np.arctan2(ly - ry, lx - rx))) > 10  # the input really is tilted
    five = P.preprocess_image(tilted, P.PreprocessConfig(clahe=False)).image
    sixty_eight = P.preprocess_image(tilted, P.PreprocessConfig(alignment="68point", clahe=False)).image
    assert five.shape == sixty_eight.shape == (224, 224, 3)
    assert abs(eye_angle_68(five)) < 8  # MediaPipe's eye keypoints are coarse
    assert abs(eye_angle_68(sixty_eight)) < 2


def test_alignment_matrix_geometry():
    eyes = np.array([[100.0, 120.0], [140.0, 100.0]])  # left eye higher: tilted
    box = (80, 80, 160, 180)  # 80 x 100 -> side 100 * 1.3 = 130 mapped onto 224
    m = F.eye_alignment_matrix(eyes, box, size=224, enlarge=1.3)
    out = np.c_[eyes, np.ones(2)] @ m.T
    assert out[0, 1] == pytest.approx(out[1, 1])  # eyes on one horizontal line
    assert out[1, 0] > out[0, 0]
    assert np.hypot(*(out[1] - out[0])) == pytest.approx(np.hypot(40, 20) * 224 / 130)
    centre = np.array([120.0, 130.0, 1.0]) @ m.T
    np.testing.assert_allclose(centre, (112, 112))  # box centre -> crop centre


def test_given_68_landmarks_skip_detection():
    # a blank image: detection would fail, the dataset's landmarks are used instead
    img = np.full((100, 100, 3), 90, np.uint8)
    lm = np.zeros((68, 2))
    lm[:, 0], lm[:, 1] = np.linspace(20, 80, 68), np.linspace(30, 90, 68)
    lm[36:42], lm[42:48] = (35, 50), (65, 50)
    out = P.preprocess_image(img, P.PreprocessConfig(alignment="68point", size=64), landmarks68=lm)
    assert out.image.shape == (64, 64, 3) and out.n_faces == 1


def test_clahe_equalises_luminance_and_keeps_colour():
    img = (100 + data.astronaut() // 4).astype(np.uint8)  # a low-contrast photo
    lab_in = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    out = F.clahe_lab(img, clip=2.0)
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2LAB)
    assert lab_out[:, :, 0].std() > 1.5 * lab_in[:, :, 0].std()
    stronger = cv2.cvtColor(F.clahe_lab(img, clip=4.0), cv2.COLOR_RGB2LAB)
    assert stronger[:, :, 0].std() > lab_out[:, :, 0].std()  # a higher clip limit equalises more
    assert np.abs(lab_out[:, :, 1:].astype(int) - lab_in[:, :, 1:]).mean() < 3  # chroma essentially kept


def test_aligned_datasets_skip_detection():
    img = np.full((48, 48, 3), 120, np.uint8)  # no face at all: must not be looked for
    out = P.preprocess_image(img, P.PreprocessConfig(alignment="none", size=96))
    assert out.image.shape == (96, 96, 3) and out.box is None


def test_cache_stores_per_image_and_replays_failures(tmp_path, astronaut, monkeypatch):
    cache = P.FaceCache(tmp_path)
    cfg = P.PreprocessConfig(size=64)
    first = cache.get(astronaut, cfg, source="astronaut")
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1 and files[0].stem == P.FaceCache.key(astronaut, cfg)
    assert P.FaceCache.key(astronaut, P.PreprocessConfig(size=96)) != files[0].stem  # parameters are in the key

    def boom(*a, **k):
        raise AssertionError("cache miss")

    monkeypatch.setattr(P, "preprocess_image", boom)
    again = cache.get(astronaut, cfg, source="astronaut")
    np.testing.assert_array_equal(first.image, again.image)
    assert again.n_faces == 1 and again.score == pytest.approx(first.score)
    monkeypatch.undo()
    with pytest.raises(P.NoFaceError, match="coffee.png"):
        cache.get(data.coffee(), cfg, source="coffee.png")
    monkeypatch.setattr(P, "preprocess_image", boom)
    with pytest.raises(P.NoFaceError, match=r"coffee.png \(cached result\)"):
        cache.get(data.coffee(), cfg, source="coffee.png")
    assert not list(tmp_path.rglob("*.tmp"))
    monkeypatch.undo()
    files[0].write_bytes(b"damaged")  # a damaged entry is recomputed, not trusted
    np.testing.assert_array_equal(cache.get(astronaut, cfg).image, first.image)


def _split(images, aligned=False):
    n = len(images)
    return D.FerSplit("test-set", "test", images, np.zeros(n, np.int64), ("a", "b"), [f"img{i}.jpg" for i in range(n)],
                      D.SplitReport(rows_read=n), aligned=aligned)


def test_preprocess_split_reports_no_face_and_several_faces(tmp_path, astronaut):
    two = np.hstack([astronaut, astronaut])
    split = _split([astronaut, data.coffee(), two])
    cfg = P.PreprocessConfig(size=64)
    with pytest.raises(P.NoFaceError, match="img1.jpg"):
        P.preprocess_split(split, cfg, cache_dir=tmp_path, progress=False)
    done = P.preprocess_split(split, cfg, cache_dir=tmp_path, on_no_face="skip", progress=False)
    assert len(done) == 2 and done.sources == ["img0.jpg", "img2.jpg"]
    assert done.report.skipped == {"no face detected": 1} and done.report.examples["no face detected"] == ["img1.jpg"]
    assert any("several faces" in n and "img2.jpg" in n for n in done.report.notes)
    assert done.images[1].shape == (64, 64, 3)
    kept = P.preprocess_split(split, cfg, cache_dir=tmp_path, on_no_face="unaligned", progress=False)
    assert len(kept) == 3 and not kept.report.skipped
    assert any("1 images had no detectable face" in n and "img1.jpg" in n for n in kept.report.notes)
    np.testing.assert_array_equal(kept.images[1], F.clahe_lab(F.resize_bicubic(data.coffee(), 64)))
    with pytest.raises(ValueError, match="on_no_face must be one of"):
        P.preprocess_split(split, cfg, on_no_face="drop")
    aligned = P.preprocess_split(_split([np.zeros((48, 48, 3), np.uint8)], aligned=True),
                                 P.PreprocessConfig(alignment="none", size=32), progress=False)
    assert aligned.images[0].shape == (32, 32, 3)


def test_affectnet_csv_crop_then_preprocess(tmp_path, astronaut):
    """A photo in the AffectNet csv release: the loader crops the box; the 5-point path re-detects the face on the
    crop, the 68-point path uses the csv's own landmarks."""
    face = F.detect_faces(astronaut)[0]
    x0, y0, x1, y1 = face.box.round().astype(int)
    lm = L68.landmarks_68(astronaut, face.box)
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    row = ["1/astro.jpg", x0, y0, x1 - x0, y1 - y0, ";".join(f"{v:.1f}" for v in lm.reshape(-1)), 1, 0.5, 0.3]
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
    (lists / "validation.csv").write_text(header + "\n" + ",".join(map(str, row)) + "\n")
    (tmp_path / "Manually_Annotated_Images" / "1").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "Manually_Annotated_Images" / "1" / "astro.jpg"), astronaut[:, :, ::-1])
    split = D.load_fer_split("AffectNet", tmp_path, "test")
    assert split.images[0].shape == (y1 - y0, x1 - x0, 3) and not split.aligned
    five = P.preprocess_split(split, P.PreprocessConfig(size=64), cache_dir=tmp_path / "cache", progress=False)
    assert five.images[0].shape == (64, 64, 3)
    sixty_eight = P.preprocess_split(split, P.PreprocessConfig(alignment="68point", size=96, clahe=False),
                                     cache_dir=tmp_path / "cache", progress=False)
    assert abs(eye_angle_68(sixty_eight.images[0])) < 3


def test_tight_crop_is_found_on_the_second_attempt_with_a_border(astronaut):
    x0, y0, x1, y1 = F.detect_faces(astronaut)[0].box
    dx, dy = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    tight = np.ascontiguousarray(astronaut[int(y0 + dy):int(y1 - dy), int(x0 + dx):int(x1 - dx)])
    assert F.detect_faces(tight) == []
    assert len(F.detect_faces(tight, pad=0.5)) == 1
    assert P.preprocess_image(tight, P.PreprocessConfig(size=64)).image.shape == (64, 64, 3)
    with pytest.raises(P.NoFaceError):
        P.preprocess_image(tight, P.PreprocessConfig(size=64, retry_pad=0.0), source="tight.jpg")


def centred_upright(crop):
    """(roll of the eye line in degrees, offset of the mesh's eye-mouth centre from the crop centre as a fraction
    of the side) of the face in an aligned crop, measured with the Face Mesh (independent of the detector)."""
    with F.FaceMesh(tracking=False) as mesh:
        points = mesh.pixels(crop)
    assert len(points) == 1, "the aligned crop must show one face"
    five = F.five_points(points[0])
    (rx, ry), (lx, ly) = five[:2]
    roll = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    target = F.template_points(crop.shape[0]).mean(axis=0)
    return roll, float(np.linalg.norm(five.mean(axis=0) - target) / crop.shape[0])


@pytest.mark.parametrize("degrees", [25, -30])
def test_five_point_fit_gives_an_upright_centred_face(astronaut, degrees):
    tilted = rotate(astronaut, degrees)
    face = F.detect_faces(tilted)[0]
    (rx, ry), (lx, ly) = face.eyes
    seen = np.degrees(np.arctan2(ly - ry, lx - rx))
    assert np.sign(seen) == -np.sign(degrees) and abs(seen) > 10  # the input really is rotated
    config = P.PreprocessConfig(alignment="5point_fit", clahe=False)
    crop = P.preprocess_image(tilted, config).image
    roll, off_centre = centred_upright(crop)
    assert abs(roll) < 4 and off_centre < 0.03  # the astronaut's own head roll is ~2.5 deg
    # the known rotation is undone: the crop of the rotated photo matches that of the upright one
    upright = P.preprocess_image(astronaut, config).image
    roll0, _ = centred_upright(upright)
    assert abs(roll - roll0) < 1.5
    assert np.corrcoef(crop.astype(float).ravel(), upright.astype(float).ravel())[0, 1] > 0.9
    # today's eye-only alignment from the detector's keypoints leaves the tilt visibly in
    eye_only, _ = centred_upright(P.preprocess_image(tilted, P.PreprocessConfig(alignment="5point", clahe=False)).image)
    assert abs(eye_only - roll0) > abs(roll - roll0)


def test_five_point_fit_from_the_datasets_68_landmarks(astronaut, monkeypatch):
    tilted = rotate(astronaut, 20)
    face = F.detect_faces(tilted)[0]
    lm = L68.refine_68(tilted, face.eyes, face.box)  # stands for the dataset's own landmarks (AffectNet csv)

    def no_detection(*a, **k):
        raise AssertionError("detection must be skipped when the dataset gives landmarks")

    monkeypatch.setattr(P, "detect_with_retry", no_detection)
    crop = P.preprocess_image(tilted, P.PreprocessConfig(alignment="5point_fit", clahe=False), landmarks68=lm).image
    roll, off_centre = centred_upright(crop)
    assert abs(roll) < 4 and off_centre < 0.03


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.radians(33), 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = F.similarity_fit(src, src @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)
    mirrored = src * np.array([-1, 1])  # a reflection is not a similarity: the fit stays a rotation
    assert np.linalg.det(F.similarity_fit(src, mirrored)[:, :2]) > 0


def test_five_point_request_without_keypoints_names_the_detectors():
    with pytest.raises(ValueError, match="MediaPipe face detection .* gives eyes, nose tip and mouth centre"):
        F.align_five_point(data.astronaut(), None)
    with pytest.raises(ValueError, match="dlib's 68-point predictor"):
        F.five_point_matrix(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alignment must be one of 5point, 5point_fit, 68point, none"):
        P.PreprocessConfig(alignment="5points")
