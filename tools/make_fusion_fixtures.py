"""Small ONNX models exercising each fusion pass, in the forms exporters produce.

    tools/.venv/bin/python tools/make_fusion_fixtures.py [--out Tests/Fixtures/fusion]

Writes <out>/<name>.onnx (static shapes, float32 inputs; the Swift tests feed seeded random inputs and compare
the optimized graph with the unoptimized one) and <out>/README.md listing what each model contains.
Models built with onnx.helper spell out a pattern variant exactly; the torch ones are exported with the
TorchScript exporter (dynamo=False) as the repository's real models are. Deterministic: seeded weights.
"""

from __future__ import annotations

import argparse
import math
import os
import warnings

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)
torch.manual_seed(0)
DESCRIPTIONS: dict[str, str] = {}


def const(name: str, value) -> onnx.TensorProto:
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return numpy_helper.from_array(arr, name)


def randn(*shape, scale=1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def save_helper(out: str, name: str, nodes, inputs, outputs, inits, opset: int, desc: str) -> None:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_fusion_fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(out, name + ".onnx"))
    DESCRIPTIONS[name] = desc


def vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def save_torch(out: str, name: str, module: torch.nn.Module, shapes: dict[str, tuple], opset: int, desc: str) -> None:
    module.eval()
    args = tuple(torch.randn(*s) for s in shapes.values())
    path = os.path.join(out, name + ".onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, path, input_names=list(shapes), output_names=["y"], opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    DESCRIPTIONS[name] = desc


# ---------------------------------------------------------------- identity

def identity_helper(out: str) -> None:
    x = vi("x", [2, 3, 4])
    nodes = [
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Dropout", ["a"], ["b"]),
        helper.make_node("Cast", ["b"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["c", "shape_same"], ["d"]),
        helper.make_node("Expand", ["d", "shape_same"], ["e"]),
        helper.make_node("Mul", ["one", "e"], ["f"]),
        helper.make_node("Add", ["f", "zeros_c"], ["g"]),
        helper.make_node("Div", ["g", "ones_full"], ["h"]),
        helper.make_node("Sub", ["h", "zero"], ["i"]),
        helper.make_node("Relu", ["i"], ["j"]),
        helper.make_node("Transpose", ["j"], ["k"], perm=[0, 1, 2]),
        # a graph output produced by a no-op: its name must survive
        helper.make_node("Identity", ["k"], ["y"]),
        # not no-ops: the constant broadcasts x to a larger shape, or is not neutral
        helper.make_node("Add", ["x", "zeros_big"], ["z1"]),
        helper.make_node("Mul", ["x", "two"], ["z2"]),
        helper.make_node("Sub", ["zero", "x"], ["z3"]),
    ]
    inits = [const("shape_same", np.array([2, 3, 4], np.int64)), const("one", np.float32(1)),
             const("zeros_c", np.zeros([4], np.float32)), const("ones_full", np.ones([2, 3, 4], np.float32)),
             const("zero", np.zeros([1], np.float32)), const("zeros_big", np.zeros([5, 1, 1, 1], np.float32)),
             const("two", np.float32(2))]
    save_helper(out, "identity_ops", nodes, [x], [vi("y", [2, 3, 4]), vi("z1", [5, 2, 3, 4]), vi("z2", [2, 3, 4]), vi("z3", [2, 3, 4])],
                inits, 17, "Identity, Dropout, Cast same type, Reshape/Expand same shape, Mul 1, Add 0 [C], Div ones, Sub 0, "
                "identity Transpose; graph output written by an Identity; Add of zeros that broadcasts (kept), Mul 2, 0 - x (kept)")


# ---------------------------------------------------------------- batchnorm

def batchnorm_helper(out: str) -> None:
    def bn(prefix: str, c: int, x: str, y: str, nodes, inits):
        inits += [const(prefix + "_s", randn(c) * 0.5 + 1), const(prefix + "_b", randn(c)),
                  const(prefix + "_m", randn(c)), const(prefix + "_v", np.abs(randn(c)) + 0.5)]
        nodes.append(helper.make_node("BatchNormalization", [x, prefix + "_s", prefix + "_b", prefix + "_m", prefix + "_v"], [y],
                                      epsilon=1e-3))

    nodes, inits = [], []
    # Conv with bias -> BN
    inits += [const("w1", randn(8, 4, 3, 3, scale=0.3)), const("b1", randn(8))]
    nodes.append(helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]))
    bn("bn1", 8, "c1", "y1", nodes, inits)
    # grouped Conv without bias -> BN
    inits += [const("w2", randn(8, 2, 3, 3, scale=0.3))]
    nodes.append(helper.make_node("Conv", ["x", "w2"], ["c2"], group=2, strides=[2, 2]))
    bn("bn2", 8, "c2", "y2", nodes, inits)
    # grouped ConvTranspose -> BN
    inits += [const("w3", randn(4, 3, 2, 2, scale=0.3)), const("b3", randn(6))]
    nodes.append(helper.make_node("ConvTranspose", ["x", "w3", "b3"], ["c3"], group=2, strides=[2, 2]))
    bn("bn3", 6, "c3", "y3", nodes, inits)
    # Gemm transB, alpha, beta, C [N] -> BN
    inits += [const("gw", randn(5, 6, scale=0.3)), const("gc", randn(5))]
    nodes.append(helper.make_node("Gemm", ["v", "gw", "gc"], ["g1"], transB=1, alpha=0.5, beta=2.0))
    bn("bn4", 5, "g1", "y4", nodes, inits)
    # Gemm without C -> BN
    inits += [const("gw2", randn(6, 5, scale=0.3))]
    nodes.append(helper.make_node("Gemm", ["v", "gw2"], ["g2"]))
    bn("bn5", 5, "g2", "y5", nodes, inits)
    # Conv output read twice: not folded
    inits += [const("w6", randn(8, 4, 1, 1, scale=0.3))]
    nodes.append(helper.make_node("Conv", ["x", "w6"], ["c6"]))
    bn("bn6", 8, "c6", "y6a", nodes, inits)
    nodes.append(helper.make_node("Relu", ["c6"], ["y6b"]))
    outs = [vi("y1", [1, 8, 6, 6]), vi("y2", [1, 8, 2, 2]), vi("y3", [1, 6, 12, 12]), vi("y4", [3, 5]), vi("y5", [3, 5]),
            vi("y6a", [1, 8, 6, 6]), vi("y6b", [1, 8, 6, 6])]
    save_helper(out, "batchnorm", nodes, [vi("x", [1, 4, 6, 6]), vi("v", [3, 6])], outs, inits, 15,
                "BatchNormalization after Conv+bias, grouped strided Conv, grouped ConvTranspose, Gemm (transB, alpha, beta, C), "
                "Gemm without C; a Conv whose output is also read elsewhere (not folded)")


