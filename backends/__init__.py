"""Backends that run a NIR graph: Lava (lava_nc/)."""
