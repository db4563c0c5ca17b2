import pytest
import torch

from common.fer.backbones import LITE0_PACKAGE, WeightsUnavailableError, lite0_package_file, map_state_in_order
from common.fer.baselines import NOT_REBUILDABLE
from common.fer.hafem import CBAM, HAFEM
from common.fer.model import MODELS, build_fer_model, count_parameters, model_from_checkpoint
from tests.fer_model.conftest import TINY

TINY_CFG = {"backbone": "efficientnet_lite0", "pretrained": "none", **TINY}


@pytest.mark.parametrize("size", [32, 48, 80])
def test_hafem_any_input_size_gives_logits_and_pooled_features(size):
    model = HAFEM("efficientnet_lite0", num_classes=7, dim=16, depth=1, heads=2, ff_dim=32, token_grid=3)
    logits, feats = model(torch.randn(2, 3, size, size), return_features=True)
    assert logits.shape == (2, 7) and feats.shape == (2, 16)
    assert model.transformer.pos.shape == (1, 9, 16)  # k x k tokens with learnable positions


@pytest.mark.parametrize("variant,feat_dim", [("hafem", 16), ("hafem_no_cbam", 16), ("backbone_only", 1280),
                                              ("resnet18", 512), ("swin_demo", 96)])
def test_registry_variants_build_and_run(variant, feat_dim):
    model = build_fer_model(TINY_CFG, 5, variant)
    logits, feats = model(torch.randn(2, 3, 32, 32), return_features=True)
    assert logits.shape == (2, 5) and feats.shape == (2, feat_dim)
    assert "random initialisation" in model.weights_note  # said plainly, never downloaded


def test_ablation_rungs_differ_only_in_the_named_component():
    full = build_fer_model(TINY_CFG, 7, "hafem")
    no_cbam = build_fer_model(TINY_CFG, 7, "hafem_no_cbam")
    assert isinstance(full.cbam, CBAM) and isinstance(no_cbam.cbam, torch.nn.Identity)
    assert not build_fer_model(TINY_CFG, 7, "backbone_only").use_transformer


def test_paper_baselines_registered_and_unrebuildable_ones_explained():
    for name in ("resnet50", "vit_base_patch16_224", "efficientnet_b4", "swin_tiny_patch4_window7_224"):
        assert name in MODELS
    assert {"VGGFace2 TL", "CNN+LSTM", "GAN-Aug", "Cross-Attn", "DualPath CNN"} <= set(NOT_REBUILDABLE)


def test_cbam_is_channel_then_spatial():
    torch.manual_seed(0)
    cbam = CBAM(32, reduction=16)
    x = torch.randn(2, 32, 5, 5)
    x1 = x * cbam.channel(x)
    expected = x1 * cbam.spatial(x1)
    assert torch.allclose(cbam(x), expected)
    assert cbam.channel.mlp[0].out_channels == 2  # reduction 16


def test_width_must_divide_heads():
    with pytest.raises(ValueError, match="divisible"):
        HAFEM("efficientnet_lite0", dim=18, heads=4, depth=1, ff_dim=8)


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=str(tmp_path / "none.pth"))


def test_lite0_package_weights_map_strictly_and_classify_imagenet():
    """The 247 packaged tensors fill timm's efficientnet_lite0 one-to-one; the cat photo is an Egyptian cat (285)."""
    import timm
    from skimage import data

    source = torch.load(lite0_package_file(), map_location="cpu", weights_only=True)
    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    mapped = map_state_in_order(source, model.state_dict())
    assert len([k for k in source if not k.endswith("num_batches_tracked")]) == 247
    model.load_state_dict(mapped, strict=True)
    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255
    img = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        top = model((img - mean) / std).argmax(1).item()
    assert top in (281, 282, 285)  # tabby / tiger cat / Egyptian cat; spec records 285


def test_lite0_backbone_loads_package_weights():
    model = HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=LITE0_PACKAGE)
    source = torch.load(lite0_package_file(), map_location="cpu", weights_only=True)
    assert torch.equal(model.backbone.conv_stem.weight, source["_conv_stem.weight"])
    assert "ImageNet" in model.weights_note
    with pytest.raises(WeightsUnavailableError):
        HAFEM("efficientnet_b0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=LITE0_PACKAGE)


def test_shape_mismatch_in_mapping_names_the_tensor():
    src = {"a": torch.zeros(3), "b": torch.zeros(2)}
    dst = {"x": torch.zeros(3), "y": torch.zeros(4)}
    with pytest.raises(ValueError, match="'b'"):
        map_state_in_order(src, dst)


def test_one_batch_overfit_tiny_hafem():
    torch.manual_seed(0)
    model = HAFEM("efficientnet_lite0", num_classes=4, dim=16, depth=1, heads=2, ff_dim=32, token_grid=2, dropout=0.0)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # train mode: BatchNorm uses this batch's statistics, as during the steps
        logits = model(x)
    assert (logits.argmax(1) == y).all()
    assert torch.nn.functional.cross_entropy(logits, y).item() < 0.1 * first


@pytest.mark.parametrize("variant", ["hafem", "resnet18"])
def test_built_models_keep_conv_weights_channels_last_and_compute_the_contiguous_function(variant):
    import copy

    model = build_fer_model(TINY_CFG, 7, variant).eval()
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    contiguous = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    assert not all(m.weight.is_contiguous(memory_format=torch.channels_last)
                   for m in contiguous.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1)
    x = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), contiguous(x), rtol=1e-4, atol=1e-5)
    # a checkpoint written from a contiguous model (older runs) loads into the channels-last one unchanged
    fresh = build_fer_model(TINY_CFG, 7, variant).eval()
    fresh.load_state_dict(contiguous.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), contiguous(x), rtol=1e-4, atol=1e-5)