def batchnorm_scale_helper(out: str) -> None:
    """Caffe-converted models: Conv → BatchNormalization → Mul(scale) → Add(bias) → Relu, and Sum residuals."""
    c = 6
    inits = [const("w", randn(c, 4, 3, 3, scale=0.3)), const("b", randn(c)), const("s", randn(c) * 0.5 + 1), const("t", randn(c)),
             const("m", randn(c)), const("v", np.abs(randn(c)) + 0.5), const("sc", randn(1, c, 1, 1) + 1), const("sb", randn(c, 1, 1)),
             const("w2", randn(c, c, 1, 1, scale=0.3))]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "t", "m", "v"], ["n"]),
             helper.make_node("Mul", ["sc", "n"], ["ms"]),
             helper.make_node("Add", ["ms", "sb"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["c2"]),
             helper.make_node("Sum", ["c2", "r"], ["sum"]),
             helper.make_node("Relu", ["sum"], ["y"])]
    save_helper(out, "batchnorm_scale", nodes, [vi("x", [1, 4, 5, 5])], [vi("y", [1, c, 5, 5])], inits, 9,
                "opset 9 Caffe-style Conv → BatchNormalization → Mul [1,C,1,1] (constant first) → Add [C,1,1] → Relu, "
                "then Conv → Sum(·, x) → Relu (residual as a two-input Sum)")


