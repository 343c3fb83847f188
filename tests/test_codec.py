import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from eic_jax.codec import codec as codec_lib
from eic_jax.coder import bitstream
from tests.conftest import ROOT, photo


def test_other_layouts_are_converted_and_bad_arrays_refused(codec):
  gray = photo("camera", (40, 40))
  assert codec.decompress(codec.compress(gray)).shape == (40, 40, 3)
  rgba = np.dstack([photo("coffee", (40, 40)), np.full((40, 40), 255, np.uint8)])
  assert codec.compress(rgba) == codec.compress(rgba[:, :, :3])
  with pytest.raises(ValueError, match="expected a uint8 image"):
    codec.compress(np.zeros((8, 8, 3), np.float32))
  with pytest.raises(ValueError, match=r"expected an image of shape \(H, W, 3\)"):
    codec.compress(np.zeros((8, 8, 5), np.uint8))


def test_errors_raise_the_documented_exception(codec, trained_workdir, tmp_path):
  data = codec.compress(photo("chelsea", (48, 64)))
  flipped = bytearray(data)
  flipped[len(data) // 2] ^= 0x10
  other_version = bytearray(data)
  other_version[3] = 9
  cases = {"truncated": data[:-3], "corrupted": bytes(flipped), "empty": b"",
           "unsupported": bytes(other_version), "not eic": b"\x89PNG\r\n\x1a\n" + data}
  for name, bad in cases.items():
    with pytest.raises(bitstream.BitstreamError):
      codec.decompress(bad)
  other = codec_lib.Codec(codec.config, jax.tree_util.tree_map(lambda a: a * 1.01, codec.params),
                          codec.tables)
  with pytest.raises(bitstream.BitstreamError, match="different model"):
    other.decompress(data)
  header, streams = bitstream.unpack(data)
  relabelled = bitstream.pack(dataclasses.replace(header, architecture="bmshj2018"), streams)
  with pytest.raises(bitstream.BitstreamError, match="names the architecture 'bmshj2018' with "
                     "the fingerprint of this bls2017 model"):
    codec.decompress(relabelled)
  small = codec_lib.Codec(codec.config, codec.params, codec.tables, max_pixels=100)
  with pytest.raises(bitstream.BitstreamError, match="exceeds the limit"):
    small.decompress(data)


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "eic_jax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_fresh_process_decodes_identical_pixels_from_only_the_workdir(codec, trained_workdir,
                                                                       tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  image = photo("rocket", (100, 150))
  source = tmp_path / "in.png"
  Image.fromarray(image).save(source)
  compressed = tmp_path / "in.eic"
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={compressed}", "--verbose")
  assert result.returncode == 0, result.stderr
  for label in ("Original size", "Compressed file size", "Mean squared error", "PSNR (dB)",
                "Multiscale SSIM", "Multiscale SSIM (dB)", "Information content in bpp",
                "Actual bits per pixel"):
    assert label in result.stdout
  decoded_path = tmp_path / "out.png"
  result = _cli("--mode=decompress", f"--workdir={trained_workdir}", f"--input={compressed}",
                f"--output={decoded_path}")
  assert result.returncode == 0, result.stderr
  assert compressed.read_bytes() == codec.compress(image)
  np.testing.assert_array_equal(np.asarray(Image.open(decoded_path)),
                                codec.decompress(compressed.read_bytes()))


def test_cli_errors_are_one_line_and_leave_no_output(trained_workdir, tmp_path):
  broken = tmp_path / "broken.eic"
  broken.write_bytes(b"EIC\x01" + bytes(30))
  output = tmp_path / "never.png"
  result = _cli("--mode=decompress", f"--workdir={trained_workdir}", f"--input={broken}",
                f"--output={output}")
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert f"error: {broken}: corrupted or truncated file" in result.stderr
  assert not output.exists()
  not_image = tmp_path / "notes.txt"
  not_image.write_text("hello")
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={not_image}",
                f"--output={tmp_path / 'x.eic'}")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert f"{not_image}: not a readable image" in result.stderr
  assert not (tmp_path / "x.eic").exists()


