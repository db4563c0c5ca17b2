"""The seven HAFEM augmentations: probabilities, ranges, seeding; the eval transform; FerTorchDataset."""
import numpy as np
import pytest
import torch

from common.fer import augment as A
from common.fer import datasets as D

SIZE = 64
OFF = dict(p_flip=0.0, p_crop=0.0, p_jitter=0.0, p_rotate=0.0, p_noise=0.0, p_cutout=0.0)


def gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = rng.integers(30, 220, (SIZE, SIZE, 3)).astype(np.uint8)
    img[:, : SIZE // 2] = 250  # left half bright: a flip is visible
    return img


def unnormalise(x):
    mean = torch.tensor(A.IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(A.IMAGENET_STD)[:, None, None]
    return x * std + mean


def test_eval_transform_is_deterministic_and_normalised(image):
    t = A.eval_transform(32)
    a, b = t(image, gen(0)), t(image, gen(1))
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32 and torch.equal(a, b)
    x = A.eval_transform(SIZE)(image)
    np.testing.assert_allclose(unnormalise(x).permute(1, 2, 0).numpy() * 255, image, atol=0.6)
    gray = A.eval_transform(SIZE)(image[:, :, 0])
    assert gray.shape == (3, SIZE, SIZE)


def test_all_off_is_the_eval_transform(image):
    assert torch.equal(A.train_transform(SIZE, **OFF)(image, gen(0)), A.eval_transform(SIZE)(image))


def test_same_seed_same_output_other_seed_other_output(image):
    t = A.train_transform(SIZE)
    assert torch.equal(t(image, gen(5)), t(image, gen(5)))
    outs = [t(image, gen(s)) for s in range(6)]
    assert len({o.numpy().tobytes() for o in outs}) > 1


def _rate(transform, image, changed, n=300):
    base = A.eval_transform(SIZE)(image)
    return np.mean([changed(transform(image, gen(s)), base) for s in range(n)])


@pytest.mark.parametrize("name, p", [("p_flip", 0.5), ("p_crop", 0.8), ("p_jitter", 0.5), ("p_rotate", 0.3),
                                     ("p_noise", 0.2), ("p_cutout", 0.3)])
def test_each_augmentation_fires_at_the_paper_probability(image, name, p):
    assert getattr(A.TrainTransform(), name) == p  # the paper's default
    t = A.train_transform(SIZE, **{**OFF, name: p})
    # crop offsets include the no-shift position (1 in 21^2), so a crop can leave the image unchanged
    rate = _rate(t, image, lambda x, base: not torch.equal(x, base))
    assert abs(rate - p) < 0.09, rate


def test_flip_mirrors(image):
    base = A.eval_transform(SIZE)(image)
    t = A.train_transform(SIZE, **{**OFF, "p_flip": 1.0})
    assert torch.equal(t(image, gen(0)), base.flip(-1))


def test_crop_is_a_shift_of_at_most_the_padding(image):
    t = A.train_transform(SIZE, **{**OFF, "p_crop": 1.0})
    base = A.eval_transform(SIZE)(image)
    x = t(image, gen(3))
    found = False
    for dy in range(-10, 11):
        for dx in range(-10, 11):
            ys, xs = slice(max(dy, 0), SIZE + min(dy, 0)), slice(max(dx, 0), SIZE + min(dx, 0))
            yb, xb = slice(max(-dy, 0), SIZE + min(-dy, 0)), slice(max(-dx, 0), SIZE + min(-dx, 0))
            if torch.allclose(x[:, ys, xs], base[:, yb, xb]):
                found = True
    assert found


def test_noise_sigma_range(image):
    t = A.train_transform(SIZE, **{**OFF, "p_noise": 1.0})
    flat = np.full((SIZE, SIZE, 3), 128, np.uint8)  # mid-grey: no clipping
    base = unnormalise(A.eval_transform(SIZE)(flat))
    sigmas = [float((unnormalise(t(flat, gen(s))) - base).std()) for s in range(40)]
    assert 0.009 < min(sigmas) and max(sigmas) < 0.052 and max(sigmas) - min(sigmas) > 0.02


def test_cutout_is_a_32_pixel_square_of_mean_colour(image):
    t = A.train_transform(224, **{**OFF, "p_cutout": 1.0})
    big = np.random.default_rng(1).integers(30, 220, (224, 224, 3)).astype(np.uint8)
    base = A.eval_transform(224)(big)
    for s in range(10):
        x = t(big, gen(s))
        zero = (x == 0).all(dim=0) & (base != 0).any(dim=0)
        rows, cols = torch.nonzero(zero, as_tuple=True)
        assert rows.max() - rows.min() + 1 <= 32 and cols.max() - cols.min() + 1 <= 32
        assert zero.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    centred = t(big, gen(0))
    assert ((centred == 0).all(dim=0)).sum() > 0


def test_rotation_stays_within_15_degrees():
    t = A.train_transform(SIZE, **{**OFF, "p_rotate": 1.0})
    line = np.zeros((SIZE, SIZE, 3), np.uint8)
    line[SIZE // 2 - 1: SIZE // 2 + 1, 4:-4] = 255  # a horizontal bar
    angles = []
    for s in range(30):
        x = unnormalise(t(line, gen(s)))[0]
        ys, xs = torch.nonzero(x > 0.5, as_tuple=True)
        slope = np.polyfit(xs.numpy(), ys.numpy(), 1)[0]
        angles.append(np.degrees(np.arctan(slope)))
    assert max(abs(a) for a in angles) < 16 and max(abs(a) for a in angles) > 8


def test_scale_with_size():
    t = A.train_transform(112, scale_with_size=True)
    assert (t.crop_padding, t.cutout_size) == (5, 16)
    assert A.train_transform(112).cutout_size == 32
    with pytest.raises(ValueError, match=">= 8 px"):
        A.eval_transform(4)


def test_mixup():
    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
    y = torch.tensor([0, 1, 2, 1])
    applied = [A.mixup(x, y, alpha=0.4, p=0.4, generator=gen(s), n_classes=3) for s in range(400)]
    rate = np.mean([r.lam < 1.0 for r in applied])
    assert abs(rate - 0.4) < 0.07
    r = next(r for r in applied if r.lam < 1.0)
    assert torch.allclose(r.x, r.lam * x + (1 - r.lam) * x[r.index])
    assert torch.allclose(r.y.sum(1), torch.ones(4)) and r.y.shape == (4, 3)
    lams = np.array([r.lam for r in applied if r.lam < 1.0])
    assert (lams > 0).all() and ((lams < 0.1) | (lams > 0.9)).mean() > 0.3  # Beta(0.4, 0.4) is U-shaped
    same = A.mixup(x, y, generator=gen(7), n_classes=3)
    again = A.mixup(x, y, generator=gen(7), n_classes=3)
    assert same.lam == again.lam and torch.equal(same.x, again.x)
    soft = torch.full((4, 3), 1 / 3)
    assert torch.allclose(A.mixup(x, soft, p=1.0, generator=gen(0)).y, soft)
    with pytest.raises(ValueError, match="n_classes"):
        A.mixup(x, y)


# ------------------------------------------------------------------------------------------------ torch dataset

def _split(soft=None, mode="hard"):
    imgs = [np.full((20, 20, 3), 10 * k, np.uint8) for k in range(4)]
    return D.FerSplit("t", "train", imgs, np.array([0, 1, 2, 1]), ("a", "b", "c"), [f"s{k}" for k in range(4)],
                      D.SplitReport(rows_read=4), soft_labels=soft, label_mode=mode)


def test_torch_dataset_hard_and_soft_targets():
    ds = D.FerTorchDataset(_split(), image_size=32)
    x, t = ds[2]
    assert x.shape == (3, 32, 32) and t.dtype == torch.int64 and int(t) == 2
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    xb, tb = next(iter(loader))
    assert xb.shape == (4, 3, 32, 32) and tb.tolist() == [0, 1, 2, 1]
    soft = np.array([[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1], [0.2, 0.8, 0]], np.float32)
    x, t = D.FerTorchDataset(_split(soft, "crossentropy"), image_size=32)[0]
    assert torch.allclose(t, torch.tensor([0.5, 0.5, 0.0]))
    _, t = D.FerTorchDataset(_split(), image_size=32, target="soft")[1]
    assert t.tolist() == [0.0, 1.0, 0.0]


def test_torch_dataset_probability_mode_samples_one_hot_reproducibly():
    soft = np.array([[0.5, 0.5, 0]] * 4, np.float32)
    ds = D.FerTorchDataset(_split(soft, "probability"), image_size=16, seed=3)
    draws = []
    for epoch in range(60):
        ds.set_epoch(epoch)
        _, t = ds[0]
        assert t.sum() == 1 and t[2] == 0
        draws.append(int(t.argmax()))
    assert 15 < sum(draws) < 45  # both classes drawn, about half each
    ds.set_epoch(7)
    assert torch.equal(ds[0][1], ds[0][1])


def test_torch_dataset_augmentation_is_seeded_per_epoch_and_index():
    ds = D.FerTorchDataset(_split(), transform=A.train_transform(32), seed=1)
    a = ds[1][0]
    assert torch.equal(a, ds[1][0])
    outs = []
    for e in range(5):
        ds.set_epoch(e)
        outs.append(ds[1][0].numpy().tobytes())
    assert len(set(outs)) > 1
    other = D.FerTorchDataset(_split(), transform=A.train_transform(32), seed=2)
    assert any(not torch.equal(ds[i][0], other[i][0]) for i in range(4))


def test_torch_dataset_accepts_a_one_argument_transform():
    ds = D.FerTorchDataset(_split(), transform=lambda img: torch.from_numpy(img).permute(2, 0, 1).float())
    x, t = ds[3]
    assert x.shape == (3, 20, 20) and float(x.max()) == 30.0 and int(t) == 1
