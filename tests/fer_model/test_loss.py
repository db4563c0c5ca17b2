import math

import pytest
import torch
import torch.nn.functional as F

from common.fer.loss import (
    LOSSES,
    CenterLoss,
    CompoundLoss,
    DistributionAwareSmoothing,
    as_distribution,
    inverse_frequency_weights,
)


def test_inverse_frequency_weights_by_hand():
    # 1/10, 1/30, 1/60 = 0.1, 0.0333, 0.01667; sum 0.15
    w = inverse_frequency_weights([10, 30, 60])
    assert torch.allclose(w, torch.tensor([0.1 / 0.15, (1 / 30) / 0.15, (1 / 60) / 0.15]))
    assert w[0] > w[1] > w[2]  # the rarest class receives the most smoothing mass


def test_dls_redistributes_mass_by_inverse_frequency_hand_computation():
    dls = DistributionAwareSmoothing([10, 30, 60], smoothing=0.1)
    q = as_distribution(torch.tensor([2]), 3)  # a sample of the most frequent class
    smoothed = dls.smoothed(q)[0]
    expected = torch.tensor([0.1 * 2 / 3, 0.1 * 2 / 9, 0.9 + 0.1 * 1 / 9])
    assert torch.allclose(smoothed, expected, atol=1e-6)
    assert math.isclose(smoothed.sum().item(), 1.0, rel_tol=1e-6)
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    logp = torch.log_softmax(logits, -1)[0]
    assert math.isclose(dls(logits, q).item(), -(expected * logp).sum().item(), rel_tol=1e-6)


def test_dls_differs_from_uniform_smoothing():
    logits = torch.tensor([[0.5, -1.0, 2.0]])
    y = torch.tensor([2])
    uniform = F.cross_entropy(logits, y, label_smoothing=0.1)
    aware = DistributionAwareSmoothing([10, 30, 60], 0.1)(logits, as_distribution(y, 3))
    balanced = DistributionAwareSmoothing([20, 20, 20], 0.1)(logits, as_distribution(y, 3))
    assert torch.isclose(balanced, uniform, atol=1e-6)  # equal counts reduce to ordinary label smoothing
    assert not torch.isclose(aware, uniform, atol=1e-4)


def test_center_loss_hand_computation_and_zero_at_centres():
    center = CenterLoss(2, 3)
    with torch.no_grad():
        center.centers.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    feats = torch.tensor([[1.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    q = as_distribution(torch.tensor([0, 1]), 2)
    # sample 0: 1/2 * mean(1, 4, 4) = 1.5; sample 1: 0 -> batch mean 0.75
    assert math.isclose(center(feats, q).item(), 0.75, rel_tol=1e-6)
    assert center(center.centers.detach().clone(), torch.eye(2)).item() == pytest.approx(0.0, abs=1e-12)


def test_center_loss_alone_pulls_centres_to_class_means():
    torch.manual_seed(0)
    center = CenterLoss(2, 4)
    feats = torch.randn(10, 4)
    y = torch.tensor([0, 1] * 5)
    opt = torch.optim.SGD(center.parameters(), lr=2.0)
    for _ in range(200):
        loss = center(feats, as_distribution(y, 2))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(center.centers[0], feats[y == 0].mean(0), atol=1e-3)
    assert torch.allclose(center.centers[1], feats[y == 1].mean(0), atol=1e-3)


def test_compound_is_the_weighted_sum_and_ce_matches_torch():
    torch.manual_seed(0)
    loss = CompoundLoss(4, 8, [5, 10, 20, 40], weights=(0.6, 0.25, 0.15), smoothing=0.1)
    logits, feats, y = torch.randn(6, 4), torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    total, parts = loss(logits, feats, y)
    assert math.isclose(parts["ce"], F.cross_entropy(logits, y).item(), rel_tol=1e-6)
    assert math.isclose(total.item(), 0.6 * parts["ce"] + 0.25 * parts["center"] + 0.15 * parts["dls"], rel_tol=1e-6)


def test_soft_targets_and_hard_labels_agree_on_one_hot():
    loss = LOSSES.create("compound", num_classes=3, feat_dim=2, class_counts=[1, 2, 3])
    logits, feats = torch.randn(4, 3), torch.randn(4, 2)
    y = torch.tensor([0, 2, 1, 1])
    assert torch.isclose(loss(logits, feats, y)[0], loss(logits, feats, F.one_hot(y, 3).float())[0])
    soft = torch.tensor([[0.5, 0.5, 0.0]] * 4)  # FER+ crossentropy-mode style target
    ce = loss(logits, feats, soft)[1]["ce"]
    assert math.isclose(ce, -(soft * torch.log_softmax(logits, -1)).sum(-1).mean().item(), rel_tol=1e-6)
    with pytest.raises(ValueError, match="classes"):
        loss(logits, feats, torch.ones(4, 5) / 5)


@pytest.mark.parametrize("name", ["ce", "compound"])
def test_one_batch_overfit_with_each_loss(name):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU())
    head = torch.nn.Linear(16, 3)
    crit = LOSSES.create(name, num_classes=3, feat_dim=16, class_counts=[2, 3, 3], smoothing=0.1)
    x, y = torch.randn(8, 10), torch.tensor([0, 1, 2, 0, 1, 2, 1, 2])
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()) + list(crit.parameters()), lr=1e-2)
    for _ in range(150):
        f = net(x)
        total, _ = crit(head(f), f, y)
        opt.zero_grad()
        total.backward()
        opt.step()
    assert (head(net(x)).argmax(1) == y).all()
