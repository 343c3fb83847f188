"""Images to files and back with a trained model: tiling, the header, latent refinement, and the
export of a workdir (parameters and coding tables)."""
