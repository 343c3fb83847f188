"""Bytes only: the range coder over integer tables and indexes, and the .eic container. Imports no
density: the entropy models build the tables it reads."""
