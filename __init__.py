"""mstdeploy: Masked Spiking Transformers from QCFS training to NIR, Lava and energy reports."""

__version__ = "0.1.0"