def test_checkpoint_payload_rebuilds_the_same_model():
    cfg = {**TINY_CFG, "dataset": "FER2013", "profile": "demo", "dropout": 0.1}
    model = build_fer_model(cfg, 3, "hafem").eval()
    payload = {"config": cfg, "model_state": model.state_dict(), "variant": "hafem", "classes": ["a", "b", "c"]}
    rebuilt, rcfg = model_from_checkpoint(payload)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert rcfg["classes"] == ["a", "b", "c"] and count_parameters(rebuilt) == count_parameters(model)
    with pytest.raises(ValueError, match="classes"):
        model_from_checkpoint({**payload, "classes": []})


def test_paper_size_model_matches_the_spec_count_and_the_recorded_claim_numbers():
    """B5 + CBAM(2048) + 6 x (2048, 8 heads, FF 4096): 230.4 M parameters, not the paper's 31.2 M; the numbers the
    claims table prints are the ones the built model and the closed form give."""
    from common.fer import sizes
    from statistical_analysis import paper_claims as pc

    model = HAFEM("efficientnet_b5", num_classes=7)
    assert model.backbone.num_features == 2048
    assert count_parameters(model) == pc.HAFEM_PARAMS_MEASURED["after_backbone"] == sizes.hafem_parameters()
    assert count_parameters(model.backbone) == pc.HAFEM_PARAMS_BACKBONE == sizes.B5_FEATURES
    assert count_parameters(model.transformer) == pc.HAFEM_PARAMS_TRANSFORMER
    staged = HAFEM("efficientnet_b5", num_classes=7, cbam_placement="stages")
    assert count_parameters(staged) == pc.HAFEM_PARAMS_MEASURED["stages"] == sizes.hafem_parameters(
        stage_cbam_channels=(304, 512))
    found = {r["depth"]: (r["dim"], r["ff_dim"], r["params"]) for r in sizes.sizes_near()}
    assert found == pc.HAFEM_PARAMS_SIZES_FOR_CLAIM
    assert all(abs(total - 31.2e6) < 0.05e6 for _, _, total in found.values())


@pytest.mark.parametrize("dim,depth,ff,grid,placement", [(16, 1, 32, 2, "after_backbone"), (1280, 2, 64, 3, "stages"),
                                                         (24, 0, 48, 2, "after_backbone")])
def test_closed_form_parameter_count_equals_the_built_model(dim, depth, ff, grid, placement):
    from common.fer import sizes
    from common.fer.hafem import stage_channels

    model = HAFEM("efficientnet_lite0", num_classes=5, dim=dim, depth=depth, heads=2, ff_dim=ff, token_grid=grid,
                  cbam_placement=placement, cbam_stages=3)
    stages = stage_channels(model.backbone)[-3:] if placement == "stages" else ()
    assert count_parameters(model) == sizes.hafem_parameters(count_parameters(model.backbone), 1280, dim, depth, ff,
                                                             grid, 5, stages)


def test_cbam_placement_stages_puts_a_cbam_after_the_last_stages_and_changes_the_output():
    torch.manual_seed(0)
    after = HAFEM("efficientnet_lite0", num_classes=7, dim=16, depth=1, heads=2, ff_dim=32, token_grid=2).eval()
    staged = HAFEM("efficientnet_lite0", num_classes=7, dim=16, depth=1, heads=2, ff_dim=32, token_grid=2,
                   cbam_placement="stages", cbam_stages=2).eval()
    assert list(staged.stage_cbams) == ["5", "6"]  # Lite0 has 7 stages; the last two get one
    assert staged.stage_cbams["6"].channel.mlp[0].in_channels == 320 and len(after.stage_cbams) == 0
    staged.load_state_dict({**after.state_dict(), **{k: v for k, v in staged.state_dict().items()
                                                     if k.startswith("stage_cbams.")}})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(after.backbone_map(x), after.backbone.forward_features(x))
        assert not torch.allclose(staged(x), after(x))
        # the in-stage forward equals timm's when the stage CBAMs are bypassed
        saved = staged.stage_cbams
        staged.stage_cbams = torch.nn.ModuleDict()
        assert torch.allclose(staged(x), after(x), atol=1e-6)
        staged.stage_cbams = saved
    with pytest.raises(ValueError, match="cbam_stages=9"):
        HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=32, cbam_placement="stages", cbam_stages=9)
    with pytest.raises(ValueError, match="cbam_placement"):
        HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=32, cbam_placement="inside")


