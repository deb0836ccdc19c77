"""lightbrain.norm against torch.nn.LayerNorm / torch.nn.RMSNorm (outputs and gradients), T5's own RMSNorm from
transformers, and the CS336 (2024) reference fixture; and its behaviour in fp16."""

import pytest
import torch
from torch import nn

from conftest import shared
from lightbrain.norm import LayerNorm, RMSNorm


def _randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


@pytest.mark.parametrize("shape", [(5, 32), (2, 7, 64), (3, 2, 4, 16)])
@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_pytorch(shape, bias):
    torch.manual_seed(0)  # the same draw whatever ran before on this worker
    ours = _randomize(LayerNorm(shape[-1], eps=1e-5, bias=bias))
    ref = nn.LayerNorm(shape[-1], eps=1e-5, bias=bias)
    ref.load_state_dict(ours.state_dict())
    x = (torch.randn(shape) * 4 + 2).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    out, expected = ours(x), ref(x2)
    # float32 rounding: outputs reach about 10, where one ulp is 1e-6 (a biased/unbiased variance mix-up is off by 3%)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    out.pow(2).sum().backward()
    expected.pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5) and torch.allclose(ours.weight.grad, ref.weight.grad, atol=1e-4)


@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_rmsnorm_matches_pytorch(eps):
    torch.manual_seed(0)
    ours = _randomize(RMSNorm(48, eps=eps))
    ref = nn.RMSNorm(48, eps=eps)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 10, 48) * 3
    assert (ours(x) - ref(x)).abs().max() <= 1e-6


def test_rmsnorm_matches_t5():
    from transformers.models.t5.modeling_t5 import T5LayerNorm

    ours, ref = _randomize(RMSNorm(32)), T5LayerNorm(32, eps=1e-6)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 32) * 10
    assert (ours(x) - ref(x)).abs().max() <= 1e-6


def test_cs336_reference_fixture():
    d = shared("cs336_2024", "fixtures")
    norm = RMSNorm(64, eps=1e-5)
    norm.load_state_dict(torch.load(d / "rmsnorm_weights.pt", weights_only=True))
    x, expected = (
        torch.load(d / "in_features.pt", weights_only=True),
        torch.load(d / "rmsnorm_expected_output.pt", weights_only=True),
    )
    assert (norm(x) - expected).abs().max() <= 1e-6


@pytest.mark.parametrize("norm", [LayerNorm(64), RMSNorm(64)], ids=["layernorm", "rmsnorm"])
def test_fp16_large_values(norm):
    """Squares of these values overflow fp16: a naive fp16 computation gives inf statistics, ours stays finite and
    correct."""
    x = (torch.randn(4, 64) * 3000).half()
    assert torch.isinf(x.pow(2).mean(-1)).any() and torch.isinf(x.pow(2).sum(-1)).any()
    out = norm(x)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert (out.float() - norm(x.float())).abs().max() <= 1e-2


def test_bf16_keeps_dtype():
    x = torch.randn(2, 16, dtype=torch.bfloat16)
    for norm in (LayerNorm(16), RMSNorm(16)):
        assert norm(x).dtype == torch.bfloat16
