"""Make the pinned Lava releases import on Python 3.11 (run by `make`, idempotent).

lava-nc 0.10.0 and lava-dl 0.6.0 declare Python < 3.11 and are archived upstream, so we install
them with ``--no-deps --ignore-requires-python`` and apply two source fixes in site-packages:

1. ``lava/magma/compiler/var_model.py`` gives dataclass fields mutable ``ByteEncoder()``
   defaults, which Python 3.11 rejects; they become ``field(default_factory=ByteEncoder)``.
2. ``lava/lib/dl/slayer/__init__.py`` imports ``object_detection``, which needs torchvision and
   OpenCV (neither is installed); the import becomes optional.

Run as a script (``python backends/lava_patch.py``): it must work before our package is installed.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import sys

_BYTE_DEFAULT = re.compile(r":\s*ByteEncoder\s*=\s*ByteEncoder\(\)")
_OBD_IMPORT = "from . import object_detection as obd\n"
_OBD_OPTIONAL = (
    "try:  # patched by mstdeploy: needs torchvision and OpenCV, which we do not install\n"
    "    from . import object_detection as obd\n"
    "except ImportError:  # pragma: no cover\n"
    "    obd = None\n"
)


def _site_file(module: str, relative: str) -> pathlib.Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: package {module!r} is not installed")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / relative


def patch_var_model(path: pathlib.Path) -> bool:
    text = path.read_text()
    new = _BYTE_DEFAULT.sub(": ByteEncoder = field(default_factory=ByteEncoder)", text)
    if new == text:
        return False
    new = new.replace("from dataclasses import dataclass, InitVar",
                      "from dataclasses import dataclass, InitVar, field", 1)
    path.write_text(new)
    return True


def patch_slayer_init(path: pathlib.Path) -> bool:
    text = path.read_text()
    if _OBD_OPTIONAL in text or _OBD_IMPORT not in text:
        return False
    path.write_text(text.replace(_OBD_IMPORT, _OBD_OPTIONAL, 1))
    return True


def main() -> int:
    # Locate files without importing the packages: the unpatched imports are what fail.
    var_model = _site_file("lava", "magma/compiler/var_model.py")
    slayer = _site_file("lava", "lib/dl/slayer/__init__.py")
    for path, fix in ((var_model, patch_var_model), (slayer, patch_slayer_init)):
        if not path.exists():
            raise SystemExit(f"error: expected Lava file is missing: {path}")
        print(f"lava patch: {path.name}: {'patched' if fix(path) else 'already fine'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
