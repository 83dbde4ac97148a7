"""BatchNorm over the global batch of a multi-process run (``--sync-bn``), on GPUs and on CPUs.

On CUDA this is PyTorch's ``nn.SyncBatchNorm``. PyTorch's refuses CPU tensors, so Gloo runs get
:class:`CpuSyncBatchNorm`: the same statistics from one all-reduce of per-channel sums per layer, with autograd
through a differentiable all-reduce giving SyncBatchNorm's backward. Both convert back to plain
``BatchNorm2d`` after training, so checkpoints keep the architecture's own modules and state-dict keys.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is the sum of the processes' gradients (what SyncBatchNorm needs)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of every process's batch together (Gloo)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        dims = [0, 2, 3]
        count = input.numel() // input.shape[1]
        # Sums in float64 so E[x^2] - E[x]^2 does not cancel; one collective for mean, square and count.
        local = torch.cat([input.sum(dims, dtype=torch.float64), (input * input).sum(dims, dtype=torch.float64),
                           torch.tensor([count], dtype=torch.float64)])
        total = _AllReduceSum.apply(local)
        channels = input.shape[1]
        n = total[-1]
        mean = total[:channels] / n
        var = (total[channels:2 * channels] / n - mean * mean).clamp_min(0)
        tracked = self.num_batches_tracked
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None \
                and tracked is not None:
            with torch.no_grad():
                tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        shape = (1, channels, 1, 1)
        scale = torch.rsqrt(var.to(input.dtype) + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        out = (input - mean.to(input.dtype).view(shape)) * scale.view(shape)
        return out + self.bias.view(shape) if self.bias is not None else out


def _swap(module: nn.Module, make: type[nn.BatchNorm2d], kinds: tuple[type[nn.Module], ...]) -> nn.Module:
    if isinstance(module, kinds) and type(module) is not make:
        assert isinstance(module, nn.modules.batchnorm._BatchNorm)  # for the type checker: kinds are BatchNorms
        new = make(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        new = new.to(device=next(module.buffers(), torch.empty(0)).device)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _swap(child, make, kinds))
    return module


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every ``BatchNorm2d`` of ``model`` as a synchronised BatchNorm for ``device``'s kind (in place)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _swap(model, CpuSyncBatchNorm, (nn.BatchNorm2d,))


def revert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Plain ``BatchNorm2d`` again, weights and running statistics kept (in place)."""
    return _swap(model, nn.BatchNorm2d, (nn.SyncBatchNorm, CpuSyncBatchNorm))

