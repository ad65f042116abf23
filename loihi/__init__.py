"""Loihi's arithmetic: every width and register (widths.py), the integer rounding rules
(quantize.py), the fixed-point plan of a graph (plan.py), where currents and biases go
(placement.py) and core mapping (resources.py)."""
