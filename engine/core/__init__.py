"""The engine's foundation: compute settings, limits, messages, files and atomic outputs, progress, the settings tree,
tables and the model base class. Imports nothing else of the engine."""