# ---------------------------------------------------------------- groupnorm

class GNBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gn1 = torch.nn.GroupNorm(4, 8, eps=1e-5)
        self.gn2 = torch.nn.GroupNorm(2, 8, affine=False, eps=1e-6)
        self.gn3 = torch.nn.GroupNorm(4, 8)
        with torch.no_grad():
            for gn in (self.gn1, self.gn3):
                gn.weight.normal_(1, 0.3)
                gn.bias.normal_(0, 0.3)

    def forward(self, x, s):
        h = F.silu(self.gn1(x))
        h = self.gn2(h) + x
        return F.silu(self.gn3(s)).mean(-1, keepdim=True) + h.mean((2, 3))[..., None]


def groupnorm_helper(out: str) -> None:
    nodes, inits = [], []
    # decomposition with a non-trivial per-group InstanceNormalization affine, operands in reversed order
    inits += [const("rs", np.array([1, 2, -1], np.int64)), const("in_s", randn(2) + 1), const("in_b", randn(2)),
              const("back", np.array([1, 6, 5, 5], np.int64)), const("gamma", randn(6, 1, 1) + 1), const("beta", randn(1, 6, 1, 1))]
    nodes += [helper.make_node("Reshape", ["x", "rs"], ["r"]),
              helper.make_node("InstanceNormalization", ["r", "in_s", "in_b"], ["n"], epsilon=1e-4),
              helper.make_node("Reshape", ["n", "back"], ["nb"]),
              helper.make_node("Mul", ["gamma", "nb"], ["m"]),
              helper.make_node("Add", ["beta", "m"], ["a"]),
              helper.make_node("Sigmoid", ["a"], ["sg"]),
              helper.make_node("Mul", ["sg", "a"], ["y1"])]
    # (plain SiLU of x, for an output list of the same shape as the ONNX-op fixtures)
    nodes += [helper.make_node("Sigmoid", ["x"], ["xs"]),
              helper.make_node("Mul", ["x", "xs"], ["y2"])]
    # decomposition whose normalized output is also a graph output: GroupNorm without SiLU fusion
    nodes += [helper.make_node("Reshape", ["x", "rs"], ["r3"]),
              helper.make_node("InstanceNormalization", ["r3", "ones2", "zeros2"], ["n3"]),
              helper.make_node("Reshape", ["n3", "back"], ["y3"]),
              helper.make_node("Sigmoid", ["y3"], ["s3"]),
              helper.make_node("Mul", ["y3", "s3"], ["y4"])]
    inits += [const("ones2", np.ones(2, np.float32)), const("zeros2", np.zeros(2, np.float32))]
    shp = [1, 6, 5, 5]
    save_helper(out, "groupnorm_helper", nodes, [vi("x", shp)], [vi("y1", shp), vi("y2", shp), vi("y3", shp), vi("y4", shp)], inits, 17,
                "GroupNorm decomposition with per-group InstanceNormalization scale/bias and reversed Mul/Add operands + SiLU; "
                "a decomposition whose output is a graph output (no SiLU fusion); a SiLU of the input")
    # ONNX GroupNormalization followed by SiLU: opset 18 (per-group scale/bias) and opset 21 (per channel)
    for opset, n in ((18, 3), (21, 6)):
        nodes = [helper.make_node("GroupNormalization", ["x", "g_s", "g_b"], ["g"], num_groups=3, epsilon=1e-5),
                 helper.make_node("Sigmoid", ["g"], ["gs"]),
                 helper.make_node("Mul", ["g", "gs"], ["y"])]
        graph = helper.make_graph(nodes, "gn", [vi("x", shp)], [vi("y", shp)],
                                  initializer=[const("g_s", randn(n) + 1), const("g_b", randn(n))])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_fusion_fixtures")
        model.ir_version = 8 if opset < 21 else 10
        if opset >= 21:
            onnx.checker.check_model(model, full_check=True)  # the checker rejects the deprecated opset-18 form
        onnx.save(model, os.path.join(out, f"groupnorm_onnx{opset}.onnx"))
        DESCRIPTIONS[f"groupnorm_onnx{opset}"] = (f"ONNX GroupNormalization at opset {opset} "
                                                  f"({'per-group' if opset < 21 else 'per-channel'} scale/bias) + SiLU")


