"""Loihi's arithmetic and the chip: every width and register (widths.py), the integer rounding rules
(quantize.py), the fixed-point plan of a graph (plan.py), where currents and biases go
(placement.py), a fan-in split on relay neurons (split.py), the graph on a chip's cores with time
(chip.py; resources.py: its placement without a run), lava-dl's netx files (netx.py), and
SANA-FE's files for a cross-check (sanafe.py, run by sanafe_run.py in SANA-FE's own interpreter)."""
