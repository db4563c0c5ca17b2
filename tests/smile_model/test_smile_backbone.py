"""The released MeshSmileNet backbone: shapes, release semantics that the fixtures alone do not pin (train-mode walk,
PE placement, k-NN with self), and the exactness of the fused LPFA and walk-pick autograd functions."""
import pytest
import torch
from smile_model_data import micro_backbone

from common.smile.backbone import MeshSmileBackbone
from common.smile.backbone_config import BackboneConfig
from common.smile.encoder import chunks
from common.smile.encoder.curves import CurveGrouping, PickedNeighbour
from common.smile.encoder.graph import Graph, _knn_frames, gather, knn, neighbour_max
from common.smile.encoder.layers import NarrowBN, PointBN
from common.smile.encoder.lpfa import LeakyMLPMean
from common.smile.transformers import Block, sinusoid


def test_shapes_of_demo_micro_and_narrow_backbones():
    clip = torch.rand(2, 5, 478, 3)
    for cfg in (BackboneConfig.demo(), micro_backbone(), micro_backbone().released_dim8()):
        model = MeshSmileBackbone(cfg).eval()
        h, frames = model(clip)
        assert h.shape == (2, cfg.dim) and frames.shape == (2, 5, cfg.dim)
        assert torch.isfinite(h).all()


def test_paper_and_demo_configs_have_the_released_structure():
    cfg = BackboneConfig.paper()
    sizes = (cfg.n_points, cfg.k, cfg.n_tokens, cfg.dim, cfg.spatial_depth, cfg.temporal_depth)
    assert sizes == (478, 20, 32, 256, 6, 3)
    assert cfg.cic == ((32, 32, 2), (32, 64, 4), (64, 128, 2), (128, 256, 4))
    assert (cfg.n_curves, cfg.curve_length, cfg.momentum_per_curve) == (100, 5, False)
    assert cfg.released_dim8().spatial_dim == 8
    demo = MeshSmileBackbone(BackboneConfig.demo())
    assert len(demo.encoder.blocks) == 4 and all(b.grouping is not None for b in demo.encoder.blocks)


def test_knn_includes_self_and_ranks_by_distance():
    torch.manual_seed(0)
    xyz = torch.rand(3, 30, 3)
    idx = knn(xyz, 4)
    assert idx.shape == (3, 30, 5)
    assert torch.equal(idx[..., 0], torch.arange(30).expand(3, 30))
    brute = torch.cdist(xyz, xyz).topk(5, largest=False).indices
    assert torch.equal(idx.sort(-1).values, brute.sort(-1).values)
    graph = Graph(idx)
    assert torch.equal(graph.lpfa, idx[..., :4]) and torch.equal(graph.walk, idx[..., 1:])


def test_knn_and_neighbour_max_in_chunks_over_threads_equal_the_whole_batch(monkeypatch):
    """k-NN and the initial LPFA's neighbour max, a frame at a time over 2 threads, give exactly the whole-batch
    result (ties included: a duplicated point), and the max's gradient reaches the arg-max neighbour only."""
    torch.manual_seed(0)
    xyz = torch.rand(5, 40, 3)
    xyz[:, 7] = xyz[:, 3]                                            # exact ties in the scores
    monkeypatch.setitem(chunks.CHUNK_ROWS, "cpu", 40 * 40)       # k-NN: one frame per chunk
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        idx = knn(xyz, 6)
        assert torch.equal(idx, _knn_frames(xyz, 6))
        graph = Graph(idx)
        x = torch.randn(5, 40, 8, requires_grad=True)
        monkeypatch.setitem(chunks.CHUNK_ROWS, "cpu", 40 * 6)    # max: one frame per chunk
        out = neighbour_max(x, graph)
        (d_x,) = torch.autograd.grad(out.sum(), x)
    finally:
        torch.set_num_threads(before)
    whole = gather(x, graph)
    assert torch.equal(out, whole.amax(dim=2))
    assert d_x.sum() == out.numel() and torch.all(d_x[d_x != 0] >= 1)


