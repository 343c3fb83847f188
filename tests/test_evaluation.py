import json
import os
import subprocess
import sys

import nbclient
import nbformat
import numpy as np
import pytest
from PIL import Image

from eic_jax.evaluation import compare
from eic_jax.evaluation import evaluation
from eic_jax.evaluation import plots
from eic_jax.evaluation import rd_curves
from eic_jax.evaluation import report
from eic_jax.runtime import image_io
from tests.conftest import ROOT, photo


def _run(*args, timeout=600, env=None):
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout, env=env)


def test_evaluate_json_matches_a_per_image_recomputation(codec, trained_workdir, photo_dir,
                                                         tmp_path):
  output = tmp_path / "model.json"
  pattern = str(photo_dir / "*.png")
  result = _run("-m", "eic_jax.main", "--mode=evaluate", f"--workdir={trained_workdir}",
                f"--input={pattern}", f"--output={output}")
  assert result.returncode == 0, result.stderr
  curve = json.loads(output.read_text())
  assert set(curve) >= {"name", "description", "results", "per_image"}
  files = sorted(photo_dir.glob("*.png"))
  per_image = curve["per_image"][0]
  assert [m["file"] for m in per_image] == [f.name for f in files]
  for path, stored in zip(files, per_image):
    _, _, metrics = report.measure(codec, image_io.read_image(str(path)))
    assert stored["bpp"] == metrics["bpp"]
    assert stored["psnr"] == pytest.approx(metrics["psnr"], abs=1e-9)
    assert stored["information_bpp"] == pytest.approx(metrics["information_bpp"], rel=1e-5)
  results = curve["results"]
  assert results["bpp"] == [pytest.approx(np.mean([m["bpp"] for m in per_image]))]
  assert results["psnr-rgb"] == [pytest.approx(np.mean([m["psnr"] for m in per_image]))]
  # The images are too small for MS-SSIM: it is left out rather than reported as a number.
  assert all(m["ms_ssim"] is None for m in per_image)


def test_baselines_sweep_quality_and_share_the_layout(photo_dir):
  files = [str(p) for p in sorted(photo_dir.glob("*.png"))[:2]]
  for name in ("jpeg", "webp"):
    curve = evaluation.evaluate_baseline(name, files, qualities=(10, 50, 90))
    rates = curve["results"]["bpp"]
    assert rates == sorted(rates) and len(rates) == 3
    assert curve["results"]["psnr-rgb"] == sorted(curve["results"]["psnr-rgb"])
    # Every point lists the images in the order given, whichever thread coded them.
    assert all([m["file"] for m in point] == [os.path.basename(f) for f in files]
               for point in curve["per_image"])
  data, reconstruction, encode_s, decode_s = evaluation.pillow_code(photo("coffee", (64, 64)),
                                                                    "jpeg", 75)
  assert data[:2] == b"\xff\xd8" and reconstruction.shape == (64, 64, 3)
  assert encode_s > 0 and decode_s > 0


def _valid_png(path):
  assert path.stat().st_size > 5000
  with Image.open(path) as image:
    assert image.size[0] > 200 and image.size[1] > 100


@pytest.mark.parametrize("workdir,codec_name", [("trained_workdir", "codec"),
                                                ("hyperprior_workdir", "hyperprior_codec")])
def test_plots_are_written(request, workdir, codec_name, tmp_path):
  trained_workdir, codec = request.getfixturevalue(workdir), request.getfixturevalue(codec_name)
  curve = {"name": "model", "points": ["a", "b"],
           "results": {"bpp": [0.2, 0.5], "psnr-rgb": [27.0, 30.0],
                       "ms-ssim-rgb": [0.9, 0.95]}}
  published = rd_curves.published("kodak")
  plots.rd_figure([curve, published["balle-2017-iclr-opt-mse"], published["webp"]],
                  str(tmp_path / "rd.png"))
  plots.training_figure(str(trained_workdir), str(tmp_path / "training.png"))
  plots.pmf_figure(codec, str(tmp_path / "pmf.png"))
  original = photo("astronaut", (96, 128))
  plots.side_by_side(original, codec.decompress(codec.compress(original)),
                     str(tmp_path / "side.png"))
  for name in ("rd", "training", "pmf", "side"):
    _valid_png(tmp_path / f"{name}.png")


