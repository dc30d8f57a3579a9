"""Tests for tools/psref (DiffPS heads, PSDiff, backbones), tools/pth_to_safetensors.py and the
committed parity fixtures. Run:  tools/.venv/bin/python -m pytest tools/tests -q
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

# The PyTorch references need torch (tools/requirements-export.txt), which CI does not install (its PyPI wheel
# pulls gigabytes of CUDA libraries). Without it these tests are skipped; developers run them locally.
torch = pytest.importorskip("torch")

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

from psref import backbones as B  # noqa: E402
from psref import diffps as D  # noqa: E402
from psref import psdiff as P  # noqa: E402
from psref import reference_np as R  # noqa: E402

torch.set_num_threads(1)
FIXTURES = os.path.join(REPO, "Tests", "Fixtures", "models")
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# ============================================================================ DiffPS: names, counts

def _bn(prefix):
    return [f"{prefix}.{s}" for s in BN]


def _lpm(p):
    return [f"{p}.conv1.weight", *_bn(f"{p}.bn1"), f"{p}.dw_conv.weight", *_bn(f"{p}.bn2"),
            f"{p}.conv2.weight", *_bn(f"{p}.bn3")]


def _layer4(p):
    keys = []
    for i in range(3):
        for k in (1, 2, 3):
            keys += [f"{p}.layer4.{i}.conv{k}.weight", *_bn(f"{p}.layer4.{i}.bn{k}")]
    return keys + [f"{p}.layer4.0.downsample.0.weight", *_bn(f"{p}.layer4.0.downsample.1")]


def expected_diffps_keys() -> set[str]:
    """The state-dict keys of the public DiffPS code, written out from reference §1.9."""
    k = ["text_embeds"]
    a = "detection_aggregation_network"
    k += [f"{a}.proj.weight", *_bn(f"{a}.bn1"), f"{a}.dw_conv.weight", *_bn(f"{a}.bn2")]
    r = "reid_frq_aggregation_network"
    for n in (1280, 640, 320):
        k += _lpm(f"{r}.lpm_{n}")
    k += [f"{r}.conv_level2.weight", f"{r}.conv_level3.weight", f"{r}.layer_norm.weight", f"{r}.layer_norm.bias",
          f"{r}.final_conv.weight"]
    for lv in (2, 3):
        f = f"{r}.frm_level{lv}"
        for band in ("lh", "hl", "hh"):
            s = f"{f}.srb_{band}"
            k += [f"{s}.dw_conv.weight", f"{s}.pw_conv.weight", *_bn(f"{s}.bn"), f"{s}.attention.weight",
                  f"{s}.attention.bias", f"{f}.gamma_{band}"]
        k += [f"{f}.DWT.{n}" for n in ("h0_col", "h1_col", "h0_row", "h1_row")]
        k += [f"{f}.IDWT.{n}" for n in ("g0_col", "g1_col", "g0_row", "g1_row")]
    k += ["dgrpn.beta", "dgrpn.gamma"]
    k += [f"rpn.head.{n}" for n in ("conv.0.0.weight", "conv.0.0.bias", "cls_logits.weight", "cls_logits.bias",
                                   "bbox_pred.weight", "bbox_pred.bias")]
    k += _layer4("detection_roi_heads.box_head")
    p = "detection_roi_heads.box_predictor"
    k += [f"{p}.classifier.weight", f"{p}.classifier.bias", f"{p}.regressor.fc.weight", *_bn(f"{p}.regressor.bn")]
    k += ["reid_roi_heads.sfan.part_weights", "reid_roi_heads.sfan.alpha"]
    k += _layer4("reid_roi_heads.enhancer.body")
    for e in (0, 1):
        for b in range(3):
            for j in range(b + 1):
                s = f"reid_roi_heads.embedder.encoders.{e}.branches.{b}.strip_projectors.{j}"
                k += [f"{s}.cbam.channel_attention.body.fc1.weight", f"{s}.cbam.channel_attention.body.fc1.bias",
                      f"{s}.cbam.channel_attention.body.fc2.weight", f"{s}.cbam.channel_attention.body.fc2.bias",
                      f"{s}.cbam.spatial_attention.body.weight", f"{s}.cbam.spatial_attention.body.bias",
                      f"{s}.linear.weight", *_bn(f"{s}.norm"), f"{s}.drop_path.keep_prob"]
    k += ["reid_roi_heads.reid_loss.lut", "reid_roi_heads.reid_loss.cq"]
    return set(k)


@pytest.fixture(scope="module")
def full_diffps():
    return D.DiffPS(D.DiffPSConfig())


def _count(model, prefix):
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))


def test_diffps_state_dict_keys_match_public_code(full_diffps):
    got = set(full_diffps.state_dict().keys())
    exp = expected_diffps_keys()
    assert got == exp, f"missing {sorted(exp - got)[:10]}, unexpected {sorted(got - exp)[:10]}"


@pytest.mark.parametrize("prefix,count", [
    ("detection_aggregation_network.", 340_992),
    ("reid_frq_aggregation_network.", 25_484_294),
    ("reid_frq_aggregation_network.lpm_1280.", 2_374_656),
    ("reid_frq_aggregation_network.lpm_640.", 1_719_296),
    ("reid_frq_aggregation_network.lpm_320.", 1_391_616),
    ("reid_frq_aggregation_network.frm_level2.", 6_328_323),
    ("reid_frq_aggregation_network.frm_level3.", 6_328_323),
    ("dgrpn.", 2),
    ("rpn.", 9_515_083),
    ("detection_roi_heads.box_head.", 14_964_736),
    ("detection_roi_heads.box_predictor.", 12_298),
    ("reid_roi_heads.sfan.", 5),
    ("reid_roi_heads.enhancer.", 14_964_736),
    ("reid_roi_heads.embedder.encoders.0.", 1_318_866),
    ("reid_roi_heads.embedder.encoders.1.", 4_208_978),
])
def test_diffps_parameter_counts(full_diffps, prefix, count):
    assert _count(full_diffps, prefix) == count


def test_diffps_total_and_buffers(full_diffps):
    assert _count(full_diffps, "") == 70_809_990  # "≈ 70.81M"
    sd = full_diffps.state_dict()
    assert sd["text_embeds"].shape == (4, 1024)
    assert sd["reid_roi_heads.reid_loss.lut"].shape == (5532, 1024)
    assert sd["reid_roi_heads.reid_loss.cq"].shape == (5000, 1024)
    assert D.haar_buffers_ok(full_diffps)
    prw = D.DiffPS(D.DiffPSConfig.prw())
    assert prw.state_dict()["reid_roi_heads.reid_loss.lut"].shape == (483, 1024)


def test_diffps_haar_buffers_match_pytorch_wavelets():
    pytest.importorskip("pywt")
    # pytorch_wavelets' DTCWT module imports pkg_resources (gone from recent setuptools); the DWT
    # does not use it, so a stand-in is enough for the import.
    stub = "pkg_resources" not in sys.modules
    if stub:
        sys.modules["pkg_resources"] = types.SimpleNamespace(resource_stream=None)
    try:
        pwt = pytest.importorskip("pytorch_wavelets")
    finally:
        if stub:
            del sys.modules["pkg_resources"]
    dwt = pwt.DWTForward(J=1, wave="haar", mode="zero")
    idwt = pwt.DWTInverse(wave="haar", mode="zero")
    mine_d, mine_i = D.HaarDWT(), D.HaarIDWT()
    for name, buf in dwt.state_dict().items():
        assert torch.equal(buf, mine_d.state_dict()[name]), name
    for name, buf in idwt.state_dict().items():
        assert torch.equal(buf, mine_i.state_dict()[name]), name
    x = torch.randn(2, 5, 8, 12)
    yl, yh = dwt(x)
    ll, high = mine_d(x)
    assert torch.allclose(yl, ll, atol=1e-5) and torch.allclose(yh[0], high, atol=1e-5)
    assert torch.allclose(idwt((ll, [high])), mine_i(ll, high), atol=1e-5)


# ============================================================================ DiffPS: numerics

def test_haar_dwt_closed_form_and_perfect_reconstruction():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    ll, high = D.HaarDWT()(x)
    assert torch.equal(ll, torch.tensor([[[[5.0, 9.0], [21.0, 25.0]]]]))
    assert torch.equal(high[0, 0, 0], torch.full((2, 2), -4.0))   # (a+b-c-d)/2
    assert torch.equal(high[0, 0, 1], torch.full((2, 2), -1.0))   # (a-b+c-d)/2
    assert torch.equal(high[0, 0, 2], torch.zeros(2, 2))          # (a-b-c+d)/2
    g = torch.Generator().manual_seed(0)
    for shape in [(1, 3, 2, 2), (2, 8, 16, 10), (1, 4, 160, 160)]:
        x = torch.randn(shape, generator=g)
        ll, high = D.HaarDWT()(x)
        assert ll.shape == (shape[0], shape[1], shape[2] // 2, shape[3] // 2)
        y = D.HaarIDWT()(ll, high)
        assert torch.allclose(y, x, rtol=0, atol=1e-6)
        # Parseval: the orthonormal Haar transform keeps the energy
        assert torch.allclose((ll ** 2).sum() + (high ** 2).sum(), (x ** 2).sum(), rtol=1e-5)
        nl, nh = R.haar_dwt(x.numpy())
        assert np.allclose(nl, ll.numpy(), atol=1e-6) and np.allclose(nh, high.numpy(), atol=1e-6)
        assert np.allclose(R.haar_idwt(nl, nh), x.numpy(), atol=1e-6)
    with pytest.raises(ValueError):
        D.HaarDWT()(torch.randn(1, 1, 5, 4))


def _small_taps(cfg, gen, batch=1, heads=2):
    c1, c2, c3 = cfg.tap_channels
    h = cfg.image_size[0] // 8
    taps = {D.REID_L1_TAP: torch.randn(batch, c1, h // 4, h // 4, generator=gen)}
    for k in D.REID_L2_TAPS:
        taps[k] = torch.randn(batch, c2, h // 2, h // 2, generator=gen)
    for k in D.REID_L3_TAPS:
        taps[k] = torch.randn(batch, c3, h, h, generator=gen)
    taps[D.CROSS_MAP_TAP] = torch.softmax(torch.randn(batch, heads, h * h, 77, generator=gen) * 3, -1)
    return taps


@pytest.fixture(scope="module")
def small_diffps():
    torch.manual_seed(0)
    m = D.DiffPS(D.DiffPSConfig.small())
    with torch.no_grad():
        m.dgrpn.gamma.fill_(0.5)
        m.reid_roi_heads.sfan.alpha.fill_(0.5)
        m.text_embeds.normal_()
    return m.eval()


def test_diffps_small_forward_shapes(small_diffps):
    cfg = small_diffps.cfg
    taps = _small_taps(cfg, torch.Generator().manual_seed(1), batch=2)
    out = small_diffps.forward_features(taps, return_intermediates=True)
    assert out["det_agg"].shape == (2, 64, 16, 16) and out["feat_reid"].shape == (2, 64, 16, 16)
    assert out["rpn"]["objectness"].shape == (2, 15, 16, 16) and out["rpn"]["deltas"].shape == (2, 60, 16, 16)
    assert out["rpn"]["anchors"].shape == (16 * 16 * 15, 4)
    for boxes, scores, emb, props in zip(out["boxes"], out["scores"], out["embeddings"], out["rpn"]["proposals"]):
        assert len(props) <= cfg.rpn_post_nms_top_n
        assert boxes.shape[1] == 4 and len(boxes) == len(scores) == len(emb) <= cfg.det_per_img
        assert emb.shape[1] == cfg.dim_identity
        assert torch.all(scores > cfg.det_score_thresh)
        assert torch.all(scores[:-1] >= scores[1:])
        assert torch.allclose(emb.norm(dim=1), torch.ones(len(emb)), atol=1e-5)
        assert boxes.min() >= 0 and boxes.max() <= 128
    resized = small_diffps.forward_features(taps, original_sizes=[(256, 512), (64, 64)])
    assert torch.allclose(resized["boxes"][0], out["boxes"][0] * torch.tensor([4.0, 2.0, 4.0, 2.0]))
    q = small_diffps.embed_boxes(taps, [torch.tensor([[0.0, 0.0, 50.0, 100.0]]), torch.zeros(0, 4)])
    assert q[0].shape == (1, 64) and q[1].shape == (0, 64)


def test_diffps_rpn_matches_numpy_formulas(small_diffps):
    cfg = small_diffps.cfg
    taps = _small_taps(cfg, torch.Generator().manual_seed(2))
    out = small_diffps.forward_features(taps, return_intermediates=True)
    rpn = out["rpn"]
    anchors = R.anchors(cfg.image_size, (16, 16), cfg.anchor_sizes, cfg.aspect_ratios)
    assert np.array_equal(anchors, rpn["anchors"].numpy())
    boxes, scores = R.rpn_proposals(rpn["objectness"][0].numpy(), rpn["deltas"][0].numpy(), anchors,
                                    cfg.image_size, cfg.rpn_pre_nms_top_n, cfg.rpn_post_nms_top_n,
                                    cfg.rpn_nms_thresh, cfg.rpn_min_size, cfg.rpn_score_thresh)
    assert boxes.shape == rpn["proposals"][0].shape
    assert np.allclose(boxes, rpn["proposals"][0].numpy(), atol=1e-4)
    assert np.allclose(scores, rpn["proposal_scores"][0].numpy(), atol=1e-6)
    b2, s2 = R.fastrcnn_postprocess(out["det_cls_logits"].numpy(), out["det_box_regression"].numpy(),
                                    rpn["proposals"][0].numpy(), cfg.image_size, cfg.det_score_thresh,
                                    cfg.det_nms_thresh, cfg.det_per_img, cfg.det_min_size)
    assert b2.shape == out["boxes"][0].shape
    assert np.allclose(b2, out["boxes"][0].numpy(), atol=1e-4) and np.allclose(s2, out["scores"][0].numpy(), atol=1e-6)


def test_anchor_generator_first_cell():
    # size 32, ratio 0.5 at cell (0, 0): w = 32*sqrt(2) = 45.25 -> +-22.63 -> round 23; h -> +-11.31 -> 11
    a = R.anchors((1280, 1280), (160, 160), (32, 64, 128, 256, 512), (0.5, 1.0, 2.0))
    assert a.shape == (384_000, 4)
    assert a[0].tolist() == [-23.0, -11.0, 23.0, 11.0]
    assert a[15].tolist() == [8 - 23.0, -11.0, 8 + 23.0, 11.0]  # next cell in x, same base anchor


def test_dgrpn_matches_numpy_and_tie_order():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 6, 20, 24, generator=g)
    attn = torch.rand(2, 20, 24, generator=g) ** 4
    attn[1] *= 0.5  # batch-global normalisation: image 1 never reaches 1.0
    mod = D.DGRPNModulator(tau=0.3, topk=15)
    with torch.no_grad():
        mod.beta.fill_(-1.4)
        mod.gamma.fill_(0.7)
    with torch.no_grad():
        out, aux = mod(feats, attn, return_aux=True)
    ref, raux = R.dgrpn(feats.numpy(), attn.numpy(), -1.4, 0.7, tau=0.3, topk=15)
    assert np.array_equal(raux["cx"], aux["cx"].numpy()) and np.array_equal(raux["cy"], aux["cy"].numpy())
    assert np.allclose(raux["s_w"], aux["s_w"].numpy(), rtol=1e-5)
    assert np.allclose(raux["s_h"], aux["s_h"].numpy(), rtol=1e-5)
    assert np.allclose(raux["G"], aux["G"].numpy(), atol=1e-6)
    assert np.allclose(ref, out.numpy(), atol=1e-5)
    # fewer peaks than K: the zero-score tail is the lowest flat indices, in order
    zeros = aux["peak_scores"] == 0
    assert zeros.any()
    for b in range(2):
        tail = (aux["cy"][b] * 24 + aux["cx"][b])[zeros[b]]
        assert tail.tolist() == sorted(tail.tolist())  # zero-score tail in row-major order


def test_attention_map_head_and_token():
    a = torch.rand(2, 3, 16, 77)
    m = D.get_attention_map(a, 1, 1, (4, 4))
    sl = a[:, 1, :, 1]
    exp = (sl - sl.min(1, keepdim=True).values) / (sl.max(1, keepdim=True).values - sl.min(1, keepdim=True).values)
    assert torch.allclose(m, exp.reshape(2, 4, 4))
    assert np.allclose(R.attention_map(a.numpy(), 1, 1, (4, 4)), m.numpy(), atol=1e-7)
    flat = D.get_attention_map(torch.ones(1, 3, 16, 77), 1, 1, (4, 4))
    assert torch.equal(flat, torch.zeros(1, 4, 4))


def test_diffps_checkpoint_round_trip(tmp_path, small_diffps):
    sd = small_diffps.state_dict()
    path = tmp_path / "ckpt_epoch-1.pth"
    torch.save({"epoch": 1, "iteration": 3, "model": sd, "optimizer": {}, "scheduler": {}, "scaler": {}}, path)
    m2 = D.load_diffps_checkpoint(str(path), D.DiffPSConfig.small(oim_num_pids=1, oim_cq_size=1))
    assert m2.cfg.oim_num_pids == 8
    for k, v in m2.state_dict().items():
        assert torch.equal(v, sd[k]), k
    bad = dict(sd)
    bad["reid_frq_aggregation_network.frm_level2.DWT.h1_col"] = torch.ones(1, 1, 2, 1)
    torch.save({"model": bad}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="Haar"):
        D.load_diffps_checkpoint(str(tmp_path / "bad.pth"), D.DiffPSConfig.small())


# ============================================================================ UNet hook

@pytest.fixture(scope="module")
def mini_unet():
    from diffusers import UNet2DConditionModel
    with open(os.path.join(FIXTURES, "unet_sd21_mini", "config.json")) as f:
        cfg = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    torch.manual_seed(0)
    return UNet2DConditionModel(**cfg).eval()


def test_unet_taps_shapes_and_processor(mini_unet):
    x, ehs = torch.randn(1, 4, 32, 32), torch.randn(1, 77, 64)
    taps = D.unet_taps(mini_unet, x, torch.tensor([0.0]), ehs)
    assert list(taps) == list(D.ALL_TAPS)
    assert taps[D.DET_TAP].shape == (1, 32, 32, 32)
    assert taps[D.REID_L1_TAP].shape == (1, 32, 8, 8)
    assert taps[D.REID_L2_TAPS[0]].shape == (1, 32, 16, 16)
    cm = taps[D.CROSS_MAP_TAP]
    assert cm.shape == (1, 8, 1024, 77) and torch.allclose(cm.sum(-1), torch.ones(1, 8, 1024), atol=1e-5)
    # self-k tap == to_k(norm1(h)) rearranged; check against a manual hook
    blk = mini_unet.up_blocks[3].attentions[0].transformer_blocks[0]
    seen = {}
    h = blk.attn1.to_k.register_forward_hook(lambda m, i, o: seen.setdefault("k", o))
    with torch.no_grad():
        ref_out = mini_unet(x, torch.tensor([0.0]), encoder_hidden_states=ehs).sample
    h.remove()
    assert torch.allclose(seen["k"].reshape(1, 32, 32, 32).permute(0, 3, 1, 2), taps[D.DET_TAP])
    # the probability-storing processor gives the same UNet output as the default one
    store = {}
    old = blk.attn2.processor
    blk.attn2.set_processor(D._ProbsAttnProcessor(store, "m"))
    try:
        with torch.no_grad():
            out = mini_unet(x, torch.tensor([0.0]), encoder_hidden_states=ehs).sample
    finally:
        blk.attn2.set_processor(old)
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.allclose(store["m"], cm, atol=1e-6)
    # processors restored, fp16 cast option
    assert blk.attn2.processor is old
    t16 = D.unet_taps(mini_unet, x, torch.tensor([0.0]), ehs, names=(D.DET_TAP,), dtype=torch.float16)
    assert t16[D.DET_TAP].dtype == torch.float16


def test_diffps_small_on_mini_unet_taps(mini_unet):
    cfg = D.DiffPSConfig.small(tap_channels=(32, 32, 32), image_size=(256, 256))
    torch.manual_seed(0)
    model = D.DiffPS(cfg)
    taps = D.unet_taps(mini_unet, torch.randn(1, 4, 32, 32), torch.tensor([0.0]), torch.randn(1, 77, 64))
    out = model.forward_features(taps)
    assert out["embeddings"][0].shape[1] == cfg.dim_identity


# ============================================================================ PSDiff

@pytest.fixture(scope="module")
def small_psdiff():
    torch.manual_seed(0)
    m = P.PSDiff(P.PSDiffConfig.small())
    with torch.no_grad():
        for cdl in m.head.head_series:
            cdl.class_logits.bias.fill_(0.5)
    return m.eval()


def _feats(seed=0, c=64, size=128):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, c, size // s, size // s, generator=g) for s in (4, 8, 16, 32)]


def test_psdiff_full_state_dict_names():
    m = P.PSDiff(P.PSDiffConfig())
    sd = m.state_dict()
    for name in P.SCHEDULE_BUFFERS:
        assert sd[name].shape == (1000,) and sd[name].dtype == torch.float32
    for lvl in (2, 3, 4, 5):
        assert sd[f"backbone.fpn_lateral{lvl}.weight"].shape[0] == 256
        assert sd[f"backbone.fpn_output{lvl}.weight"].shape == (256, 256, 3, 3)
    assert "backbone.bottom_up.layer4.2.conv3.weight" in sd and "backbone.bottom_up.conv1.weight" in sd
    assert sd["head.time_mlp.1.weight"].shape == (1024, 256) and sd["head.time_mlp.3.weight"].shape == (1024, 1024)
    h = "head.head_series.0."
    assert sd[h + "self_attn.in_proj_weight"].shape == (768, 256)
    assert sd[h + "inst_interact.dynamic_layer.weight"].shape == (2 * 256 * 64, 256)
    assert sd[h + "inst_interact.out_layer.weight"].shape == (256, 256 * 49)
    assert sd[h + "block_time_mlp.1.weight"].shape == (1024, 1024)
    assert sd[h + "cross_attn.in_proj_weight"].shape == (768, 256)
    assert [k for k in sd if k.startswith(h + "reg_module")] == [
        h + s for s in ("reg_module.0.weight", "reg_module.1.weight", "reg_module.1.bias", "reg_module.3.weight",
                        "reg_module.4.weight", "reg_module.4.bias", "reg_module.6.weight", "reg_module.7.weight",
                        "reg_module.7.bias")]
    assert sd[h + "class_logits.bias"].item() == pytest.approx(-math.log(99))
    assert not any(k.startswith("head.head_series.1.") for k in sd)  # single CDL by default
    assert set(P.diffusiondet_head_key_map(1)) <= {k[: k.index(".", len(h)) + 1] if k.startswith(h) else "head.time_mlp."
                                                   for k in sd if k.startswith("head.")} | {"head.time_mlp."}


def test_schedule_and_time_pairs():
    s = P.schedule_tensors()
    assert np.allclose(R.cosine_schedule(), s["alphas_cumprod"].numpy(), rtol=1e-6, atol=0)
    assert s["alphas_cumprod"][0] > 0.9999 and s["alphas_cumprod"][999] < 1e-8
    assert P.ddim_time_pairs(1) == [(999, -1)]
    assert P.ddim_time_pairs(2) == [(999, 499), (499, -1)]
    assert P.ddim_time_pairs(4) == [(999, 749), (749, 499), (499, 249), (249, -1)]
    assert P.ddim_time_pairs(8)[0] == (999, 874) and len(P.ddim_time_pairs(8)) == 8
    for n in (1, 2, 4, 8):
        assert R.time_pairs(n) == P.ddim_time_pairs(n)


def test_psdiff_pooler_levels_match_per_level_gather():
    pool = P.MultiLevelRoIPooler(7, (4, 8, 16, 32), 2, 224.0, 4)
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 200.0, 300.0], [0.0, 0.0, 500.0, 500.0],
                           [10.0, 10.0, 10.0, 10.0], [3.0, 4.0, 120.0, 90.0], [0.0, 0.0, 150.0, 150.0]]])
    lv = pool.levels(boxes[0])
    # sqrt areas 10, 239.8, 500, 0, 100.3, 150 -> floor(4 + log2(s / 224)) clamped to [2, 5], minus 2
    assert lv.tolist() == [0, 2, 3, 0, 0, 1]
    assert np.array_equal(R.level_assignment(boxes[0].numpy()), lv.numpy())
    feats = _feats(1, 8, 512)
    out = pool(feats, boxes)
    from torchvision.ops import roi_align
    for i in range(6):
        lvl = int(lv[i])
        ref = roi_align(feats[lvl], [boxes[0, i:i + 1]], 7, 1.0 / (4 * 2 ** lvl), 2, True)
        assert torch.allclose(out[i:i + 1], ref)


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_psdiff_steps_run(small_psdiff, steps):
    r = small_psdiff.sample(_feats(), [(128, 128)], steps=steps, generator=torch.Generator().manual_seed(0),
                            return_trace=True)[0]
    assert len(r["trace"]) == steps
    m = len(r["boxes"])
    assert r["scores"].shape == (m,) and r["embeddings"].shape == (m, 64) and r["labels"].shape == (m,)
    assert torch.all(torch.isfinite(r["boxes"])) and torch.all(torch.isfinite(r["embeddings"]))
    assert torch.allclose(r["embeddings"].norm(dim=1), torch.ones(m), atol=1e-5)
    assert torch.all(r["scores"][:-1] >= r["scores"][1:])
    assert r["boxes"].min() >= 0 and r["boxes"].max() <= 128
    assert torch.all(r["boxes"][:, 2] > r["boxes"][:, 0]) and torch.all(r["boxes"][:, 3] > r["boxes"][:, 1])
    if steps > 1:
        assert m <= steps * 50


def test_psdiff_ddim_determinism_and_noise_replay(small_psdiff):
    f = _feats()
    a = small_psdiff.sample(f, [(128, 128)], steps=4, generator=torch.Generator().manual_seed(5), return_noise=True)[0]
    b = small_psdiff.sample(f, [(128, 128)], steps=4, generator=torch.Generator().manual_seed(5))[0]
    c = small_psdiff.sample(f, [(128, 128)], steps=4, generator=torch.Generator().manual_seed(6))[0]
    d = small_psdiff.sample(f, [(128, 128)], steps=4, noise=a["noise"])[0]
    for k in ("boxes", "scores", "embeddings"):
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], d[k])
    assert a["boxes"].shape != c["boxes"].shape or not torch.equal(a["boxes"], c["boxes"])
    assert list(a["noise"]) == P.noise_keys(4)
    # prefix property of the draws
    n2 = P.draw_noise(1, 50, 64, 2, torch.Generator().manual_seed(5))
    for k, v in n2.items():
        assert torch.equal(v, a["noise"][k])
    with pytest.raises(ValueError, match="missing"):
        small_psdiff.sample(f, [(128, 128)], steps=4, noise=n2)


def _numpy_replay(model, noise, steps, image_hw, trace):
    """Re-derive every non-neural quantity of a PSDiff sampling run in numpy (reference_np) from the
    torch trace, one step at a time (teacher forcing: step k starts from the trace's x_k and uses the
    head outputs recorded there). Returns the final (boxes, scores, embeddings)."""
    cfg = model.cfg
    h, w = image_hw
    s1, s2, n = cfg.box_scale, cfg.emb_scale, cfg.num_proposals
    ac = model.alphas_cumprod.numpy()
    sr, srm1 = model.sqrt_recip_alphas_cumprod.numpy(), model.sqrt_recipm1_alphas_cumprod.numpy()
    rec = []
    pairs = R.time_pairs(steps)
    for k, (t, tn) in enumerate(pairs):
        tr = trace[k]
        assert (tr["t"], tr["t_next"]) == (t, tn)
        x_box, x_emb = tr["x_box"][0].numpy(), tr["x_emb"][0].numpy()
        if k == 0:
            assert np.array_equal(x_box, noise["box_T"][0].numpy()) and np.array_equal(x_emb, noise["emb_T"][0].numpy())
        assert np.allclose(R.boxes_from_x(x_box, s1, w, h), tr["boxes_in"][0].numpy(), atol=1e-5)
        assert np.allclose(np.clip(x_emb, -s2, s2) / np.float32(s2), tr["emb_in"][0].numpy(), atol=1e-7)
        logits, pb, pe = tr["logits"][0].numpy(), tr["pred_boxes"][0].numpy(), tr["pred_emb"][0].numpy()
        score = 1 / (1 + np.exp(-logits.max(-1)))
        keep = score > cfg.renewal_threshold
        assert np.array_equal(keep, tr["keep"].numpy())
        rec.append((pb, 1 / (1 + np.exp(-logits[:, 0])), R.l2n(pe)))
        if tn < 0:
            break
        x0b = R.x0_from_boxes(pb, s1, w, h)
        x0e = np.clip(R.l2n(pe) * np.float32(s2), -s2, s2)
        eb = (sr[t] * x_box - x0b) / srm1[t]
        ee = (sr[t] * x_emb - x0e) / srm1[t]
        r = int(keep.sum())
        nb = R.ddim_update(x0b[keep], eb[keep], noise[f"box_ddim_{k}"][0, :r].numpy(), ac[t], ac[tn])
        ne = R.ddim_update(x0e[keep], ee[keep], noise[f"emb_ddim_{k}"][0, :r].numpy(), ac[t], ac[tn])
        nb = np.concatenate([nb, noise[f"box_renew_{k}"][0, : n - r].numpy()])
        ne = np.concatenate([ne, noise[f"emb_renew_{k}"][0, : n - r].numpy()])
        assert np.allclose(nb, trace[k + 1]["x_box"][0].numpy(), atol=2e-5)
        assert np.allclose(ne, trace[k + 1]["x_emb"][0].numpy(), atol=2e-5)
    boxes = np.concatenate([r_[0] for r_ in rec])
    scores = np.concatenate([r_[1] for r_ in rec])
    embs = np.concatenate([r_[2] for r_ in rec])
    keep = R.nms(boxes, scores, cfg.nms_thresh)
    boxes, scores, embs = R.clip(boxes[keep], h, w), scores[keep], embs[keep]
    ne = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    return boxes[ne], scores[ne], embs[ne]


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_psdiff_sampler_matches_numpy_restatement(small_psdiff, steps):
    f = _feats(3)
    noise = P.draw_noise(1, 50, 64, steps, torch.Generator().manual_seed(11))
    r = small_psdiff.sample(f, [(128, 128)], steps=steps, noise=noise, return_trace=True)[0]
    b, s, e = _numpy_replay(small_psdiff, noise, steps, (128, 128), r["trace"])
    assert b.shape == r["boxes"].shape
    assert np.allclose(b, r["boxes"].numpy(), atol=1e-5)
    assert np.allclose(s, r["scores"].numpy(), atol=1e-6)
    assert np.allclose(e, r["embeddings"].numpy(), atol=1e-6)


def test_psdiff_cascade_of_two_cdls():
    torch.manual_seed(0)
    m = P.PSDiff(P.PSDiffConfig.small(num_heads=2)).eval()
    assert any(k.startswith("head.head_series.1.") for k in m.state_dict())
    f = _feats()
    boxes = torch.tensor([[[10.0, 10.0, 60.0, 90.0], [0.0, 0.0, 128.0, 128.0]]])
    emb = torch.randn(1, 2, 64)
    with torch.no_grad():
        outs = m.head(f, boxes, emb, torch.tensor([500]))
        l1, b1, e1 = m.head.head_series[1].forward_rois(m.head.box_pooler(f, outs[0][1]), outs[0][1],
                                                        torch.nn.functional.normalize(outs[0][2], dim=-1),
                                                        m.head.time_mlp(torch.tensor([500])))
    assert len(outs) == 2
    assert torch.allclose(outs[1][0], l1) and torch.allclose(outs[1][1], b1) and torch.allclose(outs[1][2], e1)
    assert m.sample(f, [(128, 128)], steps=2, generator=torch.Generator().manual_seed(0))[0]["boxes"].shape[1] == 4


def test_ddim_coefficients_are_well_conditioned():
    ac = P.schedule_tensors()["alphas_cumprod"]
    a, an = ac[999], ac[499]
    sigma = ((1 - a / an) * (1 - an) / (1 - a)).sqrt()
    assert torch.isnan((1 - an - sigma ** 2).sqrt())        # DiffusionDet's float32 formula: NaN
    sa, c, sg = P.ddim_coefficients(float(a), float(an))
    exact = math.sqrt(float(a) * (1 - float(an)) ** 2 / (float(an) * (1 - float(a))))  # eta = 1 closed form
    assert c == pytest.approx(exact, rel=1e-5) and 3e-5 < c < 4e-5
    assert sa == pytest.approx(math.sqrt(float(an))) and sg == pytest.approx(float(sigma), rel=1e-6)
    for steps in (2, 4, 8):
        for t, tn in P.ddim_time_pairs(steps)[:-1]:
            assert tuple(map(float, R.ddim_coefficients(ac[t], ac[tn]))) == P.ddim_coefficients(float(ac[t]), float(ac[tn]))


# ============================================================================ backbones

@pytest.mark.parametrize("name,c4,c5", [("resnet50", 1024, 2048), ("resnet18", 256, 512), ("shufflenet", 232, 464)])
def test_pretrainps_backbones(name, c4, c5):
    m = B.pretrainps_backbone(name).eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 64, 96))
    assert out["C4"].shape == (1, c4, 4, 6) and out["C5"].shape == (1, c5, 2, 3)
    assert not any(k.startswith("fc.") for k in m.state_dict())


def test_backbone_loads_torchvision_names():
    from torchvision.models import resnet18, shufflenet_v2_x1_0
    tv = resnet18(weights=None).state_dict()
    m = B.ResNetBackbone(18, ("C2", "C3", "C4", "C5"))
    _, dropped = B.load_backbone_weights(m, {"state_dict": tv})   # psvis/mmdet layout
    assert dropped == ["fc.bias", "fc.weight"]
    assert torch.equal(m.state_dict()["layer4.1.bn2.running_var"], tv["layer4.1.bn2.running_var"])
    sv = shufflenet_v2_x1_0(weights=None).state_dict()
    s = B.ShuffleNetV2Backbone()
    _, dropped = B.load_backbone_weights(s, sv)
    assert all(d.startswith(("fc.", "conv5.")) for d in dropped)


def test_resnet_fpn_and_detectron2_key_conversion():
    m = B.ResNetFPN(18, 32).eval()
    keys = list(m.state_dict())
    assert "fpn_lateral2.weight" in keys and "fpn_output5.bias" in keys and "bottom_up.layer1.0.conv1.weight" in keys
    with torch.no_grad():
        out = m(torch.randn(1, 3, 64, 64))
    assert [tuple(out[f"p{l}"].shape) for l in (2, 3, 4, 5)] == [(1, 32, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4),
                                                                  (1, 32, 2, 2)]
    d2 = {"backbone.bottom_up.stem.conv1.weight": 1, "backbone.bottom_up.stem.conv1.norm.running_var": 2,
          "backbone.bottom_up.res2.0.conv3.norm.bias": 3, "backbone.bottom_up.res5.2.conv2.weight": 4,
          "backbone.bottom_up.res3.0.shortcut.weight": 5, "backbone.bottom_up.res3.0.shortcut.norm.weight": 6,
          "backbone.fpn_lateral2.weight": 7}
    tv = B.detectron2_resnet_to_torchvision(d2)
    assert list(tv) == ["backbone.bottom_up.conv1.weight", "backbone.bottom_up.bn1.running_var",
                        "backbone.bottom_up.layer1.0.bn3.bias", "backbone.bottom_up.layer4.2.conv2.weight",
                        "backbone.bottom_up.layer2.0.downsample.0.weight",
                        "backbone.bottom_up.layer2.0.downsample.1.weight", "backbone.fpn_lateral2.weight"]


# ============================================================================ pth_to_safetensors

SCRIPT = os.path.join(TOOLS, "pth_to_safetensors.py")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def test_pth_to_safetensors_round_trip(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file
    lin = torch.nn.Linear(3, 4)
    sd = dict(lin.state_dict())
    sd["tied"] = sd["weight"]                        # shared storage, same view
    sd["row"] = sd["weight"][1]                      # shared storage, different view -> copied
    sd["half"] = torch.randn(2, 2).half()
    sd["nt"] = torch.randn(4, 3).t()                 # non-contiguous
    sd["step"] = 7                                   # not a tensor -> skipped
    torch.save({"epoch": 1, "model": sd, "optimizer": {"state": {}}}, tmp_path / "ck.pth")
    res = _run(str(tmp_path / "ck.pth"), str(tmp_path / "ck.safetensors"))
    assert res.returncode == 0, res.stderr
    assert "source dict   : model" in res.stdout and "tied -> weight" in res.stdout and "step (int)" in res.stdout
    out = load_file(tmp_path / "ck.safetensors")
    assert set(out) == {"weight", "bias", "row", "half", "nt"}
    for k in out:
        assert torch.equal(out[k], sd[k]) and out[k].dtype == sd[k].dtype
    with safe_open(tmp_path / "ck.safetensors", "pt") as f:
        assert json.loads(f.metadata()["aliases"]) == {"tied": "weight"}
    # explicit key and plain state dicts
    torch.save({"state_dict": {"a": torch.ones(2)}, "meta": {"x": 1}}, tmp_path / "mm.pth")
    assert _run(str(tmp_path / "mm.pth"), str(tmp_path / "mm.safetensors")).returncode == 0
    assert torch.equal(load_file(tmp_path / "mm.safetensors")["a"], torch.ones(2))
    res = _run(str(tmp_path / "mm.pth"), str(tmp_path / "x.safetensors"), "--key", "model")
    assert res.returncode == 2 and "no entry 'model'" in res.stderr
    res = _run(str(tmp_path / "missing.pth"), str(tmp_path / "x.safetensors"))
    assert res.returncode == 1
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert _run(str(tmp_path / "junk.pth"), str(tmp_path / "x.safetensors")).returncode == 2


class _Payload:
    """Pickles as a call that would create a marker file if it were ever executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Custom:
    def __init__(self):
        self.w = torch.ones(2)