# ---------------------------------------------------------------- layernorm

class LNBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(16)
        self.ln2 = torch.nn.LayerNorm((4, 16), eps=1e-6)
        self.ln3 = torch.nn.LayerNorm(16, elementwise_affine=False)
        with torch.no_grad():
            for ln in (self.ln1, self.ln2):
                ln.weight.normal_(1, 0.3)
                ln.bias.normal_(0, 0.3)

    def forward(self, x):
        return self.ln3(self.ln2(self.ln1(x) * 2))


def layernorm_helper(out: str) -> None:
    nodes, inits = [], []
    inits += [const("axes", np.array([-1], np.int64)), const("eps", np.float32(1e-5)), const("gamma", randn(1, 1, 8) + 1),
              const("beta", randn(8))]
    # opset 18 (axes as input), Mul(d, d), Reciprocal, reversed affine operands
    nodes += [helper.make_node("ReduceMean", ["x", "axes"], ["m"]),
              helper.make_node("Sub", ["x", "m"], ["d"]),
              helper.make_node("Mul", ["d", "d"], ["sq"]),
              helper.make_node("ReduceMean", ["sq", "axes"], ["v"]),
              helper.make_node("Add", ["eps", "v"], ["ve"]),
              helper.make_node("Sqrt", ["ve"], ["s"]),
              helper.make_node("Reciprocal", ["s"], ["rs"]),
              helper.make_node("Mul", ["rs", "d"], ["n"]),
              helper.make_node("Mul", ["gamma", "n"], ["g"]),
              helper.make_node("Add", ["beta", "g"], ["y"])]
    save_helper(out, "layernorm_helper", nodes, [vi("x", [2, 5, 8])], [vi("y", [2, 5, 8])], inits, 18,
                "LayerNorm decomposition at opset 18: ReduceMean axes input, Mul(d, d), Reciprocal·Mul, affine [1,1,C], reversed operands")


# ---------------------------------------------------------------- gelu / silu

class GeluBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 16)

    def forward(self, x, z):
        a = F.gelu(x + z)                                              # torch: Div, Erf, Add, Mul(x), Mul(0.5)
        b = (x - z) * 0.5 * (1.0 + torch.erf((x - z) / math.sqrt(2.0)))  # BERT style: Mul(x, 0.5) first
        c = F.gelu(self.fc(x))                                         # Linear + GELU: fused into FusedMatMul
        return a + b + c


def gelu_helper(out: str) -> None:
    nodes = [helper.make_node("Mul", ["c", "x"], ["u"]),       # x · (1/√2), constant first
             helper.make_node("Erf", ["u"], ["e"]),
             helper.make_node("Add", ["one", "e"], ["a"]),
             helper.make_node("Mul", ["a", "half"], ["h"]),    # ((1 + erf) · 0.5) · x
             helper.make_node("Mul", ["x", "h"], ["y"])]
    inits = [const("c", np.float32(1 / math.sqrt(2))), const("one", np.float32(1)), const("half", np.float32(0.5))]
    save_helper(out, "gelu_helper", nodes, [vi("x", [3, 7])], [vi("y", [3, 7])], inits, 17,
                "GELU with Mul by 1/√2 (constant first) and ((1 + erf) · 0.5) · x")


class SiluBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(12, 12)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x, z, img):
        return F.silu(x * z) + F.silu(self.fc(x)), F.silu(self.conv(img))


# ---------------------------------------------------------------- linear epilogues

