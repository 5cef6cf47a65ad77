#!/usr/bin/env python3
"""The engine's U-Net forward against the reference implementation's, in one run.

Times `diffsketch bench` (the engine, LibTorch C++) and openai/guided-diffusion's UNetModel (the
reference, PyTorch from Python) on the same network shape, the same input shapes (batch, timestep
500, class 0), the same number of threads, in alternating rounds so that a shared machine's drift
hits both alike. The network comes from the engine: `diffsketch bench --json` writes the resolved
flags of the preset or config it built, and the reference is built from those flags the way
guided_diffusion.script_util.create_model builds it (in_channels from the flags, so the 7-channel
trunk of an editing model can be compared too).

An editing model (sketch_channels > 0) has sketch cross-attention, which the reference does not
have: its trunk (the same flags without the sketch) is compared, and the whole editing network's
time is printed beside it.

The reference runs in a child process per round, twice: with the environment as it is, and with
OPENBLAS_NUM_THREADS=1 (Debian's PyTorch calls OpenBLAS for its matrix products; its pool can spin
beside LibTorch's OpenMP threads). The faster of the two is the reference the engine is held to.

Usage (from the repository root, Debian's python3-torch importable):
  python3 tests/tools/bench_reference_forward.py --guided-diffusion GD --diffsketch build/bin/diffsketch \
      (--preset adm-64-cond | --config models/default/model.json) [--batch 1] [--iters 10] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def reference_worker(args):
    """Child process: time the reference forward; print one JSON line."""
    import torch

    sys.path.insert(0, os.path.abspath(args.guided_diffusion))
    from guided_diffusion.unet import UNetModel

    with open(args.worker) as f:
        info = json.load(f)
    flags = info["flags"]
    torch.set_num_threads(int(info["threads"]))
    size = int(flags["image_size"])
    mult = tuple(float(v) if "." in str(v) else int(v) for v in str(flags["channel_mult"]).split(","))
    mult = tuple(int(v) if float(v).is_integer() else v for v in mult)
    attention_ds = tuple(size // int(r) for r in str(flags["attention_resolutions"]).split(","))
    torch.manual_seed(0)
    model = UNetModel(
        image_size=size,
        in_channels=int(flags.get("in_channels", 3)),
        model_channels=int(flags["num_channels"]),
        out_channels=6 if flags["learn_sigma"] else 3,
        num_res_blocks=int(flags["num_res_blocks"]),
        attention_resolutions=attention_ds,
        dropout=float(flags["dropout"]),
        channel_mult=mult,
        num_classes=int(flags["num_classes"]) if flags["class_cond"] else None,
        use_checkpoint=False,
        use_fp16=False,
        num_heads=int(flags["num_heads"]),
        num_head_channels=int(flags["num_head_channels"]),
        num_heads_upsample=int(flags["num_heads_upsample"]),
        use_scale_shift_norm=bool(flags["use_scale_shift_norm"]),
        resblock_updown=bool(flags["resblock_updown"]),
        use_new_attention_order=bool(flags["use_new_attention_order"]),
    ).eval()
    params = sum(p.numel() for p in model.parameters())
    if params != int(info["parameters"]):
        raise SystemExit(f"reference has {params} parameters, the engine's network {info['parameters']}: not the same network")
    b = int(info["batch"])
    x = torch.randn(b, int(flags.get("in_channels", 3)), size, size)
    t = torch.full((b,), int(info["timestep"]), dtype=torch.int64)
    y = torch.zeros(b, dtype=torch.int64) if flags["class_cond"] else None
    ms = []
    with torch.no_grad():
        for i in range(args.warmup + args.iters):
            start = time.perf_counter()
            model(x, t, y)
            if i >= args.warmup:
                ms.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"ms": ms, "threads": torch.get_num_threads(), "torch": torch.__version__}))


def run_engine(args, source, json_path):
    cmd = [args.diffsketch, "bench", *source, "--batch", str(args.batch), "--iters", str(args.iters),
           "--warmup", str(args.warmup), "--precision", "fp32", "--json", json_path]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(json_path) as f:
        return json.load(f)


def run_reference(args, info_path, env_extra):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", info_path,
                          "--guided-diffusion", args.guided_diffusion, "--iters", str(args.iters),
                          "--warmup", str(args.warmup)], check=True, env=env, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--guided-diffusion", required=True, help="checkout of openai/guided-diffusion")
    p.add_argument("--diffsketch", help="the engine binary (build/bin/diffsketch)")
    p.add_argument("--preset")
    p.add_argument("--config", help="a model.json (an editing model's trunk is compared)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return reference_worker(args)
    if not args.diffsketch or (args.preset is None) == (args.config is None):
        p.error("give --diffsketch and exactly one of --preset or --config")

    with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp:  # the JSON files of the runs
        compare(args, tmp)


def compare(args, tmp):
    editing = None
    if args.preset:
        source = ["--preset", args.preset]
        label = args.preset
    else:
        with open(args.config) as f:
            raw = json.load(f)
        flags = dict(raw.get("flags", raw))
        label = args.config
        if int(flags.get("sketch_channels", 0)) > 0:
            editing = ["--config", args.config]
            for k in ("sketch_channels", "sketch_null", "predict_v", "diffusion_steps", "noise_schedule"):
                flags.pop(k, None)
            trunk = os.path.join(tmp, "trunk.json")
            with open(trunk, "w") as f:
                json.dump({"flags": flags}, f)
            source = ["--config", trunk]
            label += " (trunk: without the sketch cross-attention)"
        else:
            source = ["--config", args.config]

    engine_ms, ref_ms, ref1_ms, edit_ms = [], [], [], []
    info_path = os.path.join(tmp, "engine.json")
    info = None
    for r in range(args.rounds):
        info = run_engine(args, source, info_path)
        engine_ms.append(info["forward_ms_median"][0])
        ref_ms.append(statistics.median(run_reference(args, info_path, {})["ms"]))
        ref1_ms.append(statistics.median(run_reference(args, info_path, {"OPENBLAS_NUM_THREADS": "1"})["ms"]))
        if editing:
            edit_ms.append(run_engine(args, editing, os.path.join(tmp, "editing.json"))["forward_ms_median"][0])
        best = min(ref_ms[-1], ref1_ms[-1])
        print(f"round {r + 1}: engine {engine_ms[-1]:.2f} ms, reference {ref_ms[-1]:.2f} ms "
              f"(OPENBLAS_NUM_THREADS=1: {ref1_ms[-1]:.2f} ms); engine speed vs the faster reference "
              f"{best / engine_ms[-1]:.2f}x" + (f"; whole editing network {edit_ms[-1]:.2f} ms" if editing else ""),
              flush=True)

    best = [min(a, b) for a, b in zip(ref_ms, ref1_ms)]
    ratios = [b / e for b, e in zip(best, engine_ms)]
    print(f"{label}: {info['parameters'] / 1e6:.2f} M parameters, {info['gflop_per_forward']:.2f} GFLOP, batch "
          f"{args.batch}, {info['threads']} threads, CPU kernels {info['cpu_kernels']}")
    print(f"  median of {args.rounds} rounds (each the median of {args.iters}): engine "
          f"{statistics.median(engine_ms):.2f} ms, reference {statistics.median(ref_ms):.2f} ms, reference with "
          f"OPENBLAS_NUM_THREADS=1 {statistics.median(ref1_ms):.2f} ms")
    print(f"  engine speed vs the faster reference, per round: {', '.join(f'{x:.2f}x' for x in ratios)}; median "
          f"{statistics.median(ratios):.2f}x")
    if editing:
        print(f"  the whole editing network (with the sketch cross-attention): {statistics.median(edit_ms):.2f} ms")


if __name__ == "__main__":
    main()