@pytest.mark.parametrize("training", [False, True])
def test_fused_lpfa_function_matches_autograd_and_gradcheck(training):
    torch.manual_seed(0)
    graph = Graph(knn(torch.rand(2, 10, 3), 3))
    g = torch.randn(2, 10, 4, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 10, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    bn = PointBN(5).double().train(training)
    with torch.no_grad():
        bn.weight.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)

    def fused(g, h, w, gamma, beta):
        return LeakyMLPMean.apply(g, h, w, gamma, beta, bn, graph.lpfa_flat, graph.shape)

    def direct(g, h, w, gamma, beta):
        z = torch.nn.functional.leaky_relu(gather(g, graph) + h.unsqueeze(2), 0.2) @ w.t()
        if training:
            var, mean = torch.var_mean(z.reshape(-1, 5), dim=0, unbiased=False)
        else:
            mean, var = bn.running_mean, bn.running_var
        y = (z - mean) / torch.sqrt(var + bn.eps) * gamma + beta
        return torch.nn.functional.leaky_relu(y, 0.2).mean(dim=2)

    args = (g, h, w, bn.weight, bn.bias)
    torch.testing.assert_close(fused(*args), direct(*args))
    assert torch.autograd.gradcheck(fused, args)


@pytest.mark.parametrize("training", [False, True])
def test_fused_lpfa_split_over_threads_equals_one_thread(training, monkeypatch):
    """With 2 intra-op threads the fused LPFA runs its chunks in 2 single-threaded parts: same output, gradients and
    running statistics as one thread, also under inference mode; the thread setting is restored."""
    torch.manual_seed(0)
    graph = Graph(knn(torch.rand(6, 12, 3), 3))
    monkeypatch.setitem(chunks.CHUNK_ROWS, "cpu", 12 * 3)               # one frame per chunk: 6 chunks
    started = []

    class CountingThread(chunks.threading.Thread):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(chunks.threading, "Thread", CountingThread)
    g0, h0 = torch.randn(6, 12, 4, dtype=torch.float64), torch.randn(6, 12, 4, dtype=torch.float64)
    w0 = torch.randn(5, 4, dtype=torch.float64)
    runs = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            bn = PointBN(5).double().train(training)
            g, h, w = (x.clone().requires_grad_() for x in (g0, h0, w0))
            out = LeakyMLPMean.apply(g, h, w, bn.weight, bn.bias, bn, graph.lpfa_flat, graph.shape)
            grads = torch.autograd.grad(out.square().sum(), (g, h, w, bn.weight, bn.bias))
            with torch.inference_mode():
                bn.eval()
                inferred = LeakyMLPMean.apply(g0, h0, w0, bn.weight, bn.bias, bn, graph.lpfa_flat, graph.shape)
            runs[threads] = (out, *grads, bn.running_mean, bn.running_var, inferred)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert len(started) == (4 if training else 3)                    # each chunk loop used one extra thread
    for one, two in zip(runs[1], runs[2]):
        torch.testing.assert_close(two, one, rtol=1e-12, atol=1e-12)


def test_walk_pick_equals_the_straight_through_sum_and_its_gradients():
    """PickedNeighbour(feat, omega, cand, j) = omega @ feat[cand] for the walk's straight-through one-hot omega, with
    the gradients autograd gives that product (feature gradient at the pick only, omega's from every candidate)."""
    torch.manual_seed(0)
    feat = torch.randn(30, 5, dtype=torch.float64, requires_grad=True)
    logit = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    cand = torch.randint(0, 30, (7, 4))
    weight = torch.randn(7, 5, dtype=torch.float64)
    results = []
    for fused in (True, False):
        pi = torch.softmax(logit * 3, dim=-1)
        j = pi.argmax(dim=-1, keepdim=True)
        omega = (torch.zeros_like(pi).scatter_(1, j, 1.0) - pi).detach() + pi
        phi = (PickedNeighbour.apply(feat, omega, cand, j) if fused
               else (omega.unsqueeze(1) @ feat[cand]).squeeze(1))
        d_feat, d_logit = torch.autograd.grad((phi * weight).sum() + phi.square().sum(), (feat, logit))
        results.append((phi, d_feat, d_logit))
    for fused, direct in zip(*results):
        torch.testing.assert_close(fused, direct, rtol=1e-12, atol=1e-12)
    assert results[0][2].abs().sum() > 0


