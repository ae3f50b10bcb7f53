"""The embedded datasets (mnist-mini.npz, drones.npz), their credits and licence.

In an installed rfexplorer this folder is the package ``engine._resources`` (pyproject.toml maps it there, so
wheels carry the files); engine/data/__init__.py finds it with importlib.resources. It holds no code.
"""
