"""MeshSmileNet backbone: shapes, exactness of the fast point encoder against the reference form, graph helpers."""
import importlib.util
from pathlib import Path

import pytest
import torch
from smile_model_data import micro_backbone

from common.smile.backbone import (
    BackboneConfig,
    Graph,
    MeshSmileBackbone,
    NeighbourLeakyMean,
    gather,
    knn,
    neighbour_mean,
)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_backbone.py"


def _reference_module():
    spec = importlib.util.spec_from_file_location("bench_backbone", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shapes_of_demo_micro_and_released_narrow_backbones():
    clip = torch.rand(2, 5, 478, 3)
    for cfg in (BackboneConfig.demo(), micro_backbone(), micro_backbone().released_dim8()):
        model = MeshSmileBackbone(cfg).eval()
        h, frames = model(clip)
        assert h.shape == (2, cfg.dim) and frames.shape == (2, 5, cfg.dim)
        assert torch.isfinite(h).all()


def test_paper_config_has_published_sizes():
    cfg = BackboneConfig.paper()
    assert (cfg.n_points, cfg.k, cfg.n_tokens, cfg.dim, cfg.spatial_depth, cfg.temporal_depth) == (478, 20, 32, 256, 6, 3)
    assert [c[:3] for c in cfg.cic] == [(32, 32, 2), (32, 64, 4), (64, 128, 2), (128, 256, 4)]
    assert cfg.released_dim8().spatial_dim == 8


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fast_encoder_equals_reference_forward_and_gradients(mode):
    """Same parameters, same numbers: the reformulated LPFA (per-point linear maps, moment BN statistics, max trick)
    against a direct channels-first implementation. In train mode curves are off: their hard Gumbel choices may flip
    on rounding differences. BN scales are randomised so negative scales (max <-> min) are exercised."""
    ref_mod = _reference_module()
    cfg = micro_backbone(n_points=40, k=5, cic=((8, 8, 2, mode == "eval"), (8, 16, 2, False)))
    torch.manual_seed(0)
    fast = MeshSmileBackbone(cfg)
    with torch.no_grad():
        for m in fast.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(-1.0, 1.0)
    ref = ref_mod.reference_backbone(cfg)
    ref.load_state_dict(fast.state_dict())
    getattr(fast, mode)()
    getattr(ref, mode)()
    clip = torch.rand(3, 4, 478, 3)
    outs, grads = [], []
    for model in (fast, ref):
        torch.manual_seed(1)
        h, _ = model(clip)
        h.square().sum().backward()
        outs.append(h.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-3, atol=1e-4, msg=name)
    if mode == "train":  # running statistics updated identically
        for (n, a), (_, b) in zip(fast.named_buffers(), ref.named_buffers()):
            if n.endswith("num_batches_tracked"):  # F.batch_norm (reference) does not count batches
                continue
            torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-5, msg=n)


def test_knn_puts_self_first_and_graph_helpers_agree():
    torch.manual_seed(0)
    xyz = torch.rand(3, 30, 3)
    idx = knn(xyz, 4)
    assert torch.equal(idx[..., 0], torch.arange(30).expand(3, 30))
    brute = torch.cdist(xyz, xyz).topk(5, largest=False).indices
    assert torch.equal(idx[..., 1:].sort(-1).values, brute[..., 1:].sort(-1).values)
    graph = Graph(idx)
    assert int(graph.deg.sum()) == 3 * 30 * 4
    x = torch.randn(3, 30, 6, dtype=torch.float32, requires_grad=True)
    dense = gather(x, graph).mean(dim=2)
    sparse = neighbour_mean(x, graph)
    torch.testing.assert_close(sparse, dense)
    w = torch.randn_like(dense)
    (g_dense,) = torch.autograd.grad((dense * w).sum(), x)
    (g_sparse,) = torch.autograd.grad((neighbour_mean(x, graph) * w).sum(), x)
    torch.testing.assert_close(g_sparse, g_dense)


def test_neighbour_leaky_mean_gradient():
    torch.manual_seed(0)
    graph = Graph(knn(torch.rand(2, 10, 3), 3))
    g = torch.randn(2, 10, 4, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 10, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: NeighbourLeakyMean.apply(a, b, graph.flat, graph.shape), (g, h))
    expected = torch.nn.functional.leaky_relu(gather(g, graph) + h.unsqueeze(2), 0.2).mean(2)
    torch.testing.assert_close(NeighbourLeakyMean.apply(g, h, graph.flat, graph.shape), expected)


def test_bad_shapes_and_sizes_are_named():
    model = MeshSmileBackbone(micro_backbone())
    with pytest.raises(ValueError, match="expects .*478, 3"):
        model(torch.rand(1, 4, 100, 3))
    with pytest.raises(ValueError, match="k=12"):
        MeshSmileBackbone(micro_backbone(k=12))
    with pytest.raises(ValueError, match="unknown backbone config keys"):
        BackboneConfig.from_dict({"depth": 3})
    cfg = micro_backbone()
    assert BackboneConfig.from_dict(cfg.to_dict()) == cfg