def test_pth_to_safetensors_refuses_pickled_code(tmp_path):
    marker = tmp_path / "EXECUTED"
    torch.save({"model": {"w": torch.ones(2)}, "extra": _Payload(str(marker))}, tmp_path / "evil.pth")
    res = _run(str(tmp_path / "evil.pth"), str(tmp_path / "evil.safetensors"))
    assert res.returncode == 2 and "refusing" in res.stderr
    assert not marker.exists() and not (tmp_path / "evil.safetensors").exists()
    torch.save({"model": _Custom()}, tmp_path / "custom.pth")
    res = _run(str(tmp_path / "custom.pth"), str(tmp_path / "custom.safetensors"))
    assert res.returncode == 2 and "_Custom" in res.stderr
    assert not (tmp_path / "custom.safetensors").exists()


# ============================================================================ committed fixtures

def _fixture(name):
    d = os.path.join(FIXTURES, name)
    if not os.path.isdir(d):
        pytest.skip(f"{name} fixtures not generated")
    return d


def test_diffps_fixture_reproduces():
    d = _fixture("diffps_small")
    from safetensors.torch import load_file
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    model = D.DiffPS(D.DiffPSConfig.from_dict(cfg["config"]))
    model.load_state_dict(load_file(os.path.join(d, "weights.safetensors")), strict=True)
    model.eval()
    taps = {k: torch.from_numpy(np.load(os.path.join(d, "inputs", f"{k}.npy"))) for k in D.ALL_TAPS}
    out = model.forward_features(taps, return_intermediates=True)
    tol = dict(rtol=1e-4, atol=1e-5)
    for name, t in (("boxes", out["boxes"][0]), ("scores", out["scores"][0]), ("embeddings", out["embeddings"][0]),
                    ("feat_reid", out["feat_reid"]), ("feat_det", out["feat_det"]),
                    ("proposals", out["rpn"]["proposals"][0])):
        ref = np.load(os.path.join(d, "outputs", f"{name}.npy"))
        assert ref.shape == tuple(t.shape) and np.allclose(t.numpy(), ref, **tol), name
    # the numpy formulas reproduce the post-processing from the stored head outputs
    o = lambda n: np.load(os.path.join(d, "outputs", f"{n}.npy"))  # noqa: E731
    c = model.cfg
    props, _ = R.rpn_proposals(o("rpn_objectness")[0], o("rpn_deltas")[0], o("anchors"), c.image_size,
                               c.rpn_pre_nms_top_n, c.rpn_post_nms_top_n, c.rpn_nms_thresh)
    assert np.allclose(props, o("proposals"), atol=1e-4)
    boxes, scores = R.fastrcnn_postprocess(o("det_cls_logits"), o("det_box_regression"), o("proposals"), c.image_size)
    assert np.allclose(boxes, o("boxes"), atol=1e-4) and np.allclose(scores, o("scores"), atol=1e-6)
    fd, _ = R.dgrpn(o("det_agg"), o("attn_map"), model.dgrpn.beta.item(), model.dgrpn.gamma.item(),
                    c.dgrpn_tau, c.dgrpn_delta, c.dgrpn_peak_window, c.dgrpn_neigh_window, c.dgrpn_topk)
    assert np.allclose(fd, o("feat_det"), atol=1e-5)