def test_cbam_placement_is_a_parameter_the_paper_profile_sets_and_the_ablation_records():
    from common.config import get_study
    from common.fer.comparisons import ablation_ladder

    spec = get_study("hafem")
    assert spec.resolve({"profile": "paper"})["cbam_placement"] == "stages"
    demo = spec.resolve({"profile": "demo"})
    assert demo["cbam_placement"] == "after_backbone"
    assert [r["cbam"] for r in ablation_ladder(demo)][-2:] == ["after_backbone", "after_backbone"]
    staged = {**demo, "cbam_placement": "stages"}
    ladder = ablation_ladder(staged)
    assert ladder[3]["label"].endswith("+cbam_in_stages") and ladder[4]["cbam"] == "stages"
    model = build_fer_model({**TINY_CFG, "cbam_placement": "stages", "cbam_stages": 1}, 7, "hafem")
    assert list(model.stage_cbams) == ["6"]
    assert len(build_fer_model({**TINY_CFG, "cbam_placement": "stages"}, 7, "hafem_no_cbam").stage_cbams) == 0


def test_pretrained_local_file_loads_and_a_mismatching_one_names_the_first_bad_key(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=10)  # with a classifier: ignored
    good = tmp_path / "lite0.pth"
    torch.save(source.state_dict(), good)
    model = HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=str(good))
    assert torch.equal(model.backbone.conv_stem.weight, source.conv_stem.weight)
    assert str(good) in model.weights_note
    st = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(st))
    model = HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=str(st))
    assert torch.equal(model.backbone.blocks[0][0].conv_dw.weight, source.blocks[0][0].conv_dw.weight)
    # one tensor of another shape -> the first mismatching key and both shapes
    bad = dict(source.state_dict())
    bad["blocks.1.0.conv_pw.weight"] = torch.zeros(5, 16, 1, 1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad.pth: tensor 'blocks.1.0.conv_pw.weight' has shape \(5, 16, 1, 1\) "
                                         r"in the file, the 'efficientnet_lite0' model expects \(96, 16, 1, 1\)"):
        HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=str(tmp_path / "bad.pth"))
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in source.state_dict().items() if not k.startswith("conv_stem")}, partial)
    with pytest.raises(ValueError, match="first missing key 'conv_stem.weight' .model shape .32, 3, 3, 3.."):
        HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=str(partial))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth: cannot be read"):
        HAFEM("efficientnet_lite0", dim=16, depth=1, heads=2, ff_dim=8, pretrained=str(junk))


def test_timm_tag_offline_fails_at_once_naming_the_file_and_where_to_put_it(monkeypatch, tmp_path):
    from common import paths
    from common.fer import backbones as M

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(paths, "WEIGHTS_DIR", tmp_path / "weights")
    place = str(tmp_path / "weights" / "timm" / "efficientnet_b5.sw_in12k.safetensors")
    with pytest.raises(WeightsUnavailableError) as err:
        M.create_backbone("efficientnet_b5", M.PAPER_B5_TAG)
    msg = str(err.value)
    assert "HF_HUB_OFFLINE=1" in msg and place in msg
    assert "https://huggingface.co/timm/efficientnet_b5.sw_in12k/resolve/main/model.safetensors" in msg
    with pytest.raises(WeightsUnavailableError, match="weights of 'efficientnet_b0', the model is 'efficientnet_b5'"):
        M.create_backbone("efficientnet_b5", "timm:efficientnet_b0.ra_in1k")
    with pytest.raises(WeightsUnavailableError, match="no pretrained tag 'efficientnet_b5.nope'"):
        M.create_backbone("efficientnet_b5", "timm:efficientnet_b5.nope")


def test_timm_tag_is_read_from_the_local_weights_folder_first(monkeypatch, tmp_path):
    import timm
    from safetensors.torch import save_file

    from common import paths
    from common.fer import backbones as M

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(paths, "WEIGHTS_DIR", tmp_path)
    source = timm.create_model("efficientnet_b0", pretrained=False)
    target = tmp_path / "timm" / "efficientnet_b0.ra_in1k.safetensors"
    target.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(target))
    backbone, note = M.create_backbone("efficientnet_b0", "timm:efficientnet_b0")  # timm's default tag: ra_in1k
    assert "timm efficientnet_b0.ra_in1k" in note
    assert torch.equal(backbone.conv_stem.weight, source.conv_stem.weight)


def test_baseline_weights_follow_baseline_pretrained(tmp_path):
    from common.fer.baselines import baseline_weights

    assert baseline_weights({"baseline_pretrained": "none"}, "resnet50") == "none"
    assert baseline_weights({"baseline_pretrained": "timm"}, "resnet50") == "timm:resnet50"
    (tmp_path / "resnet50.pth").write_bytes(b"")
    assert baseline_weights({"baseline_pretrained": str(tmp_path)}, "resnet50") == str(tmp_path / "resnet50.pth")
    with pytest.raises(WeightsUnavailableError, match="no resnet18.safetensors / resnet18.pth in"):
        baseline_weights({"baseline_pretrained": str(tmp_path)}, "resnet18")
