#!/usr/bin/env python3
"""Make (or check) one ADM conformance case by running the reference implementation.

The expected values come from openai/guided-diffusion itself (its script_util, unet,
gaussian_diffusion and respace modules), run on CPU in float32 with random, perturbed weights.
Nothing of this project's own code is used. See tests/tools/README.md.

Make a case:
    python3 make_conformance_case.py --guided-diffusion PATH --config CASE.json --out DIR [--seed N]
  CASE.json holds the flags of the case (the fields of a case's config.json; "KEYS" is ignored
  and rewritten). DIR receives config.json, unet.safetensors, classifier.safetensors,
  classifier.pt and io.safetensors.

Check an existing case against the reference (its own weights and inputs, its recorded DDPM
noise replayed):
    python3 make_conformance_case.py --guided-diffusion PATH --check DIR
"""

import argparse
import collections
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

KEYS = collections.OrderedDict(
    [
        ("x", "U-Net and classifier input x_t, shape [B,3,S,S]"),
        ("t", "timesteps for the forward checks (original 0..diffusion_steps-1 scale)"),
        ("y", "class labels"),
        ("unet_out", "U-Net output for (x, t, y if class_cond)"),
        ("classifier_logits", "classifier logits for (x, t)"),
        ("classifier_grad_log_p_y", "d/dx of sum_b log_softmax(classifier(x,t))[b, y_b]"),
        ("x_T", "starting noise for sampling"),
        (
            "ddim_guided",
            "DDIM (eta=0, clip_denoised) from x_T with classifier guidance (condition_score, scale "
            "classifier_scale) toward y",
        ),
        ("ddim_guided_trajectory", "the sample after each DDIM step, first step first"),
        ("ddim_plain", "DDIM (eta=0, clip_denoised) from x_T with no guidance"),
        ("timestep_map", "the respaced timesteps, ascending"),
        (
            "ddpm_noise",
            "the noise drawn by each DDPM step, first step first (the last step draws one but adds none)",
        ),
        (
            "ddpm_guided",
            "DDPM ancestral sampling (p_sample, clip_denoised) from x_T with classifier guidance "
            "(condition_mean, scale classifier_scale) toward y, using ddpm_noise",
        ),
    ]
)

# Order of the tensors inside io.safetensors (as in the first case, adm-small).
IO_ORDER = [
    "x", "t", "y", "unet_out", "classifier_logits", "classifier_grad_log_p_y", "x_T",
    "ddim_guided", "ddim_guided_trajectory", "ddim_plain", "ddpm_noise", "ddpm_guided",
    "timestep_map",
]

# Flags of a case, in the order config.json lists them; value None = required.
# The U-Net defaults are those of guided_diffusion.script_util.model_and_diffusion_defaults().
FIELDS = collections.OrderedDict(
    [
        ("batch", None),
        ("image_size", None),
        ("num_channels", None),
        ("num_res_blocks", None),
        ("channel_mult", None),
        ("attention_resolutions", None),
        ("num_heads", 4),
        ("num_head_channels", -1),
        ("num_heads_upsample", -1),
        ("dropout", 0.0),
        ("use_scale_shift_norm", True),
        ("resblock_updown", False),
        ("use_new_attention_order", False),
        ("learn_sigma", None),
        ("class_cond", None),
        ("num_classes", None),
        ("classifier_width", None),
        ("classifier_depth", None),
        ("classifier_channel_mult", None),
        ("classifier_attention_resolutions", None),
        ("classifier_num_head_channels", None),
        ("classifier_use_scale_shift_norm", None),
        ("classifier_resblock_updown", None),
        ("classifier_pool", None),
        ("diffusion_steps", None),
        ("noise_schedule", None),
        ("timestep_respacing", None),
        ("classifier_scale", None),
    ]
)
# Written to config.json only when the input config names them (adm-small has neither).
OPTIONAL_OUT = {"num_heads_upsample", "dropout"}


