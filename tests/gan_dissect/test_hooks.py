from __future__ import annotations

import pytest
import torch

from gan_dissect.hooks import find_layer, trace, trace_many
from training.errors import InputError


def _net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def test_trace_records_the_layer_output():
    net = _net()
    x = torch.randn(5, 4)
    with trace(net, "0") as record:
        net(x)
    torch.testing.assert_close(record.output, net[0](x))


def test_edit_changes_the_output_only_inside_the_block_even_after_an_error():
    net = _net()
    x = torch.randn(5, 4)
    before = net(x).detach()
    with trace(net, "1", edit=torch.zeros_like):
        edited = net(x)
    torch.testing.assert_close(edited, net[2].bias.expand(5, 3))  # all units off: only the bias
    with pytest.raises(RuntimeError, match="inside"), trace(net, "1", edit=torch.zeros_like):
        raise RuntimeError("inside")
    assert all(not m._forward_hooks for m in net.modules()), "hooks must be gone"
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)


def test_edit_must_keep_the_shape():
    net = _net()
    with (
        pytest.raises(InputError, match=r"must return a tensor of shape \(5, 8\)"),
        trace(net, "0", edit=lambda out: out[:, :4]),
    ):
        net(torch.randn(5, 4))


def test_unknown_layer_names_close_matches():
    net = torch.nn.Module()
    net.layer1 = torch.nn.Linear(2, 2)
    net.layer2 = torch.nn.Linear(2, 2)
    with pytest.raises(InputError, match=r"no layer 'layr2'; did you mean layer2"):
        find_layer(net, "layr2")


def test_trace_many_with_graph_for_optimisation():
    net = _net()
    x = torch.randn(2, 4, requires_grad=True)
    with trace_many(net, ["0", "2"], detach=False) as records:
        net(x)
    records["0"].output.sum().backward()
    assert x.grad is not None
    assert records["2"].output.shape == (2, 3)
