"""Parity and energy: above both backends, they compare and price their runs."""
