"""Grad-CAM and SHAP by facial region (common/fer/explain.py) on a real aligned photograph and on small models whose
evidence is known."""
import numpy as np
import pytest
import torch
from torch import nn

from common.face import topology as T
from common.fer import explain as E
from common.fer.datasets import FerSplit, SplitReport


@pytest.fixture(scope="module")
def aligned_face():
    """scikit-image's astronaut, eye-aligned to 64 px (the demo's input size), and its mesh found at that size."""
    data = pytest.importorskip("skimage.data")
    from common.face.align import align_mesh_photo
    from common.face.mesh import FaceMesh

    photo = np.ascontiguousarray(data.astronaut())
    with FaceMesh(tracking=False) as mesh:
        (points,) = mesh.pixels(photo)
    crop, _ = align_mesh_photo(photo, points, 64)
    found = E.mesh_points(crop[None])[0]
    assert found is not None, "Face Mesh should find the astronaut's face in a 64-px aligned crop"
    return crop, found


def centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_regions_are_disjoint_nonempty_and_in_anatomical_order(aligned_face):
    face, points = aligned_face
    masks = E.region_masks(points, face.shape[:2])
    assert masks.shape == (5, 64, 64) and list(E.REGIONS) == ["eyes", "brows", "nose", "mouth", "cheeks"]
    assert all(m.sum() >= 20 for m in masks) and masks.sum(0).max() == 1  # every pixel in at most one region
    y = {name: centroid(m)[1] for name, m in zip(E.REGIONS, masks)}
    assert y["brows"] < y["eyes"] < y["nose"] < y["mouth"] and y["eyes"] < y["cheeks"] < y["mouth"]
    cheeks = masks[E.REGIONS.index("cheeks")]
    assert cheeks[:, :32].any() and cheeks[:, 32:].any() and not cheeks[:, 30:34].any()  # one patch per side


def test_attribution_on_the_mouth_ranks_the_mouth_first(aligned_face):
    face, points = aligned_face
    masks = E.region_masks(points, face.shape[:2])
    mx, my = centroid(masks[E.REGIONS.index("mouth")])
    yy, xx = np.mgrid[:64, :64]
    heat = np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * 5.0 ** 2))
    means = E.region_means(heat, masks)
    assert E.REGIONS[int(np.argmax(means))] == "mouth"
    assert means[E.REGIONS.index("brows")] < 0.05 < means[E.REGIONS.index("mouth")]
    with pytest.raises(ValueError, match="differ in size"):
        E.region_means(heat[:32], masks)


def test_region_shapley_recovers_an_additive_model_exactly(aligned_face):
    """A predictor that adds up how much of each region is intact: the Shapley values are its weights."""
    import cv2

    face, points = aligned_face
    masks = E.region_masks(points, face.shape[:2])
    blurred = cv2.GaussianBlur(face, (0, 0), sigmaX=max(1.0, E.SHAP_BLUR * 64)).astype(float)
    full = np.array([np.abs(face.astype(float) - blurred)[m].sum() for m in masks])
    weights = np.array([0.05, 0.0, 0.1, 0.6, 0.2])

    def predict(batch):
        intact = np.array([[np.abs(b.astype(float) - blurred)[m].sum() for m in masks] for b in batch]) / full
        p = intact @ weights
        return np.stack([p, 1 - p], axis=1)

    values = E.region_shapley(predict, face, masks, target=0)
    assert np.allclose(values, weights, atol=1e-6)
    assert E.REGIONS[int(np.argmax(values))] == "mouth"


class QuadrantNet(nn.Module):
    """Class 0's logit is the mean brightness of the image's top-left quadrant; class 1's is its negative."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), nn.ReLU())  # activations >= 0, as in a CNN
        nn.init.constant_(self.features[0].weight, 1.0)

    def target_layer(self):
        return self.features

    def forward(self, x):
        a = self.features(x)  # (b, 1, 8, 8) on a 8x8 input
        q = a[:, :, :4, :4].mean((1, 2, 3))
        return torch.stack([q, -q], dim=1)


def test_grad_cam_is_smooth_at_input_size_points_at_the_evidence_and_flags_none():
    faces = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    faces[:, :4, :4] = 250
    maps, peaks = E.grad_cam(QuadrantNet(), faces, [0, 1])
    assert maps.shape == (2, 8, 8) and maps.dtype == np.float32 and 0 <= maps.min() and maps.max() <= 1
    assert maps[0, :4, :4].mean() > 0.9 and maps[0, 5:, 5:].max() < 0.1 and peaks[0] > 0
    # class 1 has only negative evidence: ReLU leaves nothing, and the peak says so
    assert peaks[1] == 0 and np.all(maps[1] == 0)


class PatchNet(nn.Module):
    """A 7-class model on a 4x4 feature grid: class c's logit reads the brightness of patch c of the input."""

    def __init__(self):
        super().__init__()
        self.features = nn.AvgPool2d(8)  # 32 px -> 4x4
        self.scale = nn.Parameter(torch.ones(()))

    def target_layer(self):
        return self.features

    def forward(self, x):
        g = self.features(x).mean(1) * self.scale  # (b, 4, 4)
        return g.flatten(1)[:, :7]


