"""Sweeps: the spec, the resume log, the reports, the runner, and the backends behind one protocol (local process
pool, Ray)."""