@pytest.mark.parametrize("channels", [1, 2])
def test_narrow_batch_norm_is_batch_norm_in_training_and_eval(channels):
    torch.manual_seed(0)
    ref, ours = torch.nn.BatchNorm1d(channels), NarrowBN(channels)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2.0)
        ref.bias.uniform_(-1.0, 1.0)
    ours.load_state_dict(ref.state_dict())
    x = (torch.randn(500, channels) * 3 + 1).double().requires_grad_()
    ref, ours = ref.double(), ours.double()
    for _ in range(2):                                               # two updates of the running statistics
        y_ref, y = ref(x), ours(x)
        g = torch.randn_like(y_ref)
        grads_ref = torch.autograd.grad(y_ref, (x, ref.weight, ref.bias), g)
        grads = torch.autograd.grad(y, (x, ours.weight, ours.bias), g)
        assert torch.allclose(y, y_ref, atol=1e-12)
        for a, b in zip(grads, grads_ref):
            assert torch.allclose(a, b, atol=1e-10)
    for name, buf in ref.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], buf, atol=1e-12), name
    ours.load_state_dict(ref.state_dict())
    ref.eval(), ours.eval()
    assert torch.equal(ours(x), ref(x))                              # eval: PyTorch's own kernel


def test_walk_has_no_noise_in_training_and_every_walk_weight_learns():
    torch.manual_seed(0)
    grouping = CurveGrouping(6, n_curves=5, length=4).train()
    a = torch.randn(3, 20, 6, requires_grad=True)
    graph = Graph(knn(torch.rand(3, 20, 3), 4))
    first = grouping(a, graph)
    second = grouping(a, graph)
    assert torch.equal(first[0], second[0]) and torch.equal(first[2], second[2])
    first[0].square().sum().backward()
    for name in ("start_score", "step_score", "momentum"):
        assert getattr(grouping, name).weight.grad.abs().sum() > 0, name
    assert a.grad.abs().sum() > 0


def test_momentum_per_curve_option_changes_the_walk_and_is_off_by_default():
    torch.manual_seed(0)
    cfg = micro_backbone(n_points=40, k=5, n_curves=8, curve_length=4)
    released = MeshSmileBackbone(cfg).eval()
    fixed = MeshSmileBackbone(cfg.__class__(**{**cfg.__dict__, "momentum_per_curve": True})).eval()
    fixed.load_state_dict(released.state_dict())
    clip = torch.rand(2, 3, 478, 3)
    with torch.no_grad():
        assert not torch.allclose(released(clip)[0], fixed(clip)[0])


def test_positional_encoding_feeds_attention_only_not_the_residual_stream():
    block = Block(dim=8, heads=2, dim_head=4, mlp_dim=16, dropout=0.0).eval()
    with torch.no_grad():
        for lin in (block.attn.out[0], block.ff[4]):
            lin.weight.zero_()
            lin.bias.zero_()
    x = torch.randn(3, 5, 8)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)  # PE added to x would show here
    seen = {}
    block.attn.qkv.register_forward_pre_hook(lambda m, args: seen.setdefault("z", args[0]))
    block(x)
    y = block.attn.norm(x)
    torch.testing.assert_close(seen["z"], y + (y + sinusoid(5, 8)))


def test_bad_shapes_and_sizes_are_named():
    model = MeshSmileBackbone(micro_backbone())
    with pytest.raises(ValueError, match="expects .*478, 3"):
        model(torch.rand(1, 4, 100, 3))
    with pytest.raises(ValueError, match="k=12"):
        MeshSmileBackbone(micro_backbone(k=12))
    with pytest.raises(ValueError, match=r"\(in, out, bottleneck\)"):
        MeshSmileBackbone(micro_backbone(cic=((8, 8, 2, True),)))
    with pytest.raises(ValueError, match="unknown backbone config keys"):
        BackboneConfig.from_dict({"depth": 3})
    with pytest.raises(ValueError, match="exceeds the positional table"):
        Block(8, 2, 4, 16, 0.0)(torch.rand(1, 129, 8))
    cfg = micro_backbone()
    assert BackboneConfig.from_dict(cfg.to_dict()) == cfg