# ---------------------------------------------------------------- safetensors (no dependency)

_ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.float64): "F64",
              np.dtype(np.int32): "I32"}
_ST_NP = {v: k for k, v in _ST_DTYPES.items()}


def write_safetensors(path, tensors):
    """tensors: ordered mapping name -> torch.Tensor or numpy array (kept in that order)."""
    header = collections.OrderedDict()
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous().numpy()
        arr = np.ascontiguousarray(value)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        data = arr.tobytes(order="C")
        header[name] = {"dtype": _ST_DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = collections.OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + begin : 8 + n + end], dtype=_ST_NP[info["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


# ---------------------------------------------------------------- reference objects


def parse_mult(text):
    return tuple(float(v) if "." in v else int(v) for v in str(text).split(","))


def load_config(path):
    with open(path) as f:
        raw = json.load(f)
    cfg = collections.OrderedDict()
    for key, default in FIELDS.items():
        if key in raw:
            cfg[key] = raw[key]
        elif default is None:
            raise SystemExit(f"{path}: missing field '{key}'")
        else:
            cfg[key] = default
    unknown = set(raw) - set(FIELDS) - {"KEYS", "forward_timesteps"}
    if unknown:
        raise SystemExit(f"{path}: unknown fields {sorted(unknown)}")
    return cfg, raw


def build(cfg, gd_path):
    """Builds U-Net, classifier and diffusion the way guided_diffusion's scripts do."""
    sys.path.insert(0, os.path.abspath(gd_path))
    from guided_diffusion import script_util
    from guided_diffusion.unet import EncoderUNetModel

    # create_model takes the number of label embeddings from this module constant (1000 there).
    script_util.NUM_CLASSES = int(cfg["num_classes"])
    model = script_util.create_model(
        cfg["image_size"],
        cfg["num_channels"],
        cfg["num_res_blocks"],
        channel_mult=cfg["channel_mult"],
        learn_sigma=cfg["learn_sigma"],
        class_cond=cfg["class_cond"],
        use_checkpoint=False,
        attention_resolutions=cfg["attention_resolutions"],
        num_heads=cfg["num_heads"],
        num_head_channels=cfg["num_head_channels"],
        num_heads_upsample=cfg["num_heads_upsample"],
        use_scale_shift_norm=cfg["use_scale_shift_norm"],
        dropout=cfg["dropout"],
        resblock_updown=cfg["resblock_updown"],
        use_fp16=False,
        use_new_attention_order=cfg["use_new_attention_order"],
    )

    # script_util.create_classifier with three values taken from the case instead of being fixed
    # (channel_mult from image_size, num_head_channels=64, out_channels=1000); the rest as there.
    size = cfg["image_size"]
    attention_ds = [size // int(res) for res in str(cfg["classifier_attention_resolutions"]).split(",")]
    classifier = EncoderUNetModel(
        image_size=size,
        in_channels=3,
        model_channels=cfg["classifier_width"],
        out_channels=int(cfg["num_classes"]),
        num_res_blocks=cfg["classifier_depth"],
        attention_resolutions=tuple(attention_ds),
        channel_mult=parse_mult(cfg["classifier_channel_mult"]),
        use_fp16=False,
        num_head_channels=cfg["classifier_num_head_channels"],
        use_scale_shift_norm=cfg["classifier_use_scale_shift_norm"],
        resblock_updown=cfg["classifier_resblock_updown"],
        pool=cfg["classifier_pool"],
    )

    diffusion = script_util.create_gaussian_diffusion(
        steps=cfg["diffusion_steps"],
        learn_sigma=cfg["learn_sigma"],
        noise_schedule=cfg["noise_schedule"],
        timestep_respacing=cfg["timestep_respacing"],
    )
    model.eval()
    classifier.eval()
    return model, classifier, diffusion


def perturb(module):
    """Every parameter random and nonzero: weights (>= 2-D) N(0, 1/fan_in), 1-D norm weights
    1 + N(0, 0.1), 1-D biases N(0, 0.1). Zero-initialised convs (out_layers.3, proj_out, out.2)
    get real values too."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))


class NoiseTape:
    """Replaces torch.randn_like (which gaussian_diffusion calls as th.randn_like) to record the
    noise each p_sample step draws, or to replay recorded noise."""

    def __init__(self, replay=None):
        self.replay = replay
        self.drawn = []
        self._orig = None

    def __enter__(self):
        self._orig = torch.randn_like
        orig = self._orig

        def randn_like(x, *args, **kwargs):
            if self.replay is not None:
                n = self.replay[len(self.drawn)].to(dtype=x.dtype).clone()
                assert n.shape == x.shape, (n.shape, x.shape)
            else:
                n = orig(x, *args, **kwargs)
            self.drawn.append(n.clone())
            return n

        torch.randn_like = randn_like
        return self

    def __exit__(self, *exc):
        torch.randn_like = self._orig
        return False


def compute(cfg, model, classifier, diffusion, x, t, y, x_T, ddpm_noise=None):
    """Everything of io.safetensors, computed as scripts/classifier_sample.py does."""
    scale = float(cfg["classifier_scale"])
    class_cond = bool(cfg["class_cond"])

    def grad_log_p(x_, t_, y_):
        with torch.enable_grad():
            x_in = x_.detach().requires_grad_(True)
            logits = classifier(x_in, t_)
            log_probs = F.log_softmax(logits, dim=-1)
            selected = log_probs[range(len(logits)), y_.view(-1)]
            return torch.autograd.grad(selected.sum(), x_in)[0]

    # classifier_sample.py: cond_fn / model_fn (timesteps reach both through SpacedDiffusion's
    # _WrappedModel, i.e. already mapped to the original scale).
    def cond_fn(x_, t_, y=None):
        assert y is not None
        return grad_log_p(x_, t_, y) * scale

    def model_fn(x_, t_, y=None):
        assert y is not None
        return model(x_, t_, y if class_cond else None)

    out = collections.OrderedDict()
    out["x"], out["t"], out["y"] = x, t, y
    with torch.no_grad():
        out["unet_out"] = model(x, t, y if class_cond else None)
        out["classifier_logits"] = classifier(x, t)
    out["classifier_grad_log_p_y"] = grad_log_p(x, t, y)
    out["x_T"] = x_T

    shape = tuple(x_T.shape)
    kwargs = {"y": y}
    traj = [
        s["sample"]
        for s in diffusion.ddim_sample_loop_progressive(
            model_fn, shape, noise=x_T.clone(), clip_denoised=True, cond_fn=cond_fn,
            model_kwargs=kwargs, device="cpu", eta=0.0)
    ]
    out["ddim_guided"] = traj[-1]
    out["ddim_guided_trajectory"] = torch.stack(traj)
    plain = None
    for s in diffusion.ddim_sample_loop_progressive(
            model_fn, shape, noise=x_T.clone(), clip_denoised=True, cond_fn=None,
            model_kwargs=kwargs, device="cpu", eta=0.0):
        plain = s["sample"]
    out["ddim_plain"] = plain

    with NoiseTape(replay=ddpm_noise) as tape:
        final = None
        for s in diffusion.p_sample_loop_progressive(
                model_fn, shape, noise=x_T.clone(), clip_denoised=True, cond_fn=cond_fn,
                model_kwargs=kwargs, device="cpu"):
            final = s["sample"]
    assert len(tape.drawn) == diffusion.num_timesteps
    out["ddpm_noise"] = torch.stack(tape.drawn)
    out["ddpm_guided"] = final
    out["timestep_map"] = torch.tensor(diffusion.timestep_map, dtype=torch.int64)
    return out


def to_config_json(cfg, raw, forward_timesteps):
    res = collections.OrderedDict()
    for key in FIELDS:
        if key in OPTIONAL_OUT and key not in raw:
            continue
        res[key] = cfg[key]
    res["forward_timesteps"] = [int(v) for v in forward_timesteps]
    res["KEYS"] = KEYS
    return res


def rel_err(a, b):
    a = a.double()
    b = b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30)), float((a - b).abs().max())


def load_case_networks(case, gd_path):
    """A case's config, its guided-diffusion U-Net and classifier with the case's weights, and its
    io.safetensors (for the solver scripts, which add runs to an existing case)."""
    cfg, _ = load_config(os.path.join(case, "config.json"))
    model, classifier, _ = build(cfg, gd_path)
    model.load_state_dict(read_safetensors(os.path.join(case, "unet.safetensors")), strict=True)
    classifier.load_state_dict(read_safetensors(os.path.join(case, "classifier.safetensors")), strict=True)
    return cfg, model, classifier, read_safetensors(os.path.join(case, "io.safetensors"))


def save_or_check_runs(case, stem, tensors, runs, reference, check):
    """A solver's reference runs (make_dpm_solver_case.py, make_unipc_case.py): written to
    CASE/STEM.safetensors and CASE/STEM.json ({"reference": ..., "runs": ...}), or, with `check`,
    compared with the files there."""
    st_path = os.path.join(case, stem + ".safetensors")
    if check:
        ref = read_safetensors(st_path)
        worst = 0.0
        for k, v in tensors.items():
            rel, mx = rel_err(v, ref[k])
            worst = max(worst, rel)
            print(f"  {k:36s} max abs {mx:.3g}  rel {rel:.3g}")
        print(f"  worst relative error {worst:.3g}")
        return
    write_safetensors(st_path, tensors)
    with open(os.path.join(case, stem + ".json"), "w") as f:
        json.dump(collections.OrderedDict([("reference", reference), ("runs", runs)]), f, indent=2)
        f.write("\n")
    print(f"{case}: {len(runs)} runs written")


def make(args):
    cfg, raw = load_config(args.config)
    torch.manual_seed(args.seed)
    model, classifier, diffusion = build(cfg, args.guided_diffusion)
    perturb(model)
    perturb(classifier)

    b, s = int(cfg["batch"]), int(cfg["image_size"])
    gen = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(b, 3, s, s, generator=gen)
    y = torch.randint(0, int(cfg["num_classes"]), (b,), generator=gen)
    x_T = torch.randn(b, 3, s, s, generator=gen)
    if "forward_timesteps" in raw:
        ft = [int(v) for v in raw["forward_timesteps"]]
    else:
        ft = torch.randint(0, int(cfg["diffusion_steps"]), (b,), generator=gen).tolist()
    assert len(ft) == b, "forward_timesteps needs one timestep per batch element"
    t = torch.tensor(ft, dtype=torch.int64)

    torch.manual_seed(args.seed + 2)  # the DDPM noise
    io = compute(cfg, model, classifier, diffusion, x, t, y, x_T)

    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "unet.safetensors"), model.state_dict())
    write_safetensors(os.path.join(args.out, "classifier.safetensors"), classifier.state_dict())
    torch.save(classifier.state_dict(), os.path.join(args.out, "classifier.pt"))
    write_safetensors(os.path.join(args.out, "io.safetensors"),
                      collections.OrderedDict((k, io[k]) for k in IO_ORDER))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(to_config_json(cfg, raw, ft), f, indent=2)
        f.write("\n")

    # Self-check: the written files, read back, give the same results.
    check_dir(args.out, args.guided_diffusion, quiet=True)
    for k in IO_ORDER:
        v = io[k]
        if v.is_floating_point():
            print(f"  {k:24s} {tuple(v.shape)} absmax {float(v.abs().max()):.4g} std {float(v.std()):.4g}")
        else:
            print(f"  {k:24s} {tuple(v.shape)} {v.tolist()}")
    g, p = io["ddim_guided"], io["ddim_plain"]
    print(f"  guided vs plain DDIM: rel diff {rel_err(g, p)[0]:.3g}")
    for name in sorted(os.listdir(args.out)):
        print(f"  {name:24s} {os.path.getsize(os.path.join(args.out, name))} bytes")


def use_float64(model, classifier):
    """Analysis only (--double): run the reference networks in float64 to see how well conditioned
    a case is, i.e. how far an exact float32 computation may drift from the stored values."""
    from guided_diffusion import nn as gd_nn
    from guided_diffusion import unet as gd_unet

    def timestep_embedding64(timesteps, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
        args = timesteps[:, None].double() * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return emb

    gd_unet.timestep_embedding = timestep_embedding64
    gd_nn.GroupNorm32.forward = torch.nn.GroupNorm.forward  # it casts to float32 otherwise
    for m in (model, classifier):
        m.double()
        m.dtype = torch.float64  # forward() casts its input to self.dtype


def check_dir(case, gd_path, quiet=False, double=False):
    """Recompute a case with its own weights and inputs; print max abs / relative errors."""
    cfg, raw = load_config(os.path.join(case, "config.json"))
    model, classifier, diffusion = build(cfg, gd_path)
    model.load_state_dict(read_safetensors(os.path.join(case, "unet.safetensors")), strict=True)
    classifier.load_state_dict(read_safetensors(os.path.join(case, "classifier.safetensors")), strict=True)
    if double:
        use_float64(model, classifier)
    pt = torch.load(os.path.join(case, "classifier.pt"), map_location="cpu")
    cl = classifier.state_dict()
    assert list(pt) == list(cl) and all(torch.equal(pt[k], cl[k]) for k in pt), "classifier.pt differs"
    ref = read_safetensors(os.path.join(case, "io.safetensors"))
    assert set(ref) == set(IO_ORDER), sorted(set(ref) ^ set(IO_ORDER))
    inputs = [ref["x"], ref["t"], ref["y"], ref["x_T"], ref["ddpm_noise"]]
    if double:
        inputs = [v.double() if v.is_floating_point() else v for v in inputs]
    got = compute(cfg, model, classifier, diffusion, *inputs[:4], ddpm_noise=inputs[4])
    if double:
        got = {k: (v.float() if v.is_floating_point() else v) for k, v in got.items()}
    worst = 0.0
    for k in IO_ORDER:
        a, b = got[k], ref[k]
        assert a.shape == b.shape and a.dtype == b.dtype, (k, a.shape, b.shape, a.dtype, b.dtype)
        a = a.float() if a.is_floating_point() else a
        if a.is_floating_point():
            rel, mx = rel_err(a, b)
            worst = max(worst, rel)
            if not quiet:
                print(f"  {k:24s} max abs {mx:.3g}  rel {rel:.3g}")
        else:
            assert torch.equal(a, b), (k, a, b)
            if not quiet:
                print(f"  {k:24s} equal {b.tolist() if b.numel() <= 16 else ''}")
    if not quiet:
        print(f"  worst relative error {worst:.3g}")
    if worst > 1e-3 and not double:
        raise SystemExit(f"{case}: reference mismatch, relative error {worst:.3g}")
    return worst


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--guided-diffusion", required=True, help="checkout of openai/guided-diffusion")
    p.add_argument("--config", help="flags of the case to make (JSON)")
    p.add_argument("--out", help="folder to write the case to")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--check", metavar="DIR", help="recompute an existing case and compare")
    p.add_argument("--double", action="store_true",
                   help="with --check: recompute in float64 (how well conditioned the case is)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    if args.check:
        check_dir(args.check, args.guided_diffusion, double=args.double)
    else:
        if not (args.config and args.out):
            p.error("--config and --out are required unless --check is given")
        make(args)


if __name__ == "__main__":
    main()
