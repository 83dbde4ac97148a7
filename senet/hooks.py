"""Forward hooks owned by context managers: registered on enter, removed in ``finally`` (also after errors).

Nothing here imports pytorch_grad_cam, so class profiles can run on a training machine without it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .layers import SEBlockInfo, se_blocks


class HookSet:
    """Base for context managers that own forward hooks; every handle is removed on exit, whatever happened."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def _register(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> HookSet:
        try:
            self._register()
        except BaseException:  # a half-registered set must not leak its first hooks
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:  # never swallows the exception (unlike grad-cam's)
        self.remove()

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


class ExcitationRecorder(HookSet):
    """Records every SE block's gate output, the (B, C) excitation, detached, keyed by the SE paper's name."""

    def __init__(self, model: nn.Module, blocks: list[SEBlockInfo] | None = None) -> None:
        super().__init__()
        self.blocks = se_blocks(model) if blocks is None else blocks
        self.values: dict[str, torch.Tensor] = {}

    def __enter__(self) -> ExcitationRecorder:
        super().__enter__()
        return self

    def _register(self) -> None:
        for info in self.blocks:
            self._handles.append(info.module.gate.register_forward_hook(partial(self._save, info.name)))

    def _save(self, name: str, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self.values[name] = output.detach()

    def ordered(self) -> list[torch.Tensor]:
        """The recorded (B, C) excitations in network order; raises if a block did not run."""
        missing = [info.name for info in self.blocks if info.name not in self.values]
        if missing:
            raise RuntimeError(f"SE blocks {missing} did not run in the forward pass")
        return [self.values[info.name] for info in self.blocks]


class LayerRecorder(HookSet):
    """Catches one module's output in the forward pass (the CAM activations).

    With ``leaf=True`` the rest of the network receives a detached copy that requires grad, and grad mode is
    switched on from that point of the forward on: run the forward under ``torch.no_grad()`` and only the part
    after this layer builds a graph, so ``torch.autograd.grad(score, recorder.output)`` is a backward pass that
    stops at the layer, touches no parameter's ``.grad`` and works on frozen models too. The caller's
    ``no_grad`` block restores its grad mode on exit.
    """

    def __init__(self, module: nn.Module, *, leaf: bool = False) -> None:
        super().__init__()
        self.module = module
        self.leaf = leaf
        self.output: torch.Tensor | None = None

    def __enter__(self) -> LayerRecorder:
        super().__enter__()
        return self

    def _register(self) -> None:
        self._handles.append(self.module.register_forward_hook(self._save))

    def _save(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
        if not self.leaf:
            self.output = output.detach()
            return None
        leaf = output.detach().requires_grad_(True)
        torch.set_grad_enabled(True)  # thread-local; the caller's no_grad/enable_grad block restores it
        self.output = leaf
        return leaf


_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The one lock that serialises hook-using work on ``model`` (one per model, freed with it).

    ``analyze``, ``channel_map`` and ``class_profiles`` take it themselves, so callers (the app included) need no
    lock of their own; it is re-entrant, so a caller may also hold it around several calls.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block; afterwards restore every module's train/eval flag and every
    parameter's ``requires_grad`` and ``.grad`` exactly as they were, also after an exception."""
    training = [(module, module.training) for module in model.modules()]
    params = [(param, param.requires_grad, param.grad) for param in model.parameters()]
    # Only what changed is touched: on SE-DenseNet-121 (~1,400 modules) an unconditional eval() and restore cost
    # about 10 ms of a 110 ms CPU analysis, and the model is almost always in eval mode already.
    try:
        if any(flag for _, flag in training):
            model.eval()
        yield model
    finally:
        for module, flag in training:
            if module.training != flag:
                module.training = flag
        for param, requires_grad, grad in params:
            if param.requires_grad != requires_grad:
                param.requires_grad_(requires_grad)
            if param.grad is not grad:
                param.grad = grad


def hook_count(model: nn.Module) -> int:
    """How many forward (pre-)hooks and backward hooks are registered on ``model``'s modules (for tests)."""
    total = 0
    for module in model.modules():
        total += len(module._forward_hooks) + len(module._forward_pre_hooks)
        total += len(module._backward_hooks) + len(getattr(module, "_backward_pre_hooks", {}))
    return total
