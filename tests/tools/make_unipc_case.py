#!/usr/bin/env python3
"""Adds UniPC reference runs to an ADM conformance case.

    python3 make_unipc_case.py --guided-diffusion GD --unipc UP --case DIR [--threads 1]
    python3 make_unipc_case.py --guided-diffusion GD --unipc UP --case DIR --check

Reads the case's config.json, unet.safetensors, classifier.safetensors and io.safetensors (x_T, y)
and writes DIR/unipc.json (what each run is) and DIR/unipc.safetensors (its result). The U-Net and
classifier are guided-diffusion's (built as make_conformance_case.py builds them); the solver is
wl-zhao/UniPC's `uni_pc.py` (NoiseScheduleVP('discrete'), model_wrapper,
UniPC(algorithm_type="data_prediction", variant=bh2 or bh1).sample(method="multistep", order=2,
lower_order_final=True, denoise_to_zero=True)). Nothing of this project's code is involved.

The respaced steps are handed to the solver as make_dpm_solver_case.py hands them to DPM-Solver
(the same discrete-time mapping t = (k + 1) / N, `get_time_steps` replaced, the network's float
time rounded back to its step k). UniPC's discrete schedule keeps every step (no log-SNR clipping),
so every respacing has a reference.

The runs, with `steps` updates plus the final denoise-to-zero evaluation:
  unipc_plain   eps model, x0 clipped to [-1, 1] (correcting_x0_fn), no guidance, B(h) = expm1 (bh2)
  unipc_guided  the same with classifier guidance (the case's classifier_scale)
  unipc_v       the same network's first 3 output channels read as a v prediction
  unipc_plain_ddim20, unipc_guided_ddim20  at ddim20
  unipc-bh1_plain, unipc-bh1_guided, unipc-bh1_plain_ddim20  B(h) = h (bh1)
Each run's trajectory is x after each update, as the reference returns it (after the corrector),
the final denoise last.
"""

import argparse
import collections
import contextlib
import importlib.util
import io as _io
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_conformance_case as mcc  # noqa: E402


