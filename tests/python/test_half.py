"""float16 query, key and value: read by the kernels as f16, in place, without a conversion to
float32 first; checked against the float64 reference on the same (float16) values, within the
project's fused rule: max(1e-5·max(1, max|expected|), 2·naive fp32 error on those values). 
bfloat16 has no NumPy dtype, so it does not come in from Python."""

import numpy as np
import pytest
import torch

import qkv
from conftest import assert_close, reference_attention
from test_sdpa import CAUSAL, expected_backward, shape_id

# (B, Hq, Hkv, Nq, Nk, d, dv): odd sizes, GQA and MQA, Nq != Nk both ways, decode.
SHAPES = [
    (1, 1, 1, 1, 1, 8, 8),
    (2, 3, 3, 5, 7, 16, 16),
    (1, 4, 2, 33, 17, 59, 31),
    (2, 8, 1, 1, 129, 64, 64),
    (1, 2, 2, 97, 97, 3, 5),
]


def half_inputs(rng, shape, which="qkv"):
    """Normal inputs; those named in `which` rounded to float16 (NumPy rounds to nearest even)."""
    B, Hq, Hkv, Nq, Nk, d, dv = shape
    arrays = [rng.standard_normal(s, dtype=np.float32)
              for s in ((B, Hq, Nq, d), (B, Hkv, Nk, d), (B, Hkv, Nk, dv))]
    return [a.astype(np.float16) if name in which else a for name, a in zip("qkv", arrays)]


def check(q, k, v, causal=None, **kwargs):
    out, lse = qkv.scaled_dot_product_attention(
        q, k, v, is_causal=causal is not None, causal_alignment=causal or "top-left",
        enable_gqa=True, return_lse=True, **kwargs)
    assert out.dtype == np.float32 and lse.dtype == np.float32
    # The same values, widened exactly: float64 for the reference, float32 for the naive error.
    t = [torch.from_numpy(a.astype(np.float32)) for a in (q, k, v)]
    exact = [a.numpy() for a in reference_attention(*[a.double() for a in t], causal=causal)]
    naive = [a.numpy() for a in reference_attention(*t, causal=causal)]
    assert_close("out", out, exact[0], naive[0])
    assert_close("lse", lse, exact[1], naive[1])
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("causal", CAUSAL, ids=str)
@pytest.mark.parametrize("which", ["kv", "qkv"])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_float16_matches_float64_on_the_same_values(rng, shape, causal, which, impl):
    check(*half_inputs(rng, shape, which), causal=causal, impl=impl)


def test_float16_is_read_in_place(rng):
    q, k, v = half_inputs(rng, (2, 4, 2, 8, 9, 16, 16))
    want = qkv.scaled_dot_product_attention(q, k, v, enable_gqa=True, impl="reference")
    assert qkv._qkv._kernel_inputs() == (q.ctypes.data, k.ctypes.data, v.ctypes.data)
    # [B,N,H,d] memory seen as [B,H,N,d], and a slice of the head dim: still in place.
    kt = np.ascontiguousarray(k.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    wide = np.zeros(v.shape[:3] + (40,), np.float16)
    wide[..., 8:24] = v
    vs = wide[..., 8:24]
    assert np.array_equal(qkv.scaled_dot_product_attention(q, kt, vs, enable_gqa=True, impl="reference"), want)
    assert qkv._qkv._kernel_inputs() == (q.ctypes.data, kt.ctypes.data, vs.ctypes.data)
    # A strided last dimension: read through a float16 copy, the same result.
    ks = np.ascontiguousarray(np.repeat(k, 2, axis=3))[..., ::2]
    assert np.array_equal(qkv.scaled_dot_product_attention(q, ks, v, enable_gqa=True, impl="reference"), want)
    assert qkv._qkv._kernel_inputs()[1] != ks.ctypes.data


def test_float16_equals_float32_on_the_widened_values_with_the_reference(rng):
    q, k, v = half_inputs(rng, (1, 2, 2, 7, 11, 8, 8), "kv")
    got = qkv.scaled_dot_product_attention(q, k, v, impl="reference")
    wide = qkv.scaled_dot_product_attention(q, k.astype(np.float32), v.astype(np.float32),
                                            impl="reference")
    assert np.array_equal(got, wide)  # float64 accumulation of the same values


def test_float16_with_masks_and_modifiers(rng):
    q, k, v = half_inputs(rng, (2, 4, 2, 9, 11, 16, 8), "kv")
    keep = rng.random((2, 1, 9, 11)) < 0.7
    out = qkv.scaled_dot_product_attention(q, k, v, keep, enable_gqa=True, window=(3, 1),
                                           softcap=5.0, impl="reference")
    t = [torch.from_numpy(a.astype(np.float32)) for a in (q, k, v)]
    mask = torch.from_numpy(keep)
    exact = reference_attention(*[a.double() for a in t], mask, window=(3, 1), softcap=5.0)
    naive = reference_attention(*t, mask, window=(3, 1), softcap=5.0)
    assert_close("out", out, exact[0].numpy(), naive[0].numpy())


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("causal", CAUSAL, ids=str)
@pytest.mark.parametrize("which", ["kv", "qkv"])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_float16_backward_matches_float64_on_the_same_values(rng, shape, causal, which, impl):
    q, k, v = half_inputs(rng, shape, which)
    B, Hq, _, Nq, _, _, dv = shape
    dout = rng.standard_normal((B, Hq, Nq, dv), dtype=np.float32)
    kwargs = dict(is_causal=causal is not None, causal_alignment=causal or "top-left",
                  enable_gqa=True, impl=impl)
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True, **kwargs)
    grads = qkv.scaled_dot_product_attention_backward(dout, q, k, v, out, lse, **kwargs)
    # expected_backward widens the float16 values exactly to each dtype.
    exact = expected_backward(q, k, v, dout, None, causal, torch.float64)
    naive = expected_backward(q, k, v, dout, None, causal, torch.float32)
    for name, got, e64, e32 in zip(("dq", "dk", "dv"), grads, exact, naive):
        assert got.dtype == np.float32 and got.shape == e64.shape
        assert_close(name, got, e64, e32, rtol=1e-4)


def test_float16_backward_equals_float32_on_the_widened_values_with_the_reference(rng):
    q, k, v = half_inputs(rng, (1, 2, 2, 7, 11, 8, 8), "kv")
    dout = rng.standard_normal((1, 2, 7, 8), dtype=np.float32)
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True, impl="reference")
    got = qkv.scaled_dot_product_attention_backward(dout, q, k, v, out, lse, impl="reference")
    k32, v32 = k.astype(np.float32), v.astype(np.float32)
    wide = qkv.scaled_dot_product_attention_backward(dout, q, k32, v32, out, lse,
                                                     impl="reference")
    for a, b in zip(got, wide):
        assert np.array_equal(a, b)  # float64 accumulation of the same values


def test_bfloat16_has_no_numpy_dtype():
    k = torch.zeros(1, 1, 2, 4, dtype=torch.bfloat16)
    q = np.zeros((1, 1, 2, 4), np.float32)
    with pytest.raises(TypeError):
        qkv.scaled_dot_product_attention(q, k, k)
