"""Encoder effort: one knob for how long the encoder works on an image, as in x264's presets or
cwebp's -m. Level 0 is the plain encoder (the analysis transform's latents, coded as they are);
each level above it refines the latents for more steps (latent_refinement.py), and hyperprior
models their side latents too. What each level buys and costs: docs/refinement.md.

Kept free of imports so that the command line's help can list the levels without JAX.
"""

# Steps of latent refinement at each level.
EFFORT_STEPS = (0, 25, 50, 100, 200, 500)


def effort_steps(effort: int) -> int:
  """The refinement steps of an encoder effort level."""
  if isinstance(effort, bool) or not isinstance(effort, int) or not (
      0 <= effort < len(EFFORT_STEPS)):
    raise ValueError(f"effort must be an integer from 0 to {len(EFFORT_STEPS) - 1}, got "
                     f"{effort!r}")
  return EFFORT_STEPS[effort]
