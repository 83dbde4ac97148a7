"""Where models run: one device resolution and one hardware name for the app, the CLIs and the model cards."""

from __future__ import annotations

import torch

CHOICES = ("auto", "cpu", "cuda")  # plus "cuda:N" for a given GPU


class DeviceError(ValueError):
    """A device was asked for that this machine cannot provide (or that does not exist)."""


def resolve_device(choice: str = "auto") -> torch.device:
    """``auto`` (the GPU when PyTorch sees one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        DeviceError: CUDA was asked for on a machine without a CUDA GPU, ``cuda:N`` names a GPU that does not
            exist, or ``choice`` is not a device name at all.
    """
    name = (choice or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was asked for (--device cuda or SENET_DEVICE=cuda) but this machine has no "
                              "CUDA GPU; use --device cpu.")
        try:
            device = torch.device(name)
        except RuntimeError:
            raise DeviceError(f"{choice!r} is not a device name; use auto, cpu, cuda or cuda:N.") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{choice!r} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                              f"GPU(s), numbered from 0; use --device cuda.")
        return device
    raise DeviceError(f"unknown device {choice!r}; use auto, cpu, cuda or cuda:N.")


def device_name(device: torch.device) -> str:
    """The hardware as people read it: ``NVIDIA H100 80GB HBM3 (CUDA)`` or ``CPU (2 threads)``."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"
