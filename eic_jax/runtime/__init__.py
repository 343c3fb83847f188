"""What the process runs on: files written atomically, image files, XLA options, the
compilation cache, quiet logs, and TensorFlow where it is installed. Imports nothing of eic_jax."""