def test_compiled_transforms_persist_across_processes(trained_workdir, tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  source = tmp_path / "in.png"
  Image.fromarray(photo("coffee", (50, 60))).save(source)
  cache = tmp_path / "cache"
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={tmp_path / 'out.eic'}", f"--compilation_cache={cache}")
  assert result.returncode == 0, result.stderr
  assert any("analyze_tile" in path.name for path in cache.iterdir())


def test_benchmark_measures_one_size_in_its_own_process(trained_workdir):
  result = subprocess.run([sys.executable, "-m", "eic_jax.tools.bench", "--scaling_child=0.05",
                           f"--workdir={trained_workdir}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  row = json.loads(result.stdout.strip().splitlines()[-1])
  assert {"megapixels", "compress_ms_per_mp", "decompress_ms_per_mp", "compile_s",
          "peak_rss_mb"} <= set(row)
  assert 0.04 < row["megapixels"] < 0.06 and row["peak_rss_mb"] > 100


def test_small_images_keep_their_colour():
  codec = codec_lib.load_codec("bls2017-mse-0.0067")
  red = np.array([[[200, 30, 40]]], np.uint8)
  decoded = codec.decompress(codec.compress(red))
  # With zero padding the pixel decoded as (4, 3, 1): the black padding swamped it.
  assert np.max(np.abs(decoded.astype(int) - red)) < 40
  for size in (2, 5, 15):
    image = photo("astronaut", (200 + size, 200 + size))[200:, 200:]
    decoded = codec.decompress(codec.compress(image))
    assert 10 * np.log10(255**2 / np.mean((decoded - image.astype(float))**2)) > 35


@pytest.mark.parametrize("workdir_fixture", ["trained_workdir", "hyperprior_workdir"])
def test_a_float16_shipment_is_half_the_size_and_codes_with_the_rounded_weights(
    workdir_fixture, request, tmp_path):
  from eic_jax.storage import checkpoints  # pylint: disable=import-outside-toplevel
  workdir = str(request.getfixturevalue(workdir_fixture))
  described = {}

  def describe(codec):
    described["codec"] = codec
    return {"note": "test"}

  full = codec_lib.ship(workdir, str(tmp_path / "full"), describe)
  half = codec_lib.ship(workdir, str(tmp_path / "half"), describe, np.float16)
  assert full["weights_dtype"] == "float32" and half["weights_dtype"] == "float16"
  assert half["note"] == "test"
  assert json.loads((tmp_path / "half" / "training.json").read_text()) == half
  trained, _, step = checkpoints.restore_export(workdir)
  # Two bytes saved per parameter, less what OCDBT's data files vary by with how a busy machine
  # flushes the writes (kilobytes: a tenth of this tiny model); the metadata does not shrink.
  float32_bytes = sum(4 * leaf.size for leaf in jax.tree_util.tree_leaves(trained))
  assert full["size_bytes"] - half["size_bytes"] > 0.35 * float32_bytes

  params, _, shipped_step = checkpoints.restore_export(str(tmp_path / "half"))
  assert shipped_step == step
  for original, restored in zip(jax.tree_util.tree_leaves(trained),
                                jax.tree_util.tree_leaves(params)):
    assert restored.dtype == np.float32
    np.testing.assert_array_equal(restored, original.astype(np.float16).astype(np.float32))
  # What the record described is what the shipped copy decodes with.
  codec = codec_lib.load_codec(str(tmp_path / "half"))
  assert codec.name == "half" and described["codec"].name == "half"
  assert codec.fingerprint == described["codec"].fingerprint
  assert codec.fingerprint != codec_lib.load_codec(str(tmp_path / "full")).fingerprint
  image = photo("coffee", (70, 90))
  data = described["codec"].compress(image)
  assert data == codec.compress(image)
  np.testing.assert_array_equal(codec.decompress(data), described["codec"].decompress(data))


@pytest.mark.parametrize("workdir_fixture", ["trained_workdir", "hyperprior_workdir"])
def test_files_written_before_training_the_encoder_alone_decode_the_same_after_it(
    workdir_fixture, request, photo_dir, tmp_path):
  """Training the encoder alone changes no parameter a decoder reads, so the model keeps its
  fingerprint and decodes what it wrote before, while its latents move."""
  from eic_jax.storage import checkpoints  # pylint: disable=import-outside-toplevel
  from eic_jax.training import train  # pylint: disable=import-outside-toplevel
  workdir = str(request.getfixturevalue(workdir_fixture))
  _, _, step = checkpoints.restore_export(workdir)
  config = checkpoints.load_config(workdir)
  config.train_glob = str(photo_dir / "*")
  config.init_from = workdir
  config.trainable = "encoder"
  config.num_train_steps = step + 4
  train.train_and_evaluate(config, str(tmp_path / "encoder"))
  before = codec_lib.load_codec(workdir)
  after = codec_lib.load_codec(str(tmp_path / "encoder"))
  assert after.step == step + 4
  assert after.fingerprint == before.fingerprint
  image = photo("coffee", (70, 90))
  assert not np.array_equal(after.latents(image), before.latents(image))
  data = before.compress(image)
  np.testing.assert_array_equal(after.decompress(data), before.decompress(data))


def test_images_whose_pixels_take_fewer_bytes_than_their_code_are_stored_losslessly(codec):
  shipped = codec_lib.load_codec("bls2017-mse-0.0035")
  for size in (1, 2, 3):
    image = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    data, encoded = shipped.compress_with_latents(image)
    header, _ = bitstream.unpack(data)
    coded = bitstream.pack(dataclasses.replace(header, raw=False), encoded.streams)
    raw = bitstream.pack_raw(header, image)
    assert len(data) == min(len(coded), len(raw)) and header.raw == (len(raw) < len(coded))
    if header.raw:  # lossless, and a file of pixels needs no model: any codec reads it
      np.testing.assert_array_equal(shipped.decompress(data), image)
      np.testing.assert_array_equal(codec.decompress(data), image)
  assert bitstream.unpack(shipped.compress(np.zeros((1, 1, 3), np.uint8)))[0].raw
  assert not bitstream.unpack(shipped.compress(photo("coffee", (64, 64))))[0].raw


def test_the_coder_is_chosen_and_the_file_names_it(codec, trained_workdir):
  image = photo("coffee", (40, 56))
  chosen = codec_lib.load_codec(str(trained_workdir), coder="constriction")
  data = chosen.compress(image)
  header, streams = bitstream.unpack(data)
  assert header.coder == "constriction"
  np.testing.assert_array_equal(codec.decompress(data), chosen.decompress(data))
  with pytest.raises(ValueError, match="unknown coder 'zstd'; choose one of tfc, constriction"):
    codec_lib.load_codec(str(trained_workdir), coder="zstd")
  unknown = bitstream.pack(dataclasses.replace(header, coder="zstd"), streams)
  with pytest.raises(bitstream.BitstreamError, match="names the entropy coder 'zstd', which"):
    codec.decompress(unknown)


def test_decoding_does_not_import_the_training_loop():
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys, eic_jax.codec.codec; "
       "print(sorted(m for m in sys.modules if m.startswith('eic_jax.training')))"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.stdout.strip() == "[]", result.stderr
