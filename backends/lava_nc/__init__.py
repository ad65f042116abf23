"""Lava backend: NIR graphs compiled to Lava processes and run in Loihi-style simulation
(named lava_nc after the package it drives, so that it shadows no `lava`)."""
