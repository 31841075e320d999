from __future__ import annotations

import torch

from gan_dissect.hooks import trace, trace_many


class _Counting(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x


def _net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(inplace=True), torch.nn.Linear(8, 3), _Counting()
    )


def test_stop_ends_the_forward_pass_after_the_last_traced_layer():
    net = _net()
    x = torch.randn(5, 4)
    with trace_many(net, ["2", "0"], stop=True) as records:
        net(x)
        raise AssertionError("the block ends with the forward pass")
    assert net[3].calls == 0, "modules after the traced layers must not run"
    torch.testing.assert_close(records["2"].output, net[2](torch.relu(net[0](x))))
    assert all(not m._forward_hooks for m in net.modules())
    net(x)
    assert net[3].calls == 1


def test_clone_keeps_the_output_safe_from_a_later_inplace_operation():
    net = _net()
    x = -torch.ones(2, 4)
    expected = net[0](x).detach()
    assert (expected < 0).any()
    with trace(net, "0") as shared, trace(net, "0", clone=True) as copied:
        net(x)
    assert (shared.output >= 0).all(), "the in-place ReLU overwrote the shared output"
    torch.testing.assert_close(copied.output, expected)
