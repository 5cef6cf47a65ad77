#!/usr/bin/env python3
"""Adds DPM-Solver++(2M) reference runs to an ADM conformance case.

    python3 make_dpm_solver_case.py --guided-diffusion GD --dpm-solver DS --case DIR [--threads 1]
    python3 make_dpm_solver_case.py --guided-diffusion GD --dpm-solver DS --case DIR --check

Reads the case's config.json, unet.safetensors, classifier.safetensors and io.safetensors (x_T, y)
and writes DIR/dpm_solver.json (what each run is) and DIR/dpm_solver.safetensors (its result).
The U-Net and classifier are guided-diffusion's (built as make_conformance_case.py builds them);
the solver is LuChengTHU/dpm-solver's `dpm_solver_pytorch.py` (NoiseScheduleVP('discrete'),
model_wrapper, DPM_Solver(algorithm_type="dpmsolver++").sample(method="multistep", order=2,
lower_order_final=True, denoise_to_zero=True)). Nothing of this project's code is involved.

How the reference is pointed at a respaced timestep subset: DPM-Solver maps the discrete step k of
an N-step model to the continuous time t = (k + 1) / N and interpolates log alpha between those
points, so the respaced steps (descending) become t_array[k] exactly; `get_time_steps` is replaced
by a function returning those times (the solver's own loop, updates and orders are untouched). The
model wrapper hands the network (t - 1/N) * 1000, a float: this script rounds it to the step k it
stands for (k * 1000 / N back to k), which is what the network is trained on and what an ADM
sampler feeds it. NoiseScheduleVP drops the last steps of a schedule whose log-SNR falls below
-5.1 (N' < N steps kept; the cosine schedule's end): a run whose respacing reaches a dropped step is
skipped with a message, since the reference has no time for it; the others use t = (k + 1) / N'.

The runs, with `steps` updates plus the final denoise-to-zero evaluation (steps + 1 network
evaluations = the number of respaced timesteps):
  plain   eps model, x0 clipped to [-1, 1] (correcting_x0_fn), no guidance
  guided  the same with classifier guidance (guidance_type "classifier", classifier_fn = log
          softmax of the label, guidance_scale = the case's classifier_scale)
  v       the same network's first 3 output channels read as a v prediction (model_type "v")
each at the case's own respacing and at `ddim20` (19 updates: no lower-order final step, so the
second-order update runs to the end).
"""

import argparse
import collections
import importlib.util
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_conformance_case as mcc  # noqa: E402


def load_dpm_solver(path):
    spec = importlib.util.spec_from_file_location("dpm_solver_pytorch", os.path.join(path, "dpm_solver_pytorch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUNS = [
    # key, respacing (None: the case's), guided, model type
    ("plain", None, False, "noise"),
    ("guided", None, True, "noise"),
    ("v", None, False, "v"),
    ("plain_ddim20", "ddim20", False, "noise"),
    ("guided_ddim20", "ddim20", True, "noise"),
]


def run_solver(ds, cfg, model, classifier, x_T, y, respacing, guided, model_type):
    from guided_diffusion import script_util
    from guided_diffusion.respace import space_timesteps

    n_steps = int(cfg["diffusion_steps"])
    base = script_util.create_gaussian_diffusion(
        steps=n_steps, learn_sigma=cfg["learn_sigma"], noise_schedule=cfg["noise_schedule"], timestep_respacing="")
    betas = torch.tensor(base.betas, dtype=torch.float64)
    ns = ds.NoiseScheduleVP("discrete", betas=betas)
    spaced = sorted(space_timesteps(n_steps, respacing))
    if spaced[-1] >= ns.total_N:
        # NoiseScheduleVP drops the steps whose log-SNR is below -5.1 (the end of a cosine schedule,
        # or of a short one): a respacing that reaches them has no time in the reference.
        print(f"  {respacing}: skipped, its step {spaced[-1]} is past the {ns.total_N} steps the reference keeps "
              f"of {n_steps} (log-SNR clipped at -5.1)")
        return None
    times = ns.t_array[0, list(reversed(spaced))].clone()

    class_cond = bool(cfg["class_cond"])

    def to_step(t_input):  # (t - 1/N') * 1000 back to k, N' = the steps the reference kept
        return torch.round(t_input * ns.total_N / 1000.0).to(torch.int64)

    def net(x, t_input, **kwargs):
        out = model(x, to_step(t_input), y if class_cond else None)
        return out[:, :3]

    def classifier_fn(x, t_input, cond, **kwargs):
        logits = classifier(x, to_step(t_input))
        return F.log_softmax(logits, dim=-1)[range(len(logits)), cond.view(-1)]

    model_fn = ds.model_wrapper(
        net, ns, model_type=model_type, guidance_type="classifier" if guided else "uncond",
        condition=y if guided else None, guidance_scale=float(cfg["classifier_scale"]),
        classifier_fn=classifier_fn if guided else None)
    solver = ds.DPM_Solver(model_fn, ns, algorithm_type="dpmsolver++",
                           correcting_x0_fn=lambda x0, t: x0.clamp(-1.0, 1.0))
    solver.get_time_steps = lambda skip_type, t_T, t_0, N, device: times
    x, inter = solver.sample(x_T.clone(), steps=len(spaced) - 1, t_start=float(times[0]), t_end=float(times[-1]),
                             order=2, skip_type="time_uniform", method="multistep", lower_order_final=True,
                             denoise_to_zero=True, return_intermediate=True)
    return x, torch.stack(inter[1:]), spaced


def compute(case, gd, ds_path):
    cfg, model, classifier, io = mcc.load_case_networks(case, gd)
    ds = load_dpm_solver(ds_path)
    tensors = collections.OrderedDict()
    runs = collections.OrderedDict()
    for key, respacing, guided, model_type in RUNS:
        respacing = respacing or cfg["timestep_respacing"]
        result = run_solver(ds, cfg, model, classifier, io["x_T"], io["y"], respacing, guided, model_type)
        if result is None:
            continue
        x, traj, spaced = result
        name = "dpmpp2m_" + key
        tensors[name] = x
        tensors[name + "_trajectory"] = traj
        runs[name] = collections.OrderedDict([
            ("respacing", respacing), ("classifier_guidance", guided),
            ("prediction", "v" if model_type == "v" else "eps"), ("clip_denoised", True),
            ("network_evaluations", len(spaced)),
            ("text", f"DPM-Solver++(2M) from x_T over {respacing} ({len(spaced) - 1} updates + denoise to zero), "
                     f"{'classifier guidance toward y' if guided else 'no guidance'}, "
                     f"{'the output read as v' if model_type == 'v' else 'eps'}, x0 clipped; "
                     f"{name}_trajectory: x after each update, the final denoise last"),
        ])
    return tensors, runs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--guided-diffusion", required=True)
    p.add_argument("--dpm-solver", required=True, help="checkout of LuChengTHU/dpm-solver")
    p.add_argument("--case", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--check", action="store_true", help="recompute and compare with the files in --case")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tensors, runs = compute(args.case, args.guided_diffusion, args.dpm_solver)
    mcc.save_or_check_runs(
        args.case, "dpm_solver", tensors, runs,
        "LuChengTHU/dpm-solver dpm_solver_pytorch.py, DPM_Solver(algorithm_type='dpmsolver++'), multistep order 2, "
        "lower_order_final, denoise_to_zero; tests/tools/make_dpm_solver_case.py", args.check)


if __name__ == "__main__":
    main()
