"""Workdirs and shipped models on disk: configs, Orbax checkpoints and exports. Coding tables
are opaque arrays here; nothing of the models or the coder is imported."""
