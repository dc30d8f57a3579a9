"""Export a tiny Stable-Diffusion-2.1-base-shaped UNet to ONNX (developer tool, needs torch).

Builds diffusers.UNet2DConditionModel with the SD-2.1-base block layout
(CrossAttnDownBlock2D x3 + DownBlock2D / UpBlock2D + CrossAttnUpBlock2D x3,
layers_per_block=2, linear projections, 77-token cross-attention) at a small
width, seeded random init (torch.manual_seed(0)), and writes

    <out>/model.onnx             TorchScript exporter, opset 17 (GroupNorm ->
                                 Reshape/InstanceNormalization/Reshape/Mul/Add),
                                 about 1.7 M float32 params
    <out>/weights.safetensors    the same weights (diffusers state_dict names)
    <out>/config.json            the diffusers config
    <out>/inputs/sample.npy               [1,4,32,32] float32, N(0,1)
    <out>/inputs/timestep.npy             [1] float32
    <out>/inputs/encoder_hidden_states.npy [1,77,64] float32, N(0,1)
    <out>/outputs/out_sample.npy          ONNX Runtime (CPU) output of model.onnx

Run:  tools/.venv/bin/pip install -r tools/requirements-export.txt
      tools/.venv/bin/python tools/export_unet.py --out Tests/Fixtures/models/unet_sd21_mini
"""

from __future__ import annotations

import argparse
import collections
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

CONFIG = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    # (32, 64, 64, 64) would be 3.3 M params = 13 MB; this keeps the file < 8 MB.
    block_out_channels=(32, 32, 32, 64),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    # 16 groups -> 2 or 4 channels per group, so the grouping is really exercised.
    norm_num_groups=16,
    norm_eps=1e-5,
    cross_attention_dim=64,
    # As in SD 2.x, diffusers reads attention_head_dim as the number of heads:
    # 8 heads of dim 4 (32 channels) or 8 (64 channels, mid block).
    attention_head_dim=8,
    use_linear_projection=True,
    upcast_attention=False,
)
SEQ_LEN = 77


class Wrapper(torch.nn.Module):
    """Positional-argument, tensor-output view of the UNet for torch.onnx.export."""

    def __init__(self, unet: UNet2DConditionModel):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


def make_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "sample": rng.standard_normal((1, 4, 32, 32), dtype=np.float32),
        "timestep": np.array([rng.integers(0, 1000)], dtype=np.float32),
        "encoder_hidden_states": rng.standard_normal((1, SEQ_LEN, CONFIG["cross_attention_dim"]), dtype=np.float32),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    # torch 2.15 still decomposes GroupNorm at opset 18 (no native GroupNormalization).
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "outputs"), exist_ok=True)

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**CONFIG).eval()
    # Default init keeps activations O(1) at this width (checked below). Norm layers
    # start as weight=1, bias=0, which would make their affine part a no-op (and the
    # exporter would dedupe them into Identity nodes): give them random values.
    with torch.no_grad():
        for module in unet.modules():
            if isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and module.weight is not None:
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)

    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, os.path.join(args.out, "weights.safetensors"))
    unet.save_config(args.out)  # config.json, as diffusers' from_pretrained expects it

    inputs = make_inputs()
    for name, arr in inputs.items():
        np.save(os.path.join(args.out, "inputs", name + ".npy"), arr)
    torch_inputs = tuple(torch.from_numpy(inputs[k]) for k in ("sample", "timestep", "encoder_hidden_states"))
    with torch.no_grad():
        ref = Wrapper(unet)(*torch_inputs).numpy()

    onnx_path = os.path.join(args.out, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapper(unet),
            torch_inputs,
            onnx_path,
            input_names=["sample", "timestep", "encoder_hidden_states"],
            output_names=["out_sample"],
            opset_version=args.opset,
            dynamo=False,
            do_constant_folding=True,
        )
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    print("output type:", inferred.graph.output[0].type.tensor_type)

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, inputs)
    np.save(os.path.join(args.out, "outputs", "out_sample.npy"), out)

    ops = collections.Counter(n.op_type for n in model.graph.node)
    print(f"opset {args.opset}, {os.path.getsize(onnx_path) / 1e6:.2f} MB, {len(model.graph.node)} nodes")
    print("ops:", ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    print(f"params: {sum(p.numel() for p in unet.parameters())}")
    print(f"out_sample: mean {out.mean():.4f} std {out.std():.4f} max|.| {np.abs(out).max():.4f}")
    print(f"max|ORT - torch| = {np.abs(out - ref).max():.3g}")


if __name__ == "__main__":
    main()
