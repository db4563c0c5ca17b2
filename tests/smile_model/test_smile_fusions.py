"""The 15 fusions: registry, shapes, one-batch overfitting, and the attention defect / correction."""
import pytest
import torch
from smile_model_data import micro_backbone, random_batch

from common.smile.fusions import FUSIONS
from common.smile.models import FusionNet

EXPECTED = {"concat", "gated_concat", "additive", "hadamard", "hadamard_gated_concat", "attention", "mh_attention",
            "cross_attention", "mh_cross_attention", "film", "film_hadamard", "bilinear", "bilinear_hadamard",
            "factorized_bilinear", "factorized_bilinear_hadamard"}
ATTENTION = ["attention", "mh_attention", "cross_attention", "mh_cross_attention"]
FORMS = [(name, impl) for name in sorted(EXPECTED) for impl in ("paper", "released")
         if impl == "paper" or FUSIONS.info(name)["differs"]]


def test_registry_holds_exactly_the_fifteen_fusions_with_their_paper_numbers():
    assert set(FUSIONS.list()) == EXPECTED
    assert sorted(FUSIONS.info(n)["rpt"] for n in EXPECTED) == list(range(1, 16))
    with pytest.raises(KeyError, match="Did you mean 'hadamard'"):
        FUSIONS.create("hadamart", dim=16)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("impl", ["paper", "released"])
def test_fusion_output_shape(name, impl):
    fusion = FUSIONS.create(name, dim=16, impl=impl).eval()
    h, dm, frames = torch.randn(3, 16), torch.randn(3, 225), torch.randn(3, 5, 16)
    out = fusion(h, dm, frames)
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="216"):
        fusion(h, torch.randn(3, 216), frames)


@pytest.mark.parametrize("name,impl", FORMS)
def test_one_batch_overfit(name, impl):
    torch.manual_seed(0)
    backbone = micro_backbone()
    if impl == "released" and FUSIONS.info(name).get("released_backbone") == "dim8":
        backbone = backbone.released_dim8()
    model = FusionNet(name, backbone, impl=impl, dropout=0.0)
    clip, dm, y = random_batch()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)  # 1e-2 can overshoot into dead ReLUs on this tiny model
    first = None
    for _ in range(120):
        opt.zero_grad()
        loss, logits = model.loss(clip, dm, y)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.1 < first, (name, impl, first, loss.item())
    assert torch.equal((logits > 0).float(), y)


def _backbone_grad_and_sensitivity(name: str, impl: str) -> tuple[float, float]:
    """(|grad| summed over backbone parameters, max |output change| when only the landmarks change)."""
    torch.manual_seed(0)
    model = FusionNet(name, micro_backbone(), impl=impl, dropout=0.0)
    clip, dm, y = random_batch(b=4)
    loss, _ = model.loss(clip, dm, y)
    loss.backward()
    grad = sum(float(p.grad.abs().sum()) for p in model.backbone.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        other_clip = random_batch(b=4, seed=1)[0]
        change = float((model(clip, dm) - model(other_clip, dm)).abs().max())
    return grad, change


@pytest.mark.parametrize("name", ATTENTION)
def test_released_attention_ignores_the_deep_branch_and_corrected_form_does_not(name):
    grad, change = _backbone_grad_and_sensitivity(name, "released")
    assert grad == 0.0 and change == 0.0  # single key: softmax = 1, the landmarks cannot matter
    grad, change = _backbone_grad_and_sensitivity(name, "paper")
    assert grad > 0.0 and change > 1e-6


def test_hadamard_uses_both_branches():
    grad, change = _backbone_grad_and_sensitivity("hadamard", "paper")
    assert grad > 0.0 and change > 1e-6
