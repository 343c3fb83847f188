"""Trains one model per λ for a wall-clock budget, on a machine with a GPU (or any machine).

  python experiments/gpu/train_lambdas.py --budget_s=3600 --runs=runs/gpu \\
      --train_glob='data/train/*.png,data/imagenet_sample/*.jpg,data/bsds500/*.jpg' \\
      --valid_glob='data/valid/*.png'

Each λ trains with `python -m eic_jax.main --config=configs/shipped.py`, from the shipped model
of that λ (`--init_from=shipped`, the default), from scratch (`--init_from=`) or from workdirs
(`--init_from=inits/lmbda_{lmbda}`), in two phases:
1. at the full learning rate for `--decay_start` of the budget; the run's own steps per second
   are measured there;
2. resumed with a piecewise schedule whose drop (×0.1) is the last step of phase 1 and whose
   end is where the measured rate reaches the end of the budget, less the start-up time phase 1
   took; `time_limit_s` stops it in time if the machine is slower than measured. Its
   config.json thus describes the whole run.
The runs go side by side (`--concurrent`, sharing the accelerator's memory) or one after
another, each then with its share of the budget; the summary prints the steps per second of
each, so the two can be compared on a machine. Each workdir ends with an export (parameters
and coding tables) that `pack_export.py` packs into one file.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from eic_jax.training import training_log  # standard library only: no JAX in this process


def _arguments(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--budget_s", type=float, required=True, help="Wall-clock seconds, all "
                      "runs together.")
  parser.add_argument("--runs", default="runs/gpu", help="Parent of the workdirs lmbda_<λ>.")
  parser.add_argument("--lmbdas", default="0.0035,0.0067,0.013")
  parser.add_argument("--init_from", default="shipped", help="'shipped': the shipped model of "
                      "each λ; empty: from scratch; else a workdir or model name, where "
                      "'{lmbda}' stands for each run's λ (e.g. 'inits/lmbda_{lmbda}').")
  parser.add_argument("--train_glob", required=True)
  parser.add_argument("--valid_glob", default="")
  parser.add_argument("--learning_rate", type=float, default=1e-4)
  parser.add_argument("--decay_start", type=float, default=0.8,
                      help="Fraction of each run's time at the full learning rate.")
  parser.add_argument("--concurrent", action=argparse.BooleanOptionalAction, default=True)
  parser.add_argument("--overhead_s", type=float, default=60.0, help="Seconds each phase of a "
                      "run spends outside its steps: imports, decoding the photographs, "
                      "compilation, the export.")
  parser.add_argument("--model", default="bls2017", help="The architecture: bls2017 or "
                      "bmshj2018 (with --config=configs/bmshj2018.py for its settings).")
  parser.add_argument("--config", default="configs/shipped.py")
  parser.add_argument("overrides", nargs="*", help="Further --config.FIELD=VALUE flags.")
  return parser.parse_args(argv)


def _command(args, lmbda: str, workdir: str, time_limit_s: float, extra: list[str]
             ) -> list[str]:
  init_from = {"shipped": f"{args.model}-mse-{lmbda}"}.get(
      args.init_from, args.init_from.replace("{lmbda}", lmbda))
  # --allow_changes: the second phase resumes each run with its learning-rate drop placed.
  return [sys.executable, "-m", "eic_jax.main", f"--config={args.config}", "--allow_changes",
          f"--workdir={workdir}", f"--config.model={args.model}", f"--config.lmbda={lmbda}",
          f"--config.init_from={init_from}",
          f"--config.train_glob={args.train_glob}", f"--config.valid_glob={args.valid_glob}",
          f"--config.learning_rate={args.learning_rate}",
          f"--config.time_limit_s={max(time_limit_s, 1.0):.0f}", *extra, *args.overrides]


def _run(command: list[str], log_path: str, env: dict) -> None:
  with open(log_path, "a") as log:
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
  if result.returncode:
    raise RuntimeError(f"{' '.join(command)} failed; see {log_path}")


def _progress(workdir: str) -> tuple[int, float]:
  """The last step and the median steps per second of a run's training records."""
  scalars = training_log.read_scalars(workdir)
  steps, rates = scalars["steps_per_sec"]
  return int(steps[-1]), float(sorted(rates)[len(rates) // 2])


def _train(args, lmbda: str, workdir: str, log: str, wall_s: float, env: dict) -> None:
  """One λ in `wall_s` seconds: phase 1, then phase 2 sized by phase 1's measured steps per
  second and start-up time."""
  start = time.monotonic()
  first = args.decay_start * (wall_s - 2 * args.overhead_s)
  _run(_command(args, lmbda, workdir, first, ["--config.num_train_steps=100000000",
                                              "--config.learning_rate_schedule=constant"]),
       log, env)
  overhead = max(time.monotonic() - start - first, 0.0)
  drop, rate = _progress(workdir)
  remaining = wall_s - (time.monotonic() - start) - overhead
  total = drop + max(1, int(rate * remaining))
  # (drop + 0.5) / total: the schedule's int(fraction · total) is exactly `drop`.
  _run(_command(args, lmbda, workdir, remaining, [
      f"--config.num_train_steps={total}", "--config.learning_rate_schedule=piecewise",
      f"--config.learning_rate_boundaries=({(drop + 0.5) / total!r},)"]), log, env)


def main(argv=None) -> None:
  args = _arguments(argv)
  lmbdas = [value for value in args.lmbdas.split(",") if value]
  workdirs = [os.path.join(args.runs, f"lmbda_{lmbda}") for lmbda in lmbdas]
  logs = [os.path.join(args.runs, f"lmbda_{lmbda}.log") for lmbda in lmbdas]
  os.makedirs(args.runs, exist_ok=True)
  start = time.monotonic()
  share = args.budget_s if args.concurrent else args.budget_s / len(lmbdas)
  if share < 2 * args.overhead_s + 10:
    raise SystemExit(f"--budget_s={args.budget_s:g} leaves {share:.0f} s per run; each needs "
                     f"more than {2 * args.overhead_s + 10:.0f} s (two start-ups and some steps)")
  env = dict(os.environ)
  try:
    if args.concurrent:
      if len(lmbdas) > 1:
        # Each process takes its share of the accelerator's memory instead of 75 % of it.
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / len(lmbdas):.2f}")
      with concurrent.futures.ThreadPoolExecutor(len(lmbdas)) as pool:
        for future in [pool.submit(_train, args, *run, args.budget_s, env)
                       for run in zip(lmbdas, workdirs, logs)]:
          future.result()
    else:
      for index, run in enumerate(zip(lmbdas, workdirs, logs)):
        left = args.budget_s - (time.monotonic() - start)
        _train(args, *run, left / (len(lmbdas) - index), env)
  except RuntimeError as error:
    raise SystemExit(str(error)) from error

  runs = {}
  for lmbda, workdir in zip(lmbdas, workdirs):
    step, rate = _progress(workdir)
    runs[lmbda] = {"workdir": workdir, "step": step, "steps_per_s": round(rate, 2)}
  rates = [run["steps_per_s"] for run in runs.values()]
  print(json.dumps({
      "runs": runs, "concurrent": args.concurrent,
      "wall_s": round(time.monotonic() - start, 1),
      # Steps per second of the machine: every run's together when they share it.
      "machine_steps_per_s": round(sum(rates) if args.concurrent else sum(rates) / len(rates),
                                   2)}, indent=2))


if __name__ == "__main__":
  main()
