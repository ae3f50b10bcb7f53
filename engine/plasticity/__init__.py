"""Structural plasticity: the settings (params), the rewiring rounds of a chain layer (rounds) and of hidden layers
(hidden)."""
