"""Data files shipped with the engine: ``topology.schema.json``, the JSON Schema of topology files.

:mod:`engine.io.topology_format` reads it with :mod:`importlib.resources` (so an installed wheel, which has no
docs/, validates exactly as a source checkout); ``docs/topology.schema.json`` is its published copy, kept
byte-identical by a test."""