def test_published_curves_are_shipped_as_data():
  curves = rd_curves.published("kodak")
  balle = curves["balle-2017-iclr-opt-mse"]
  assert balle["name"] == "Ballé 2017 (ICLR, opt. MSE)"
  assert len(balle["results"]["bpp"]) == len(balle["results"]["psnr-rgb"]) >= 6
  assert 0.8 < min(balle["results"]["ms-ssim-rgb"]) < 1.0
  assert "bmshj2018-factorized" in {c["name"] for c in curves.values()}


def test_compare_prints_bd_rates(tmp_path, photo_dir):
  files = [str(p) for p in sorted(photo_dir.glob("*.png"))]
  for name in ("jpeg", "webp"):
    curve = evaluation.evaluate_baseline(name, files, qualities=(10, 30, 50, 70, 90))
    (tmp_path / f"{name}.json").write_text(rd_curves.dumps(curve))
  result = _run("-m", "eic_jax.main", "--mode=compare", f"--input={tmp_path / 'webp.json'}",
                f"--reference={tmp_path / 'jpeg.json'}")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert any(line.startswith("JPEG (4:2:0)") for line in lines)
  assert any(line.startswith("Ballé 2017 (ICLR, opt. MSE)") and "indicative" in line
             for line in lines)
  for path in files:  # per image, against the JPEG curve evaluated on the same files
    assert sum(line.startswith(os.path.basename(path)) for line in lines) == 1
  result = _run("-m", "eic_jax.main", "--mode=compare", f"--input={tmp_path / 'webp.json'}",
                f"--reference={tmp_path / 'jpeg.json'}", "--metric=ms-ssim-db")
  assert result.returncode == 0, result.stderr
  assert "BD-MS-SSIM (dB)" in result.stdout


def _curve(name: str, images: dict[str, tuple[list[float], list[float]]]) -> dict:
  points = range(len(next(iter(images.values()))[0]))
  # MS-SSIM in dB made to follow PSNR 15 dB lower, except for "small" images, which have none.
  per_image = [[{"file": file, "bpp": rates[i], "psnr": psnrs[i],
                 "ms_ssim_db": None if file.startswith("small") else psnrs[i] - 15.0}
                for file, (rates, psnrs) in images.items()] for i in points]

  def mean(key):
    return [float(np.mean([m[key] for m in point if m[key] is not None])) for point in per_image]

  return {"name": name, "per_image": per_image,
          "results": {"bpp": mean("bpp"), "psnr-rgb": mean("psnr"),
                      "ms-ssim-db": mean("ms_ssim_db")}}


def test_published_anchors_say_whether_the_images_are_kodak():
  rates, psnrs = [0.2, 0.5, 1.0], [28.0, 31.0, 34.0]
  kodak = _curve("all", {f"kodim{i:02d}.png": (rates, psnrs) for i in range(1, 25)})
  some = _curve("some", {f"kodim{i:02d}.png": (rates, psnrs) for i in (3, 7)})
  other = _curve("other", {"barbara.png": (rates, psnrs)})
  notes = [compare.published_anchors(curve)[0]["note"] for curve in (kodak, some, other)]
  assert notes == ["published on Kodak, the same 24 images",
                   "published on all 24 Kodak images; these are 2 of them",
                   "published on Kodak, not these images: indicative only"]
  names = [a["name"] for a in compare.published_anchors(other, ("bpg444", "webp", "jpeg420"))]
  assert names == ["BPG (4:4:4)", "WebP", "JPEG (4:2:0)"]
  assert compare.published_anchors(other, ()) == []
  with pytest.raises(ValueError, match="no published curve 'bpg'; the published curves are"):
    compare.published_anchors(other, ("bpg",))


