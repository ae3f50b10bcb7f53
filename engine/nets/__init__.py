"""The networks: the model registry (a leaf), the RF perceptron, multilayer RF networks, the sparse baselines,
hardware regimes, and the built-in registrations."""
