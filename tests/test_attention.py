"""lightbrain.attention against PyTorch's F.scaled_dot_product_attention and nn.MultiheadAttention, the CS336 (2024)
reference fixtures, and full attention for the KV cache."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import shared
from lightbrain.attention import KVBuffer, MultiHeadAttention, attention_weights, scaled_dot_product_attention


def close(a, b, tol=1e-5):
    return a.numel() == 0 or (a - b).abs().max().item() <= tol


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 9),
    st.integers(1, 9),
    st.sampled_from([4, 8, 16]),
    st.sampled_from(["none", "bool", "float", "causal", "bool+empty"]),
    st.sampled_from([None, 1.0, 0.3]),
    st.integers(0, 2**16),
)
def test_matches_pytorch(B, H, L, S, E, mask_kind, scale, seed):
    g = torch.Generator().manual_seed(seed)
    if mask_kind == "causal":
        S = L  # causal self-attention: as many keys as queries
    q, k, v = (
        torch.randn(B, H, L, E, generator=g),
        torch.randn(B, H, S, E, generator=g),
        torch.randn(B, H, S, 5, generator=g),
    )
    kw = {"is_causal": True} if mask_kind == "causal" else {}
    if mask_kind in ("bool", "bool+empty"):
        kw = {"mask": torch.rand(B, 1, L, S, generator=g) > 0.4}
        if mask_kind == "bool+empty":
            kw["mask"][:, :, 0] = False  # queries that may attend to nothing
    if mask_kind == "float":
        kw = {"mask": torch.randn(1, H, L, S, generator=g)}
    ours = scaled_dot_product_attention(q, k, v, scale=scale, **kw)
    ref = F.scaled_dot_product_attention(
        q, k, v, attn_mask=kw.get("mask"), is_causal=kw.get("is_causal", False), scale=scale
    )
    if mask_kind.startswith(
        "bool"
    ):  # queries that may attend to nothing: documented as zeros (PyTorch < 2.5 gives NaN)
        empty = ~kw["mask"].any(-1).expand(B, H, L)
        assert (ours[empty] == 0).all()
        ours, ref = ours[~empty], ref[~empty]
    assert close(ours, ref)


def test_weights_are_a_distribution_over_allowed_keys():
    q, k = torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    w = attention_weights(q, k, is_causal=True)
    assert torch.allclose(w.sum(-1), torch.ones(2, 6)) and (w.triu(1) == 0).all()


def test_dropout_is_unbiased_and_off_at_zero():
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 4, 8), torch.randn(1, 6, 8), torch.randn(1, 6, 3)
    clean = scaled_dot_product_attention(q, k, v)
    assert torch.equal(scaled_dot_product_attention(q, k, v, dropout_p=0.0), clean)
    mean = torch.stack([scaled_dot_product_attention(q, k, v, dropout_p=0.3) for _ in range(4000)]).mean(0)
    assert close(mean, clean, tol=0.05) and not torch.equal(scaled_dot_product_attention(q, k, v, dropout_p=0.3), clean)


def test_cs336_reference_fixture():
    d = shared("cs336_2024", "fixtures")
    q, k, v, forbidden, expected = [
        torch.load(d / f"scaled_dot_product_attention_{n}.pt", weights_only=True)
        for n in ("Q", "K", "V", "mask", "expected_output")
    ]
    assert close(scaled_dot_product_attention(q, k, v, mask=~forbidden), expected)  # CS336's mask: True = masked out


def _copy_from(ref: nn.MultiheadAttention, ours: MultiHeadAttention):
    "PyTorch's projections into ours: its q, k, v stacked are our qkv_proj (self) or q_proj and kv_proj (cross)."
    with torch.no_grad():
        if ref._qkv_same_embed_dim:
            wq, wk, wv = ref.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = ref.q_proj_weight, ref.k_proj_weight, ref.v_proj_weight
        bq, bk, bv = ref.in_proj_bias.chunk(3) if ref.in_proj_bias is not None else (None,) * 3
        if ours.cross:
            parts = [(ours.q_proj, [wq], [bq]), (ours.kv_proj, [wk, wv], [bk, bv])]
        else:
            parts = [(ours.qkv_proj, [wq, wk, wv], [bq, bk, bv])]
        for proj, ws, bs in parts:
            proj.weight.copy_(torch.cat(ws))
            if bq is not None:
                proj.bias.copy_(torch.cat(bs))
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        if ref.out_proj.bias is not None:
            ours.out_proj.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("use_sdpa", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_matches_torch_multiheadattention(use_sdpa, bias):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(24, 3, bias=bias, batch_first=True).eval()
    ours = MultiHeadAttention(24, 3, bias=bias, use_sdpa=use_sdpa).eval()
    ours_cross = MultiHeadAttention(24, 3, bias=bias, cross=True, use_sdpa=use_sdpa).eval()
    _copy_from(ref, ours)
    _copy_from(ref, ours_cross)
    x, ctx = torch.randn(3, 7, 24), torch.randn(3, 5, 24)
    forbidden = torch.ones(7, 7, dtype=torch.bool).triu(1)
    assert close(ours(x, is_causal=True)[0], ref(x, x, x, attn_mask=forbidden, need_weights=False)[0])
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    assert close(
        ours_cross(x, context=ctx, mask=~pad[:, None, None, :])[0],
        ref(x, ctx, ctx, key_padding_mask=pad, need_weights=False)[0],
    )


def test_mha_cross_attention_with_other_width():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(16, 2, kdim=10, vdim=10, batch_first=True).eval()
    ours = MultiHeadAttention(16, 2, cross=True, kv_dim=10).eval()
    _copy_from(ref, ours)
    x, ctx = torch.randn(2, 4, 16), torch.randn(2, 6, 10)
    assert close(ours(x, context=ctx)[0], ref(x, ctx, ctx, need_weights=False)[0])


@pytest.mark.parametrize("use_sdpa", [True, False])
def test_kv_cache_equals_full_attention(use_sdpa):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, head_dim=12, use_sdpa=use_sdpa).eval()  # head_dim * n_heads != d_model, as in T5
    x = torch.randn(2, 9, 32)
    bias = torch.randn(1, 4, 9, 9)
    full, (k, v) = mha(x, is_causal=True, position_bias=bias)
    past = KVBuffer(max_len=9)
    outs = [mha(x[:, :3], is_causal=True, position_bias=bias[:, :, :3, :3], past_kv=past)[0]]
    buffer = past.k.data_ptr()
    for t in range(3, 9):
        outs.append(mha(x[:, t : t + 1], is_causal=True, past_kv=past, position_bias=bias[:, :, t : t + 1, : t + 1])[0])
    assert close(torch.cat(outs, 1), full) and close(past.k, k) and close(past.v, v) and len(past) == 9
    assert past.k.data_ptr() == buffer  # written in place: a cache that reallocates (torch.cat) fails here


def test_kv_buffer_refuses_overflow_and_reorders_rows():
    torch.manual_seed(0)
    past, k, v = KVBuffer(max_len=4), torch.randn(3, 2, 3, 5), torch.randn(3, 2, 3, 5)
    past.append(k, v)
    with pytest.raises(ValueError, match="holds 4 positions and 5 do not fit"):
        past.append(k[:, :, :2], v[:, :, :2])
    rows = torch.tensor([2, 0, 0])
    past.reorder(rows)
    assert torch.equal(past.k[:, :, :3], k[rows]) and torch.equal(past.v[:, :, :3], v[rows]) and len(past) == 3
    with pytest.raises(TypeError, match="KVBuffer"):  # the old contract, a (k, v) pair, is refused in one line
        MultiHeadAttention(10, 2)(torch.randn(3, 1, 10), is_causal=True, past_kv=(k, v))


def test_cross_attention_cache_reuses_context():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, cross=True).eval()
    x, ctx = torch.randn(1, 3, 16), torch.randn(1, 5, 16)
    ref, kv = mha(x, context=ctx)
    assert close(mha(x, context=torch.zeros_like(ctx), past_kv=kv)[0], ref)


def test_position_bias_is_additive_and_combines_with_masks():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, scale=1.0).eval()
    x, bias = torch.randn(2, 5, 16), torch.randn(2, 2, 5, 5)
    keep = torch.rand(2, 1, 5, 5) > 0.3
    both = bias.masked_fill(~keep, float("-inf")).masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
    assert close(mha(x, position_bias=bias, mask=keep, is_causal=True)[0], mha(x, mask=both)[0])
    mha.use_sdpa = False
    assert close(mha(x, position_bias=bias, mask=keep, is_causal=True)[0], mha(x, mask=both)[0])


def test_dropout_only_in_training():
    mha = MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(1, 4, 16)
    mha.eval()
    assert torch.equal(mha(x)[0], mha(x)[0])
    mha.train()
    assert not torch.equal(mha(x)[0], mha(x)[0])


def test_bad_shapes():
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="pass cross=True"):
        MultiHeadAttention(16, 2, kv_dim=10)


def test_self_and_cross_attention_refuse_each_others_inputs():
    "A context given to self-attention would be silently ignored (or a missing one crash deep inside): refused."
    x = torch.randn(1, 3, 16)
    with pytest.raises(ValueError, match="self-attention takes no context"):
        MultiHeadAttention(16, 2)(x, context=x)
    with pytest.raises(ValueError, match="cross-attention needs a context"):
        MultiHeadAttention(16, 2, cross=True)(x)


def test_fused_projection_is_three_projections_stacked():
    "qkv_proj's rows are [queries; keys; values]: a wrong order or split would swap keys and values."
    torch.manual_seed(0)
    mha, x = MultiHeadAttention(16, 2, head_dim=5).eval(), torch.randn(2, 3, 16)
    q, k, v = mha.project(x)
    wq, wk, wv = mha.qkv_proj.weight.chunk(3)
    bq, bk, bv = mha.qkv_proj.bias.chunk(3)
    heads = lambda t: t.view(2, 3, 2, 5).transpose(1, 2)
    for ours, w, b in ((q, wq, bq), (k, wk, bk), (v, wv, bv)):
        assert close(ours, heads(x @ w.T + b))