def load_unipc(path):
    spec = importlib.util.spec_from_file_location("uni_pc", os.path.join(path, "uni_pc.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUNS = [
    # sampler name, key, respacing (None: the case's), guided, model type
    ("unipc", "plain", None, False, "noise"),
    ("unipc", "guided", None, True, "noise"),
    ("unipc", "v", None, False, "v"),
    ("unipc", "plain_ddim20", "ddim20", False, "noise"),
    ("unipc", "guided_ddim20", "ddim20", True, "noise"),
    ("unipc-bh1", "plain", None, False, "noise"),
    ("unipc-bh1", "guided", None, True, "noise"),
    ("unipc-bh1", "plain_ddim20", "ddim20", False, "noise"),
]


def run_solver(up, cfg, model, classifier, x_T, y, respacing, guided, model_type, variant):
    from guided_diffusion import script_util
    from guided_diffusion.respace import space_timesteps

    n_steps = int(cfg["diffusion_steps"])
    base = script_util.create_gaussian_diffusion(
        steps=n_steps, learn_sigma=cfg["learn_sigma"], noise_schedule=cfg["noise_schedule"], timestep_respacing="")
    betas = torch.tensor(base.betas, dtype=torch.float64)
    ns = up.NoiseScheduleVP("discrete", betas=betas)
    spaced = sorted(space_timesteps(n_steps, respacing))
    times = ns.t_array[0, list(reversed(spaced))].clone()
    class_cond = bool(cfg["class_cond"])

    def to_step(t_input):  # (t - 1/N) * 1000 back to k
        return torch.round(t_input * ns.total_N / 1000.0).to(torch.int64)

    def net(x, t_input, **kwargs):
        out = model(x, to_step(t_input), y if class_cond else None)
        return out[:, :3]

    def classifier_fn(x, t_input, cond, **kwargs):
        logits = classifier(x, to_step(t_input))
        return F.log_softmax(logits, dim=-1)[range(len(logits)), cond.view(-1)]

    scale = float(cfg["classifier_scale"])

    # uni_pc.py's model_wrapper, written out: its "v" model type and its classifier guidance multiply
    # the [B] vectors alpha_t, sigma_t into the last dimension of x, which fails for a batch of more
    # than one (these cases have 2); dpm_solver_pytorch.py's wrapper, which UniPC's copies, broadcasts
    # them over C, H, W (expand_dims), as here. Same formulas otherwise.
    def noise_fn(x, t_continuous):
        t_input = (t_continuous - 1.0 / ns.total_N) * 1000.0  # get_model_input_time, discrete
        output = net(x, t_input)
        if model_type == "noise":
            return output
        alpha_t = ns.marginal_alpha(t_continuous).view(-1, 1, 1, 1)
        sigma_t = ns.marginal_std(t_continuous).view(-1, 1, 1, 1)
        return alpha_t * output + sigma_t * x  # "v"

    def guided_fn(x, t_continuous):  # guidance_type "classifier": noise - scale * sigma_t * grad log p
        t_input = (t_continuous - 1.0 / ns.total_N) * 1000.0
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            grad = torch.autograd.grad(classifier_fn(x_in, t_input, y).sum(), x_in)[0]
        sigma_t = ns.marginal_std(t_continuous).view(-1, 1, 1, 1)
        return noise_fn(x, t_continuous) - scale * sigma_t * grad

    model_fn = guided_fn if guided else noise_fn
    solver = up.UniPC(model_fn, ns, algorithm_type="data_prediction",
                      correcting_x0_fn=lambda x0: x0.clamp(-1.0, 1.0), variant=variant)
    solver.get_time_steps = lambda skip_type, t_T, t_0, N, device: times
    with contextlib.redirect_stdout(_io.StringIO()):  # the reference prints a line per update
        x, inter = solver.sample(x_T.clone(), steps=len(spaced) - 1, t_start=float(times[0]), t_end=float(times[-1]),
                                 order=2, skip_type="time_uniform", method="multistep", lower_order_final=True,
                                 denoise_to_zero=True, return_intermediate=True)
    return x, torch.stack(inter[1:]), spaced


def compute(case, gd, up_path):
    cfg, model, classifier, io = mcc.load_case_networks(case, gd)
    up = load_unipc(up_path)
    tensors = collections.OrderedDict()
    runs = collections.OrderedDict()
    for sampler, key, respacing, guided, model_type in RUNS:
        respacing = respacing or cfg["timestep_respacing"]
        variant = "bh1" if sampler == "unipc-bh1" else "bh2"
        x, traj, spaced = run_solver(up, cfg, model, classifier, io["x_T"], io["y"], respacing, guided, model_type,
                                     variant)
        name = sampler + "_" + key
        tensors[name] = x
        tensors[name + "_trajectory"] = traj
        runs[name] = collections.OrderedDict([
            ("sampler", sampler), ("respacing", respacing), ("classifier_guidance", guided),
            ("prediction", "v" if model_type == "v" else "eps"), ("clip_denoised", True),
            ("network_evaluations", len(spaced)),
            ("text", f"UniPC ({variant}, order 2, data prediction) from x_T over {respacing} ({len(spaced) - 1} "
                     f"updates + denoise to zero), {'classifier guidance toward y' if guided else 'no guidance'}, "
                     f"{'the output read as v' if model_type == 'v' else 'eps'}, x0 clipped; "
                     f"{name}_trajectory: x after each update (corrected), the final denoise last"),
        ])
    return tensors, runs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--guided-diffusion", required=True)
    p.add_argument("--unipc", required=True, help="checkout of wl-zhao/UniPC")
    p.add_argument("--case", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--check", action="store_true", help="recompute and compare with the files in --case")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tensors, runs = compute(args.case, args.guided_diffusion, args.unipc)
    mcc.save_or_check_runs(
        args.case, "unipc", tensors, runs,
        "wl-zhao/UniPC uni_pc.py, UniPC(algorithm_type='data_prediction', variant bh2 / bh1), multistep order 2, "
        "lower_order_final, denoise_to_zero; tests/tools/make_unipc_case.py", args.check)


if __name__ == "__main__":
    main()