def test_gallery_has_a_correct_and_a_wrong_face_per_class_explained_for_the_prediction():
    rng = np.random.default_rng(0)
    images, labels = [], []
    for c in range(7):
        for wrong in (False, True):
            img = rng.integers(0, 30, (32, 32, 3)).astype(np.uint8)
            r, col = divmod((c + 1) % 7 if wrong else c, 4)
            img[8 * r:8 * r + 8, 8 * col:8 * col + 8] = 255
            images.append(img)
            labels.append(c)
    classes = tuple(f"c{k}" for k in range(7))
    split = FerSplit("toy", "test", images, np.array(labels), classes, [f"img{k}" for k in range(14)],
                     SplitReport())
    cams = E.gradcam_gallery(PatchNet(), split, 32)
    assert cams["maps"].shape == (14, 32, 32) and cams["images"].shape == (14, 32, 32, 3)
    assert cams["images"].dtype == np.uint8 and cams["explained_for"] == "predicted class"
    pairs = sorted(zip(cams["classes"], cams["outcome"]))
    assert pairs == sorted((c, o) for c in classes for o in ("correct", "wrong"))
    for k, (true, pred, outcome) in enumerate(zip(cams["classes"], cams["predicted"], cams["outcome"])):
        assert (true == pred) == (outcome == "correct")
        r, col = divmod(classes.index(pred), 4)  # the map lights up the patch of the predicted class
        patch = cams["maps"][k][8 * r:8 * r + 8, 8 * col:8 * col + 8]
        assert patch.mean() > cams["maps"][k].mean()
    fig = E.plot_gradcam(cams)
    assert len([ax for ax in fig.axes if ax.images]) == 14


def test_faces_without_a_mesh_are_skipped_and_counted():
    """Noise images: Face Mesh finds nothing; every row says so and carries no value."""
    pytest.importorskip("mediapipe")
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (32, 32, 3)).astype(np.uint8) for _ in range(4)]
    split = FerSplit("toy", "test", images, np.array([0, 0, 1, 1]), ("a", "b"), ["n0", "n1", "n2", "n3"],
                     SplitReport())
    out = E.region_attribution(PatchNet(), split, 32, per_class=2)
    assert out["n_faces"] == 4 and out["n_no_mesh"] == 4
    assert len(out["rows"]) == 2 * 2 * 5
    assert all(r["value"] is None and r["n_images"] == 0 and r["n_no_mesh"] == 2 for r in out["rows"])
    assert np.isnan(E.region_table(out, "gradcam")).all()


def test_region_attribution_on_a_real_face_fills_every_region(aligned_face, tmp_path):
    face, _ = aligned_face
    split = FerSplit("toy", "test", [face, face[:, ::-1].copy()], np.array([0, 1]), ("a", "b"), ["f", "flipped"],
                     SplitReport())

    class Mouthy(nn.Module):
        """Two feature channels: brightness inside a box over the mouth (rows 44-56, columns 20-44 of the 64-px
        aligned crop) and outside it; class 0's logit reads the first, class 1's the second."""

        def __init__(self):
            super().__init__()
            box = torch.zeros(1, 1, 64, 64)
            box[..., 44:56, 20:44] = 1
            self.register_buffer("box", box)
            self.features = nn.Identity()

        def target_layer(self):
            return self.features

        def forward(self, x):
            bright = torch.relu(x.mean(1, keepdim=True) + 3)
            a = self.features(torch.cat([bright * self.box, bright * (1 - self.box)], dim=1))
            return a.mean((2, 3))

    out = E.region_attribution(Mouthy(), split, 64, per_class=1)
    assert out["n_no_mesh"] == 0
    cam = E.region_table(out, "gradcam")
    assert np.isfinite(cam[0]).all() and E.REGIONS[int(np.nanargmax(cam[0]))] == "mouth"
    files = E.write_regions(out, tmp_path)
    lines = (tmp_path / files[0]).read_text().splitlines()
    assert lines[0] == ",".join(E.REGION_COLUMNS) and len(lines) == 1 + 2 * 2 * 5
    fig = E.plot_regions(out)
    assert len(fig.axes) == 4  # two heat maps and their colour bars


def test_region_vertex_sets_name_valid_mesh_vertices():
    assert set(T.FACE_REGIONS) == {"eyes", "brows", "nose", "mouth", "cheeks"}
    for sets in T.FACE_REGIONS.values():
        for vertices in sets:
            assert len(vertices) >= 10 and max(vertices) < T.N_MESH_POINTS and len(set(vertices)) == len(vertices)


def test_statistical_analysis_tabulates_and_draws_regions_only_when_runs_saved_them(tmp_path):
    import shutil

    from common.paths import ROOT
    from statistical_analysis.run_tests import run

    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "tests" / "fixtures" / "results_small" / "raw", raw)
    assert run(raw, tmp_path / "t0", tmp_path / "f0", quiet=True) == 0
    assert not (tmp_path / "t0" / "demo" / "hafem_regions.csv").exists()
    assert not (tmp_path / "f0" / "demo" / "hafem_regions.png").exists()
    run_dir = next(raw.glob("hafem/demo/FER2013/hafem/seed*"))
    rows = [{"method": m, "class": c, "region": r, "value": (0.9 if r == "mouth" and c == "happy" else 0.1),
             "unit": "", "n_images": 3, "n_no_mesh": 1} for m in ("gradcam", "shap") for c in ("happy", "sad")
            for r in E.REGIONS]
    E.write_regions({"rows": rows}, run_dir)
    assert run(raw, tmp_path / "t1", tmp_path / "f1", quiet=True) == 0
    table = (tmp_path / "t1" / "demo" / "hafem_regions.csv").read_text().splitlines()
    assert len(table) == 1 + 4
    happy = next(line for line in table if line.startswith("demo,FER2013,happy,gradcam"))
    assert ",mouth,3 (1)" in happy and "0.900" in happy
    assert (tmp_path / "f1" / "demo" / "hafem_regions.png").is_file()
