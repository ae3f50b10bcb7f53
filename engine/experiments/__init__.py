"""Work made of many runs: sweeps (sweep/), the robustness and hardware studies, topology evaluation, recommended
settings and the installation check."""