class EpilogueBlock(torch.nn.Module):
    """A BN-free residual block, a depthwise conv, a 1-D conv, Linear layers on 2-D (Gemm) and 3-D (MatMul+Add)."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c1d = torch.nn.Conv1d(8, 4, 3)
        self.fc1 = torch.nn.Linear(20, 32)
        self.fc2 = torch.nn.Linear(32, 20)
        self.fc3 = torch.nn.Linear(20, 20)

    def forward(self, x, t, s):
        h = F.relu(self.c1(x))
        h = F.relu(self.c2(h) + x)                   # residual before the activation (ResNet)
        h = torch.sigmoid(self.dw(h)) + h            # depthwise + sigmoid; residual after the activation
        q = F.relu(self.c1d(h.flatten(2)))           # 1-D conv + relu
        u = F.relu(self.fc1(t))                      # Gemm + relu
        u = self.fc2(u) + t                          # Gemm + residual
        v = self.fc3(s) + s                          # MatMul + bias + residual (3-D input)
        return h.sum() + q.sum() + u.sum() + v.sum()


def epilogue_helper(out: str) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),     # no bias input: bias from the Add
             helper.make_node("Add", ["c", "cb"], ["cba"]),
             helper.make_node("Relu", ["cba"], ["cr"]),
             helper.make_node("Add", ["x2", "cr"], ["y1"]),                      # residual after relu, residual first operand
             helper.make_node("Gemm", ["a", "gw", "gc"], ["g"], alpha=0.7, beta=1.5),   # transB = 0
             helper.make_node("Add", ["g", "a2"], ["gr"]),
             helper.make_node("Relu", ["gr"], ["y2"]),
             helper.make_node("MatMul", ["s", "mw"], ["mm"]),
             helper.make_node("Add", ["mb", "mm"], ["mmb"]),
             helper.make_node("Sigmoid", ["mmb"], ["y3"])]
    inits = [const("w", randn(6, 6, 3, 3, scale=0.2)), const("cb", randn(1, 6, 1, 1)), const("gw", randn(10, 10, scale=0.3)),
             const("gc", randn(1, 10)), const("mw", randn(10, 7, scale=0.3)), const("mb", randn(7))]
    save_helper(out, "epilogue_helper", nodes, [vi("x", [2, 6, 5, 5]), vi("x2", [2, 6, 5, 5]), vi("a", [3, 10]), vi("a2", [3, 10]),
                                               vi("s", [2, 3, 10])],
                [vi("y1", [2, 6, 5, 5]), vi("y2", [3, 10]), vi("y3", [2, 3, 7])], inits, 17,
                "Conv without bias + Add [1,C,1,1] + Relu + residual (first operand); Gemm transB=0 alpha/beta C[1,N] + residual + Relu; "
                "3-D MatMul + bias (first operand) + Sigmoid")


# ---------------------------------------------------------------- attention

class SDPABlock(torch.nn.Module):
    """diffusers AttnProcessor2_0: [B,L,H·D] → [B,H,L,D], F.scaled_dot_product_attention, back to [B,L,H·D]."""

    def __init__(self, dim=24, ctx_dim=16, heads=3):
        super().__init__()
        self.heads = heads
        self.q = torch.nn.Linear(dim, dim, bias=False)
        self.k = torch.nn.Linear(ctx_dim, dim, bias=False)
        self.v = torch.nn.Linear(ctx_dim, dim, bias=False)
        self.o = torch.nn.Linear(dim, dim)

    def attend(self, x, ctx):
        b, lq, _ = x.shape
        q, k, v = self.q(x), self.k(ctx), self.v(ctx)
        split = lambda t: t.view(b, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2)  # noqa: E731
        o = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.o(o.transpose(1, 2).reshape(b, lq, -1)) + x

    def forward(self, x, ctx):
        return self.attend(self.attend(x, ctx), ctx)


class ClassicBlock(torch.nn.Module):
    """Hand-written attention: (Q·Kᵀ)·scale → softmax → ·V with 4-D heads; self-attention, Lk > 256 (several key tiles)."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(dim, 3 * dim, bias=False)

    def forward(self, x):
        b, l, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q.reshape(b, l, self.heads, c // self.heads).permute(0, 2, 1, 3)
        k = k.reshape(b, l, self.heads, c // self.heads).permute(0, 2, 1, 3)
        v = v.reshape(b, l, self.heads, c // self.heads).permute(0, 2, 1, 3)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        o = att.softmax(dim=-1) @ v
        return o.permute(0, 2, 1, 3).reshape(b, l, c)


class BmmBlock(torch.nn.Module):
    """Older diffusers AttnProcessor: heads folded into the batch ([B·H, L, D]), baddbmm scores, bmm."""

    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = torch.nn.Linear(dim, dim, bias=False)
        self.k = torch.nn.Linear(dim, dim, bias=False)
        self.v = torch.nn.Linear(dim, dim, bias=False)

    def head_to_batch(self, t):
        b, l, c = t.shape
        return t.reshape(b, l, self.heads, c // self.heads).permute(0, 2, 1, 3).reshape(b * self.heads, l, c // self.heads)

    def batch_to_head(self, t):
        bh, l, d = t.shape
        return t.reshape(bh // self.heads, self.heads, l, d).permute(0, 2, 1, 3).reshape(bh // self.heads, l, d * self.heads)

    def forward(self, x, ctx):
        q, k, v = self.head_to_batch(self.q(x)), self.head_to_batch(self.k(ctx)), self.head_to_batch(self.v(ctx))
        empty = torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype)
        scores = torch.baddbmm(empty, q, k.transpose(-1, -2), beta=0, alpha=self.scale)
        return self.batch_to_head(torch.bmm(scores.softmax(dim=-1), v))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/fusion")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)

    identity_helper(out)
    batchnorm_helper(out)
    save_torch(out, "groupnorm_torch", GNBlock(), {"x": (2, 8, 6, 6), "s": (1, 8, 10)}, 17,
               "torch nn.GroupNorm (affine, + SiLU; affine=False; on a 3-D input) exported at opset 17")
    groupnorm_helper(out)
    save_torch(out, "layernorm_torch", LNBlock(), {"x": (2, 4, 16)}, 16,
               "torch nn.LayerNorm over the last dim, over the last two dims, without affine, exported at opset 16 (decomposed)")
    layernorm_helper(out)
    save_torch(out, "gelu_torch", GeluBlock(), {"x": (4, 16), "z": (4, 16)}, 17,
               "torch F.gelu, BERT-style x·0.5·(1+erf(x/√2)), Linear + GELU")
    gelu_helper(out)
    save_torch(out, "silu_torch", SiluBlock(), {"x": (5, 12), "z": (5, 12), "img": (1, 3, 6, 6)}, 17,
               "torch F.silu standalone, after Linear (Gemm) and after Conv2d")
    save_torch(out, "epilogue_torch", EpilogueBlock(), {"x": (1, 8, 6, 6), "t": (3, 20), "s": (2, 5, 20)}, 17,
               "BN-free residual block (relu(conv + x)), depthwise conv + sigmoid + residual, Conv1d + relu, Gemm + relu, "
               "Gemm + residual, 3-D Linear (MatMul + Add) + residual")
    epilogue_helper(out)
    save_torch(out, "attention_sdpa_torch", SDPABlock(), {"x": (2, 40, 24), "ctx": (2, 13, 16)}, 17,
               "diffusers-style F.scaled_dot_product_attention (scale split over Q and K), cross-attention Lq 40, Lk 13, "
               "3 heads, twice")
    save_torch(out, "attention_classic_torch", ClassicBlock(), {"x": (1, 300, 16)}, 17,
               "hand-written softmax(Q·Kᵀ/√d)·V, 4-D heads, Kᵀ by transpose(-2,-1), self-attention L 300")
    save_torch(out, "attention_bmm_torch", BmmBlock(), {"x": (2, 20, 16), "ctx": (2, 9, 16)}, 17,
               "heads folded into the batch ([B·H, L, D]) with baddbmm(alpha=scale) and bmm, as older diffusers")

    batchnorm_scale_helper(out)  # last: its seeded weights must not shift the other fixtures

    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# Fusion pass fixtures\n\nGenerated by `tools/make_fusion_fixtures.py`; used by "
                "`Tests/PSEdgeTests/FusionPassTests.swift`.\n\n")
        for name in sorted(DESCRIPTIONS):
            f.write(f"- `{name}.onnx`: {DESCRIPTIONS[name]}\n")


if __name__ == "__main__":
    main()
