"""Framework-level maths shared by the objective and the evaluation: image quality measures.
Imports nothing of eic_jax."""