def test_psdiff_fixture_reproduces():
    d = _fixture("psdiff_small")
    from safetensors.torch import load_file
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    model = P.PSDiff(P.PSDiffConfig.from_dict(cfg["config"]))
    model.load_state_dict(load_file(os.path.join(d, "weights.safetensors")), strict=True)
    model.eval()
    feats = [torch.from_numpy(np.load(os.path.join(d, "features", f"p{l}.npy"))) for l in (2, 3, 4, 5)]
    noise = {k: torch.from_numpy(np.load(os.path.join(d, "noise", f"{k}.npy"))) for k in cfg["noise_keys_in_draw_order"]}
    for steps in (1, 2, 4):
        r = model.sample(feats, [(128, 128)], steps=steps, noise=noise)[0]
        for k in ("boxes", "scores", "labels", "embeddings"):
            ref = np.load(os.path.join(d, f"outputs_steps{steps}", f"{k}.npy"))
            assert ref.shape == tuple(r[k].shape) and np.allclose(r[k].numpy(), ref, rtol=1e-4, atol=1e-5), (steps, k)
    # noise is what the documented generator draw gives
    regen = P.draw_noise(1, cfg["config"]["num_proposals"], cfg["config"]["hidden_dim"], 4,
                         torch.Generator().manual_seed(cfg["noise_seed"]))
    for k, v in regen.items():
        assert torch.equal(v, noise[k])


@pytest.mark.parametrize("fixture,part", [("diffps_small", "aggregation"), ("diffps_small", "rpn_head"),
                                          ("diffps_small", "box_head"), ("diffps_small", "reid_head"),
                                          ("psdiff_small", "cdl_head")])
def test_onnx_parts_run_in_onnxruntime(fixture, part):
    ort = pytest.importorskip("onnxruntime")
    d = _fixture(fixture)
    with open(os.path.join(d, "config.json")) as f:
        spec = json.load(f)["onnx_parts"][part]
    sess = ort.InferenceSession(os.path.join(d, spec["model"]), providers=["CPUExecutionProvider"])
    feeds = {n: np.load(os.path.join(d, p)) for n, p in spec["inputs"].items()}
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    for n, p in spec["outputs"].items():
        ref = np.load(os.path.join(d, p))
        assert np.allclose(outs[n], ref, rtol=1e-4, atol=1e-5), n
    import onnx
    m = onnx.load(os.path.join(d, spec["model"]), load_external_data=False)
    assert m.opset_import[0].version == 17
    ext = [t for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert ext and all(e.value == "weights.safetensors" for t in ext for e in t.external_data if e.key == "location")
