"""Bytes only: integer coding tables, the entropy coders that read them, and the .eic container.
Imports no density: the entropy models build the tables."""
