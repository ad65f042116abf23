"""Lava backend: NIR graphs compiled to Lava processes and run in Loihi-style simulation."""
