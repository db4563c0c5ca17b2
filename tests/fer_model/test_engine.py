import itertools
import math

import pytest
import torch

from common.fer.engine import TrainSettings, cosine_warmup_lr, fit, layer_ids, make_optimizer, param_groups_lrd
from common.fer.loss import LOSSES
from common.fer.hafem import HAFEM


def tiny():
    return HAFEM("efficientnet_lite0", num_classes=3, dim=16, depth=1, heads=2, ff_dim=16, token_grid=2)


def test_layer_wise_decay_groups():
    model = tiny()
    crit = LOSSES.create("compound", num_classes=3, feat_dim=16, class_counts=[1, 1, 1])
    groups = param_groups_lrd(model, weight_decay=5e-4, layer_decay=0.9, extra=list(crit.named_parameters()))
    # every parameter exactly once
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters())) + len(list(crit.parameters()))
    top = max(g["layer"] for g in groups)
    n_units = len(list(model.backbone.named_children())) - 1 + len(model.backbone.blocks)  # blocks expanded
    assert top == n_units
    for g in groups:
        assert math.isclose(g["lr_scale"], 0.9 ** (top - g["layer"]))
    by_param = {id(p): g for g in groups for p in g["params"]}
    assert by_param[id(model.backbone.conv_stem.weight)]["layer"] == 0
    assert by_param[id(model.head.weight)]["lr_scale"] == 1.0
    assert by_param[id(crit.center.centers)]["lr_scale"] == 1.0
    assert by_param[id(model.backbone.blocks[0][0].conv_dw.weight)]["layer"] == 2  # stem conv, bn, then block 0
    # no weight decay on biases, norms, positions, centres
    assert by_param[id(model.head.bias)]["weight_decay"] == 0.0
    assert by_param[id(model.transformer.pos)]["weight_decay"] == 0.0
    assert by_param[id(crit.center.centers)]["weight_decay"] == 0.0
    assert by_param[id(model.head.weight)]["weight_decay"] == 5e-4
    ids_map = layer_ids(model)
    assert ids_map[id(model.backbone.blocks[-1][-1].conv_pwl.weight)] < ids_map[id(model.backbone.conv_head.weight)]


def test_optimizer_is_adamw_with_paper_betas_and_scaled_lrs():
    opt = make_optimizer(tiny(), lr=1e-3)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8
    assert all(math.isclose(g["lr"], 1e-3 * g["lr_scale"]) for g in opt.param_groups)


def test_cosine_warmup_schedule_values():
    kw = {"lr_max": 1e-3, "lr_min": 1e-6, "warmup": 10, "total": 140}
    assert cosine_warmup_lr(0, **kw) == pytest.approx(1e-6)
    assert cosine_warmup_lr(5, **kw) == pytest.approx(1e-6 + 0.5 * (1e-3 - 1e-6))
    assert cosine_warmup_lr(10, **kw) == pytest.approx(1e-3)
    assert cosine_warmup_lr(75, **kw) == pytest.approx((1e-3 + 1e-6) / 2)  # half-way through the cosine
    assert cosine_warmup_lr(140, **kw) == pytest.approx(1e-6)
    assert cosine_warmup_lr(200, **kw) == pytest.approx(1e-6)
    after = [cosine_warmup_lr(t, **kw) for t in range(10, 141)]
    assert all(a >= b for a, b in itertools.pairwise(after))


def _loader(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.arange(n) % 3
    return [(x[i:i + 6], y[i:i + 6]) for i in range(0, n, 6)]


def test_fit_early_stops_on_validation_f1_and_restores_best_weights():
    torch.manual_seed(0)
    model = tiny()
    crit = LOSSES.create("ce", num_classes=3)
    # lr 0: nothing changes, validation F1 never improves after the first epoch -> stop after `patience` more
    settings = TrainSettings(epochs=10, lr_max=1e-12, lr_min=1e-12, warmup_epochs=0, patience=2, mixup_prob=0.0,
                             progress=False)
    result = fit(model, crit, _loader(), _loader(seed=1), settings)
    assert result.best_epoch == 1 and result.epochs_run == 3
    assert len(result.curves["val_f1_macro"]) == 3 and result.curves["epoch"] == [1, 2, 3]
    assert result.stop_reason == "patience"
    for k, v in model.state_dict().items():
        assert torch.equal(v, result.best_state[k])


def test_fit_is_deterministic_for_a_seed():
    def once():
        torch.manual_seed(0)
        model = tiny()
        crit = LOSSES.create("compound", num_classes=3, feat_dim=16, class_counts=[4, 4, 4])
        s = TrainSettings(epochs=2, lr_max=1e-3, warmup_epochs=1, patience=5, mixup_prob=1.0, seed=3, progress=False)
        return fit(model, crit, _loader(), _loader(seed=1), s).curves["train_loss"]

    assert once() == once()
