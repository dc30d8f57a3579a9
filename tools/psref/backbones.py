"""PretrainPS backbones (ResNet-50, ResNet-18, ShuffleNet) and the FPN used by PSDiff.

State-dict names are torchvision's (`conv1`, `bn1`, `layer1`..`layer4`; ShuffleNetV2
`conv1.0`, `stage2`..`stage4`, `conv5`) without the classifier (`fc.*`), so torchvision
ImageNet weights load after dropping `fc.*`. The PretrainPS ResNets (PyPI `psvis` 1.6.0,
an mmdetection ResNet: `conv1`, `bn1`, `layerN.i.{conv,bn}{1,2,3}`, `downsample.{0,1}`) use
the same names; their checkpoints keep the weights under `state_dict`.

ShuffleNet: PretrainPS released a *ShuffleNet v1* (psvis `ShuffleNetV1`, mmcls style,
groups=3, stage channels 240/480/960, mmcv ConvModule names such as
`layers.0.0.g_conv_1x1_compress.conv.weight`). torchvision has no v1, v1's grouped 1x1
convolutions + channel shuffle have no canonical torchvision definition, and the v1 weights
are not reachable from here (the README's Drive link is a copy of another file). We use
torchvision's ShuffleNetV2 x1.0 (stride-16 C4 = stage3, 232 ch; stride-32 C5 = stage4,
464 ch), which has stable state-dict names and ImageNet weights; a v1 port would need its
own module with the psvis names.

FPN: Detectron2 naming (`fpn_lateral{2..5}`, `fpn_output{2..5}`, both with bias), top-down
sum with nearest x2 upsampling, as in DiffusionDet's `build_resnet_fpn_backbone`.
`ResNetFPN` keeps the trunk under `bottom_up` (torchvision names); use
`detectron2_resnet_to_torchvision` to load a DiffusionDet/Detectron2 checkpoint's
`backbone.bottom_up.*` weights (stem.conv1 -> conv1, res{2..5} -> layer{1..4},
conv{k}.norm -> bn{k}, shortcut -> downsample.0/1).
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet18, resnet50, shufflenet_v2_x1_0

_FEATURE_LAYERS = {"C2": "layer1", "C3": "layer2", "C4": "layer3", "C5": "layer4"}


class ResNetBackbone(nn.Module):
    """torchvision ResNet trunk (no avgpool/fc). forward -> {'C2'..'C5'} (strides 4..32)."""

    def __init__(self, depth: int = 50, out_features: tuple[str, ...] = ("C4", "C5")):
        super().__init__()
        net = {50: resnet50, 18: resnet18}[depth](weights=None)
        self.depth = depth
        self.out_features = tuple(out_features)
        last = max(int(f[1]) for f in self.out_features)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        for i in range(1, last):
            setattr(self, f"layer{i}", getattr(net, f"layer{i}"))
        self.out_channels = {f"C{i + 1}": (64 if depth < 50 else 256) * 2 ** (i - 1) for i in range(1, 5)}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for i in range(1, 5):
            name = f"layer{i}"
            if not hasattr(self, name):
                break
            x = getattr(self, name)(x)
            if f"C{i + 1}" in self.out_features:
                out[f"C{i + 1}"] = x
        return out


class ShuffleNetV2Backbone(nn.Module):
    """torchvision ShuffleNetV2 x1.0 trunk (no conv5/fc). C3 = stage2 (116 ch, /8),
    C4 = stage3 (232 ch, /16), C5 = stage4 (464 ch, /32)."""

    def __init__(self, out_features: tuple[str, ...] = ("C4", "C5")):
        super().__init__()
        net = shufflenet_v2_x1_0(weights=None)
        self.out_features = tuple(out_features)
        self.conv1, self.maxpool = net.conv1, net.maxpool
        self.stage2, self.stage3, self.stage4 = net.stage2, net.stage3, net.stage4
        self.out_channels = {"C2": 24, "C3": 116, "C4": 232, "C5": 464}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.maxpool(self.conv1(x))
        out = {}
        if "C2" in self.out_features:
            out["C2"] = x
        for name, stage in (("C3", self.stage2), ("C4", self.stage3), ("C5", self.stage4)):
            x = stage(x)
            if name in self.out_features:
                out[name] = x
        return out


def pretrainps_backbone(name: str, out_features: tuple[str, ...] = ("C4", "C5")) -> nn.Module:
    """'resnet50' | 'resnet18' | 'shufflenet' (torchvision ShuffleNetV2 x1.0, see module doc)."""
    if name == "resnet50":
        return ResNetBackbone(50, out_features)
    if name == "resnet18":
        return ResNetBackbone(18, out_features)
    if name in ("shufflenet", "shufflenet_v2"):
        return ShuffleNetV2Backbone(out_features)
    raise ValueError(f"unknown backbone {name!r}")


def load_backbone_weights(module: nn.Module, state_dict: dict[str, Tensor], strict: bool = True):
    """Load torchvision / psvis (`state_dict` sub-dict) weights: drops `fc.*`, `conv5.*` and layers the
    module does not have; missing `num_batches_tracked` are filled with 0."""
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    own = module.state_dict()
    sd = {k: v for k, v in state_dict.items() if k in own}
    for k in own:
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros((), dtype=torch.long)
    dropped = sorted(set(state_dict) - set(sd))
    result = module.load_state_dict(sd, strict=strict)
    return result, dropped


class FPN(nn.Module):
    """Detectron2 FPN over C2..C5: lateral 1x1 + output 3x3 (bias), p_l = out_l(lat_l(C_l) + up2(prev))."""

    def __init__(self, in_channels: tuple[int, int, int, int], out_channels: int = 256):
        super().__init__()
        self.out_channels = out_channels
        for level, c in zip((2, 3, 4, 5), in_channels):
            self.add_module(f"fpn_lateral{level}", nn.Conv2d(c, out_channels, 1))
            self.add_module(f"fpn_output{level}", nn.Conv2d(out_channels, out_channels, 3, padding=1))

    def forward(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        prev = self.fpn_lateral5(feats["C5"])
        out = {"p5": self.fpn_output5(prev)}
        for level in (4, 3, 2):
            top = F.interpolate(prev, scale_factor=2.0, mode="nearest")
            prev = getattr(self, f"fpn_lateral{level}")(feats[f"C{level}"]) + top
            out[f"p{level}"] = getattr(self, f"fpn_output{level}")(prev)
        return {k: out[k] for k in ("p2", "p3", "p4", "p5")}


class ResNetFPN(nn.Module):
    """`backbone` of PSDiff/DiffusionDet: bottom_up (torchvision ResNet) + FPN -> p2..p5 (strides 4..32)."""

    def __init__(self, depth: int = 50, out_channels: int = 256):
        super().__init__()
        self.bottom_up = ResNetBackbone(depth, ("C2", "C3", "C4", "C5"))
        oc = self.bottom_up.out_channels
        fpn = FPN((oc["C2"], oc["C3"], oc["C4"], oc["C5"]), out_channels)
        # flatten the FPN convs into this module so keys read backbone.fpn_lateral2.weight
        for name, mod in fpn.named_children():
            self.add_module(name, mod)
        self.out_channels = out_channels
        self.size_divisibility = 32

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return FPN.forward(self, self.bottom_up(x))  # type: ignore[arg-type]


def detectron2_resnet_to_torchvision(sd: dict[str, Tensor], prefix: str = "backbone.bottom_up.") \
        -> dict[str, Tensor]:
    """Rename Detectron2 ResNet keys (under `prefix`) to torchvision names (same prefix).

    stem.conv1.weight -> conv1.weight; stem.conv1.norm.* -> bn1.*;
    res{s}.{i}.conv{k}.weight -> layer{s-1}.{i}.conv{k}.weight; conv{k}.norm.* -> bn{k}.*;
    res{s}.{i}.shortcut.weight -> layer{s-1}.{i}.downsample.0.weight; shortcut.norm.* -> downsample.1.*.
    FrozenBatchNorm has no num_batches_tracked; ResNetFPN loads need strict=False or the
    counters added (see load_backbone_weights).
    """
    out = OrderedDict()
    for k, v in sd.items():
        if not k.startswith(prefix):
            out[k] = v
            continue
        r = k[len(prefix):]
        r = re.sub(r"^stem\.conv1\.norm\.", "bn1.", r)
        r = re.sub(r"^stem\.conv1\.", "conv1.", r)
        m = re.match(r"^res(\d)\.(\d+)\.(.*)$", r)
        if m:
            stage, idx, rest = int(m.group(1)), m.group(2), m.group(3)
            rest = re.sub(r"^conv(\d)\.norm\.", r"bn\1.", rest)
            rest = re.sub(r"^shortcut\.norm\.", "downsample.1.", rest)
            rest = re.sub(r"^shortcut\.", "downsample.0.", rest)
            r = f"layer{stage - 1}.{idx}.{rest}"
        out[prefix + r] = v
    return out
