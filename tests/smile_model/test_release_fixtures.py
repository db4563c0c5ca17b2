"""Our deep branch against numeric fixtures produced by running the released HadaSmileNet code (CPU, float32):
the release's Hadamard model and the dim-8 (Factorized_Bilinear_Pooling) backbone, their state dicts loaded through
:mod:`common.smile.release_weights`. Discrete choices (k-NN, start points and their order, every walk step) are
compared exactly and first; floats isolated layer by layer (atol 2e-5) and end to end (1e-4; probabilities 1e-5).
Skipped when the fixtures (``../shared/fixtures/release-meshsmilenet`` beside the checkout) are absent."""
import pytest
import torch
from einops import rearrange
from release_fixtures import (
    BLOCKS,
    FRAMES_KEPT,
    assert_choices_equal,
    encoder_record,
    fbp_state_dict,
    fixture,
    float_keys,
    max_abs_diffs,
    trace_backbone_tail,
    trace_head,
    trace_model,
)

from common.smile.backbone_config import BackboneConfig
from common.smile.encoder.graph import Graph
from common.smile.models import FusionNet
from common.smile.release_weights import load_release_state_dict

ISOLATED, END_TO_END, PROB = 2e-5, 1e-4, 1e-5


@pytest.fixture(scope="module")
def release():
    return fixture("hadamard_intermediates.pt")


@pytest.fixture(scope="module")
def hadamard():
    torch.set_num_threads(1)
    model = FusionNet("hadamard", BackboneConfig.paper(), impl="released")
    load_release_state_dict(model, fixture("hadamard_state_dict.pt"), "hadamard")
    return model.eval()


@pytest.fixture(scope="module")
def end_to_end(hadamard, release):
    torch.set_num_threads(1)
    with torch.no_grad():
        return trace_model(hadamard, release["input.x"], release["input.dmarker"])


def test_discrete_choices_equal_the_release(end_to_end, release):
    assert_choices_equal(end_to_end, release)


def test_every_intermediate_end_to_end(end_to_end, release):
    keys = float_keys(release)
    diffs = max_abs_diffs(end_to_end, release, keys)
    assert len(diffs) == 48, sorted(set(release) - set(diffs))
    worst = {k: d for k, d in diffs.items() if d > (PROB if k == "prob" else END_TO_END)}
    assert not worst, worst
    print({k: f"{d:.1e}" for k, d in diffs.items()})


def test_encoder_layers_in_isolation(hadamard, release):
    torch.set_num_threads(1)
    enc = hadamard.backbone.encoder
    xyz = release["enc.input_xyz"].transpose(1, 2).contiguous()
    graph = Graph(release["enc.knn_idx"])
    diffs = {}
    with torch.no_grad():
        diffs["enc.lpfa0"] = float((enc.lpfa(xyz, graph).transpose(1, 2) - release["enc.lpfa0"]).abs().max())
        x_in = release["enc.lpfa0"]
        for i, name in enumerate(BLOCKS):
            record = {}
            enc.blocks[i](x_in.transpose(1, 2).contiguous(), xyz, graph, record)
            stub = x_in.transpose(1, 2)
            ours = encoder_record({"knn_idx": graph.full, "lpfa0": stub, "conv0": stub,
                                   **{f"cic{j}": record for j in range(len(BLOCKS))}})
            for key in ("start_idx", "walk_idx"):
                assert torch.equal(ours[f"enc.{name}.{key}"], release[f"enc.{name}.{key}"]), (name, key)
            for key in ("conv1", "curves", "curveagg", "lpfa", "out"):
                full = f"enc.{name}.{key}"
                diffs[full] = float((ours[full] - release[full]).abs().max())
            x_in = release[f"enc.{name}.out"]
        conv0 = enc.head[2](enc.head[1](enc.head[0](x_in.transpose(1, 2))))
        diffs["enc.conv0"] = float((conv0.transpose(1, 2) - release["enc.conv0"]).abs().max())
        bb = hadamard.backbone
        tokens = bb.reduce_bn(bb.reduce(release["enc.conv0"]).transpose(1, 2))
        diffs["downsample.out"] = float((tokens - release["downsample.out"][FRAMES_KEPT]).abs().max())
    assert max(diffs.values()) <= ISOLATED, diffs
    print({k: f"{d:.1e}" for k, d in diffs.items()})


def test_transformer_layers_and_head_in_isolation(hadamard, release):
    torch.set_num_threads(1)
    bb = hadamard.backbone
    diffs = {}
    with torch.no_grad():
        x = release["downsample.out"].view(2, 16, 32, 256)
        for i, layer in enumerate(bb.spatial.layers):
            seq, back = ("b t m d -> (b m) t d", "(b m) t d -> b t m d") if i % 2 == 0 else \
                ("b t m d -> (b t) m d", "(b t) m d -> b t m d")
            out = rearrange(layer(rearrange(x, seq)), back, b=2)
            diffs[f"spatial.layer{i}.out"] = float((out - release[f"spatial.layer{i}.out"]).abs().max())
            x = release[f"spatial.layer{i}.out"]
        u = x.mean(dim=2)
        for i, layer in enumerate(bb.temporal):
            out = layer(u)
            diffs[f"temporal.layer{i}.out"] = float((out - release[f"temporal.layer{i}.out"]).abs().max())
            u = release[f"temporal.layer{i}.out"]
        diffs["h"] = float((u.mean(dim=1) - release["h"]).abs().max())
        head = trace_head(hadamard, release["h"], release["input.dmarker"])
    diffs |= max_abs_diffs(head, release, ["x_proj", "dmarker_embed", "fused", "fusion_mlp", "logit", "prob"])
    assert max(diffs.values()) <= ISOLATED, diffs


def test_dim8_backbone_and_factorized_bilinear_head(release):
    """The bilinear family's backbone: channel-major flatten -> feature_proj -> 32 x 8 tokens -> spatial at D = 8 ->
    temporal -> h -> FBP head, fed the shared point-reduction output."""
    torch.set_num_threads(1)
    io = fixture("fbp_io.pt")
    model = FusionNet("factorized_bilinear", BackboneConfig.paper().released_dim8(), impl="released")
    load_release_state_dict(model, fbp_state_dict(), "factorized_bilinear")
    model.eval()
    with torch.no_grad():
        trace = trace_backbone_tail(model.backbone, release["downsample.out"], 2)
        trace |= trace_head(model, trace["h"], io["input.dmarker"])
        chained = trace_model(model, io["input.x"], io["input.dmarker"])
    keys = float_keys(io)
    diffs = max_abs_diffs(trace, io, keys)
    assert len(diffs) == 28
    assert max(diffs.values()) <= ISOLATED, diffs
    assert torch.equal(encoder_record_choices(chained), encoder_record_choices(release))
    end = max_abs_diffs(chained, io, keys)
    assert end["prob"] <= PROB and max(end.values()) <= END_TO_END, end


def encoder_record_choices(trace: dict) -> torch.Tensor:
    return torch.cat([trace[f"enc.{b}.walk_idx"].reshape(-1) for b in BLOCKS])
