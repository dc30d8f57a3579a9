#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth/.pt/.ckpt) to safetensors without running pickled code.

    tools/.venv/bin/python tools/pth_to_safetensors.py IN.pth OUT.safetensors [--key model]

* Loads with torch.load(..., weights_only=True): only tensors, containers and plain
  values are unpickled; a file that needs any other class (custom objects, __reduce__
  tricks) is refused with exit code 2 and nothing is written.
* Takes the `model` sub-dict if present (DiffPS/SEAS `Trainer.save_ckpt`, DiffusionDet),
  else `state_dict` (mmdetection / psvis), else the top-level dict. `--key` names the
  sub-dict explicitly (dotted paths like `ema.model` work); `--key ''` uses the top level.
* Tensors are written contiguous; entries that share storage with an identical view are
  written once and the aliases recorded in the metadata (`aliases`: JSON {alias: kept});
  overlapping but different views are copied. Non-tensor entries are skipped and listed.
* Prints a summary (tensor count, parameters, bytes, dtypes, top-level prefixes).
Exit codes: 0 ok, 1 bad usage / I/O, 2 refused or not a state dict.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import sys

import torch


class ConversionError(Exception):
    pass


def load_checkpoint(path: str):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e).strip().splitlines()
        detail = next((ln for ln in msg if "GLOBAL" in ln or "Unsupported" in ln), msg[0] if msg else "")
        detail = detail.split(" Please use")[0].split(" was not an allowed global")[0]
        raise ConversionError(
            f"refusing {path}: it needs code beyond tensors and plain containers to unpickle "
            f"(weights_only=True rejected it: {detail.strip()}). Only convert checkpoints from a source "
            "you trust, and re-save them as a plain state dict first.") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise ConversionError(f"cannot read {path} as a PyTorch checkpoint: {e}") from None


def select_state_dict(obj, key: str | None):
    if key is not None:
        if key == "":
            sd = obj
        else:
            sd = obj
            for part in key.split("."):
                if not isinstance(sd, dict) or part not in sd:
                    have = sorted(sd.keys()) if isinstance(sd, dict) else type(sd).__name__
                    raise ConversionError(f"--key {key!r}: no entry {part!r} (available: {have})")
                sd = sd[part]
        chosen = key or "<top level>"
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        sd, chosen = obj["model"], "model"
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd, chosen = obj["state_dict"], "state_dict"
    else:
        sd, chosen = obj, "<top level>"
    if not isinstance(sd, dict):
        raise ConversionError(f"{chosen} is a {type(sd).__name__}, not a dict of tensors")
    return sd, chosen


def prepare_tensors(sd: dict):
    """-> (tensors to write, aliases {alias: kept}, skipped [(name, type)])."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    seen: dict[tuple, str] = {}
    for name, value in sd.items():
        if not isinstance(name, str):
            skipped.append((repr(name), "non-string key"))
            continue
        if not isinstance(value, torch.Tensor):
            skipped.append((name, type(value).__name__))
            continue
        t = value.detach()
        if t.is_sparse or t.layout != torch.strided:
            raise ConversionError(f"{name}: {t.layout} tensors are not supported")
        if t.numel() > 0:
            storage = t.untyped_storage()
            view_key = (storage.data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
            if view_key in seen:
                aliases[name] = seen[view_key]
                continue
            seen[view_key] = name
        # a fresh contiguous copy never shares memory with anything else
        tensors[name] = t.contiguous().clone() if t.numel() else t.contiguous()
    return tensors, aliases, skipped


def summarize(tensors: dict[str, torch.Tensor], aliases, skipped, chosen: str) -> str:
    n_params = sum(t.numel() for t in tensors.values())
    n_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    dtypes = collections.Counter(str(t.dtype).replace("torch.", "") for t in tensors.values())
    prefixes = collections.Counter()
    params_by_prefix = collections.Counter()
    for k, t in tensors.items():
        p = k.split(".", 1)[0]
        prefixes[p] += 1
        params_by_prefix[p] += t.numel()
    lines = [
        f"source dict   : {chosen}",
        f"tensors       : {len(tensors)}" + (f" (+{len(aliases)} aliases)" if aliases else ""),
        f"elements      : {n_params:,}",
        f"bytes         : {n_bytes:,} ({n_bytes / 2**20:.1f} MiB)",
        "dtypes        : " + ", ".join(f"{d} x{c}" for d, c in sorted(dtypes.items())),
        "prefixes      :",
    ]
    lines += [f"  {p:<40} {prefixes[p]:>5} tensors {params_by_prefix[p]:>14,} elements" for p in prefixes]
    if aliases:
        lines.append("aliases       : " + ", ".join(f"{a} -> {k}" for a, k in aliases.items()))
    if skipped:
        lines.append("skipped       : " + ", ".join(f"{n} ({t})" for n, t in skipped))
    return "\n".join(lines)


def convert(src: str, dst: str, key: str | None = None, quiet: bool = False) -> dict:
    from safetensors.torch import save_file

    if not os.path.isfile(src):
        raise FileNotFoundError(src)
    obj = load_checkpoint(src)
    sd, chosen = select_state_dict(obj, key)
    tensors, aliases, skipped = prepare_tensors(sd)
    if not tensors:
        raise ConversionError(f"{chosen} holds no tensors")
    meta = {"format": "pt", "source": os.path.basename(src), "source_dict": chosen}
    if aliases:
        meta["aliases"] = json.dumps(aliases, sort_keys=True)
    tmp = dst + ".tmp"
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, dst)
    if not quiet:
        print(summarize(tensors, aliases, skipped, chosen))
        print(f"wrote {dst}")
    return {"tensors": tensors, "aliases": aliases, "skipped": skipped, "source_dict": chosen}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="input .pth / .pt / .ckpt")
    ap.add_argument("dst", help="output .safetensors")
    ap.add_argument("--key", default=None,
                    help="sub-dict to convert (default: 'model', else 'state_dict', else top level; '' = top level)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        convert(args.src, args.dst, args.key, args.quiet)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
