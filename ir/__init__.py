"""The NIR graph: our extension node types, graph structure, the gating stream, the LIF readings, files.

The one thing that crosses from export to the backends. numpy and nir only (no torch): the Lava
worker and its process models import from here."""
