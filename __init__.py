"""mstdeploy: Masked Spiking Transformers from QCFS training to NIR, Lava and energy reports."""

__version__ = "0.1.0"

# `import mstdeploy` makes `nir.read` know our extension node types (nir's registry is static).
# Only under our own name: pytest imports the repository root as a package named after its folder,
# and a second copy of the node classes would replace ours in nir's registry.
if __name__ == "mstdeploy":
    from .ir import nodes as _nodes  # noqa: E402,F401
