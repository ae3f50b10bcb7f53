"""Where a run's tensors live: the compute device named in the settings ('auto', 'cpu' or 'cuda').

Random draws always come from the run's CPU generators and are then moved to the device, so a seed gives the
same initialisation, shuffling and samples whatever the device (float results still differ between devices:
their kernels sum in other orders).
"""

from __future__ import annotations

import torch

COMPUTE_DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """The torch device for a setting; 'auto' is the GPU when torch sees one, else the CPU."""
    if name not in COMPUTE_DEVICES:
        raise ValueError(f"compute_device must be one of {', '.join(COMPUTE_DEVICES)} (got {name!r})")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "compute_device 'cuda' was asked for, but torch sees no GPU on this machine; use 'auto' or 'cpu'"
        )
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A short name of the device for result records (the GPU's model name on CUDA)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)
