"""One optimiser step on one tensor, shared by actmax, unit ranking and inversion."""

from __future__ import annotations

import torch


def step_on(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameter: torch.Tensor) -> None:
    """Step ``optimizer`` on ``parameter`` alone: the gradient is taken with respect to it only,
    so the models the loss runs through get no ``.grad`` and need not be frozen."""
    (gradient,) = torch.autograd.grad(loss, [parameter])
    parameter.grad = gradient
    optimizer.step()
