"""Tests of bench.models.layers (the U-Net's convolutions with a GEMM path) and bench.training.allocator."""
from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.models import UNet, layers
from bench.models.layers import DownConv, UpConv, to_stock_layers, uses_gemm


def _stock(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    op = F.conv_transpose2d if isinstance(layer, UpConv) else F.conv2d
    return op(x, layer.weight, layer.bias, stride=2, padding=1)


@pytest.fixture
def gemm_everywhere(monkeypatch):
    """Take the GEMM path for every fp32 and bf16 layer, whatever its size."""
    monkeypatch.setattr(layers, "GEMM_MAX_ROWS", {torch.float32: 2**62, torch.bfloat16: 2**62})


@pytest.mark.parametrize("cls", [DownConv, UpConv])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch,side", [(1, 2), (3, 4), (2, 6)])
def test_gemm_path_equals_the_stock_layer_with_gradients(gemm_everywhere, cls, bias, batch, side):
    torch.manual_seed(0)
    layer = cls(6, 5, bias=bias)
    nn.init.normal_(layer.weight)
    if bias:
        nn.init.normal_(layer.bias)
    x = torch.randn(batch, 6, side, side, requires_grad=True)
    ours = layer(x)
    theirs = _stock(layer, x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(ours)
    ours_grads = torch.autograd.grad(ours, [x, *layer.parameters()], grad)
    theirs_grads = torch.autograd.grad(theirs, [x, *layer.parameters()], grad)
    for a, b in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", [DownConv, UpConv])
def test_gemm_path_under_bf16_autocast_matches_autocast_stock_layer(cls):
    torch.manual_seed(0)
    layer = cls(64, 32, bias=True)
    x = torch.randn(2, 64, 4, 4)
    assert uses_gemm(x, 32) is False  # fp32 outside autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert uses_gemm(x, 32)
        ours, theirs = layer(x), _stock(layer, x)
    assert ours.dtype == theirs.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=0.02, atol=0.02)


def test_gemm_path_taken_only_up_to_the_measured_size():
    x = torch.zeros(1, 1, 1, 1)
    limit = layers.GEMM_MAX_ROWS[torch.bfloat16]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert uses_gemm(x, limit) and not uses_gemm(x, limit + 1)
    assert not uses_gemm(x, 1)  # fp32: oneDNN's kernels, always
    assert not uses_gemm(x.to(torch.float64), 1)


def test_unet_in_bf16_matches_its_stock_twin(gemm_everywhere):
    torch.manual_seed(0)
    unet = UNet(1, 2, depth=5, ngf=8).eval()
    stock = to_stock_layers(UNet(1, 2, depth=5, ngf=8).eval())
    stock.load_state_dict(unet.state_dict())
    x = torch.randn(2, 1, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(unet(x).float(), stock(x).float(), rtol=0.05, atol=0.05)


def test_to_stock_layers_keeps_parameters_names_and_outputs():
    torch.manual_seed(0)
    unet = UNet(1, 2, depth=5, ngf=8).eval()
    params = dict(unet.named_parameters())
    x = torch.randn(1, 1, 32, 32)
    before = unet(x)
    assert to_stock_layers(unet) is unet
    assert not any(isinstance(m, (DownConv, UpConv)) for m in unet.modules())
    assert {type(m) for m in unet.modules()} >= {nn.Conv2d, nn.ConvTranspose2d}
    assert {name: id(p) for name, p in unet.named_parameters()} == {name: id(p) for name, p in params.items()}
    assert torch.equal(unet(x), before)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="bench.training.allocator tunes glibc's malloc only")
def test_retain_freed_memory_stops_training_steps_refaulting_memory():
    # Fresh interpreters run U-Net forward + backward steps and count the minor page faults
    # of the steps after warm-up: glibc's defaults hand freed blocks back to the kernel, so
    # each step faults its memory in again; with the settings the heap is reused.
    script = textwrap.dedent("""
        import resource, sys, torch
        from bench.training.allocator import retain_freed_memory
        from bench.models import UNet
        if sys.argv[1] == "retain":
            assert retain_freed_memory()
        torch.manual_seed(0)
        unet, x = UNet(1, 2, depth=6, ngf=64), torch.randn(1, 1, 128, 128)
        def step():
            unet(x).square().mean().backward()
            unet.zero_grad(set_to_none=True)
        for _ in range(3):
            step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            step()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 3)
    """)

    def faults_per_step(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", script, mode], check=True, capture_output=True, text=True)
        return int(done.stdout.split()[-1])

    # ~65,000 usually (the step's ~250 MB, 4 KiB at a time), 16,353 once: glibc's dynamic mmap threshold
    # decides how much of it is handed back, so the bound asks only for a clear multiple of retain's
    assert faults_per_step("default") > 5_000
    assert faults_per_step("retain") < 2_000  # 0 measured
