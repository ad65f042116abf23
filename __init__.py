"""mstdeploy: Masked Spiking Transformers from QCFS training to NIR, Lava and energy reports.

The Python API (api.py, docs/api.md): load_model, import_official, train, evaluate, export, read,
write, samples, simulate, lava, parity, energy, resources; UserError, Caution. `import mstdeploy`
stays light: torch, Lava and matplotlib load when a function needs them.
"""

__version__ = "0.1.0"

import importlib as _importlib
import types as _types

from .api import *  # noqa: E402,F401,F403
from .api import __all__  # noqa: E402,F401
from . import api as _api  # noqa: E402

# `import mstdeploy` makes `nir.read` know our extension node types (nir's registry is static).
# Only under our own name: pytest imports the repository root as a package named after its folder,
# and a second copy of the node classes would replace ours in nir's registry.
if __name__ == "mstdeploy":
    from .ir import nodes as _nodes  # noqa: E402,F401


class _Entry(_types.ModuleType):
    """A subpackage that is also the API function of its name: `mstdeploy.export(model)` and
    `mstdeploy.simulate(graph, ...)` call api.export and api.simulate, while mstdeploy.export.lower
    and mstdeploy.simulate.engine stay the modules they are (an import sets the package as the
    attribute, so the package itself must be the function)."""

    def __call__(self, *args, **kwargs):
        return getattr(_api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


for _name in ("export", "simulate"):
    _module = _importlib.import_module(f"{__name__}.{_name}")
    _module.__class__ = _Entry
    _module.__doc__ = getattr(_api, _name).__doc__
    globals()[_name] = _module