def test_per_image_bd_rates_pair_images_by_file():
  psnr = [28.0, 31.0, 34.0, 37.0]
  anchor = _curve("anchor", {"a.png": ([0.2, 0.4, 0.8, 1.6], psnr),
                             "b.png": ([0.3, 0.6, 1.2, 2.4], psnr)})
  test = _curve("test", {"b.png": ([0.24, 0.48, 0.96, 1.92], psnr),  # 20 % fewer bits
                         "a.png": ([0.2, 0.4, 0.8, 1.6], psnr),
                         "c.png": ([0.1, 0.2, 0.4, 0.8], psnr)})  # not in the anchor
  for metric in compare.METRICS:
    rows = {file: (rate, quality_gain) for file, rate, quality_gain, _ in
            compare.per_image_rows(test, anchor, metric)}
    assert set(rows) == {"a.png", "b.png"}
    assert rows["a.png"] == pytest.approx((0.0, 0.0), abs=1e-9)
    assert rows["b.png"][0] == pytest.approx(-20.0, abs=1e-6)
    assert rows["b.png"][1] > 0
    table = compare.format_table(test, [anchor], metric).splitlines()
    assert [line.split()[1] for line in table if line.split()[:1] == ["b.png"]] == ["-20.0"]
    assert [line.split()[1] for line in table if line.split()[:1] == ["median"]] == ["-10.0"]


def test_per_image_bd_rates_skip_images_without_the_metric():
  psnr = [28.0, 31.0, 34.0]
  anchor = _curve("anchor", {"a.png": ([0.2, 0.4, 0.8], psnr),
                             "small.png": ([0.2, 0.4, 0.8], psnr)})
  test = _curve("test", {"a.png": ([0.1, 0.2, 0.4], psnr), "small.png": ([0.1, 0.2, 0.4], psnr)})
  rows = {file: row for file, *row in compare.per_image_rows(test, anchor, "ms-ssim-db")}
  assert rows["a.png"][0] == pytest.approx(-50.0, abs=1e-6)
  assert np.isnan(rows["small.png"][0]) and rows["small.png"][2].startswith("n/a")
  median = [line for line in compare.format_table(test, [anchor], "ms-ssim-db").splitlines()
            if line.startswith("median")]
  assert median[0].split()[1] == "-50.0"  # over the images that have MS-SSIM
  with pytest.raises(ValueError, match="Unknown metric 'ssim'"):
    compare.format_table(test, [anchor], "ssim")


@pytest.mark.parametrize("model", ["shipped", "workdir"])
def test_notebook_runs_headless(hyperprior_workdir, tmp_path, model):
  """With the shipped bls2017 default and with a bmshj2018 workdir."""
  trained_workdir = hyperprior_workdir
  notebook = nbformat.read(ROOT / "notebooks" / "codec_tour.ipynb", as_version=4)
  variables = {"EIC_FIGURES": str(tmp_path / "figures")}
  if model == "workdir":
    variables["EIC_WORKDIR"] = str(trained_workdir)
  os.environ.update(variables)
  try:
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
  finally:
    for name in variables:
      del os.environ[name]
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  text = "".join(o.get("text", "") for o in outputs)
  assert text.startswith(str(trained_workdir) if model == "workdir" else "bls2017-mse-0.0067:")
  assert "Actual bits per pixel" in text
  assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
  _valid_png(tmp_path / "figures" / "pmf.png")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]


def test_lambda_sweep_trains_evaluates_and_plots(photo_dir, tmp_path):
  result = _run("experiments/lambda_sweep.py", "--config=configs/smoke.py",
                f"--workdir={tmp_path}", f"--config.train_glob={photo_dir / '*'}",
                "--config.valid_glob=", f"--eval_glob={photo_dir / '*.png'}",
                "--config.num_train_steps=4", "--config.patch_size=64")
  assert result.returncode != 0 and "lmbdas" in result.stderr
  config = tmp_path / "sweep_config.py"
  config.write_text("from configs import smoke\n\ndef get_config():\n"
                    "  config = smoke.get_config()\n  config.lmbdas = (0.002, 0.05)\n"
                    "  return config\n")
  result = _run("experiments/lambda_sweep.py", f"--config={config}", f"--workdir={tmp_path}",
                f"--config.train_glob={photo_dir / '*'}", "--config.valid_glob=",
                f"--eval_glob={photo_dir / '*.png'}", "--config.num_train_steps=20",
                "--config.patch_size=64", env={**os.environ, "PYTHONPATH": str(ROOT)})
  assert result.returncode == 0, result.stderr
  model = json.loads((tmp_path / "model.json").read_text())
  assert len(model["results"]["bpp"]) == 2
  assert {"lmbda_0.002", "lmbda_0.05"} <= {p.name for p in tmp_path.iterdir()}
  _valid_png(tmp_path / "rd.png")
  assert "BD-rate" in result.stdout
