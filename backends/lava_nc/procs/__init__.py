"""Our Lava processes and their float / fixed-point models (nothing else may live here: Lava's
compiler imports every module of this package when it searches for process models)."""
