"""qkv.scaled_dot_product_attention and its backward on NumPy arrays against PyTorch's float64
math (conftest.reference_attention), within the project's tolerances: the output and lse at
1e-5, gradients at 1e-4 (each max(rtol·max(1, max|expected|), 2·naive fp32 error))."""

import array
import threading
import time

import numpy as np
import pytest
import torch

import qkv
from conftest import assert_close, reference_attention

# (B, Hq, Hkv, Nq, Nk, d, dv): odd sizes, GQA and MQA, Nq != Nk both ways.
SHAPES = [
    (1, 1, 1, 1, 1, 8, 8),
    (2, 3, 3, 5, 7, 16, 16),
    (1, 4, 2, 33, 17, 59, 31),
    (2, 8, 1, 97, 129, 64, 64),
    (1, 2, 2, 64, 3, 3, 5),
]
CAUSAL = [None, "top-left", "bottom-right"]


def shape_id(shape):
    return "B{}_Hq{}_Hkv{}_Nq{}_Nk{}_d{}_dv{}".format(*shape)


def make_inputs(rng, shape):
    B, Hq, Hkv, Nq, Nk, d, dv = shape
    q = rng.standard_normal((B, Hq, Nq, d), dtype=np.float32)
    k = rng.standard_normal((B, Hkv, Nk, d), dtype=np.float32)
    v = rng.standard_normal((B, Hkv, Nk, dv), dtype=np.float32)
    return q, k, v


def torch_mask(mask):
    return None if mask is None else torch.from_numpy(mask)


def expected_forward(q, k, v, mask=None, causal=None, scale=None):
    """(float64 reference, naive fp32 composition) of out and lse, as NumPy arrays."""
    t = [torch.from_numpy(a) for a in (q, k, v)]
    exact = reference_attention(*[a.double() for a in t], torch_mask(mask), causal, scale)
    naive = reference_attention(*t, torch_mask(mask), causal, scale)
    return [a.numpy() for a in exact], [a.numpy() for a in naive]


def check_forward(q, k, v, mask=None, causal=None, scale=None, **kwargs):
    out, lse = qkv.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=causal is not None, scale=scale, enable_gqa=True,
        causal_alignment=causal or "top-left", return_lse=True, **kwargs)
    (out64, lse64), (out32, lse32) = expected_forward(q, k, v, mask, causal, scale)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_close("out", out, out64, out32)
    assert_close("lse", lse, lse64, lse32)
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("causal", CAUSAL, ids=str)
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_forward_matches_float64(rng, shape, causal, impl):
    check_forward(*make_inputs(rng, shape), causal=causal, impl=impl)


MASK_SHAPES = {  # broadcast shapes for [B=2, Hq=4, Nq=9, Nk=11]
    "full": (2, 4, 9, 11), "NqNk": (9, 11), "key_padding": (2, 1, 1, 11),
    "per_batch": (2, 1, 9, 11), "keys_only": (1, 1, 1, 11), "rank3": (4, 9, 11),
}


@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("mask_shape", MASK_SHAPES.values(), ids=MASK_SHAPES.keys())
@pytest.mark.parametrize("causal", CAUSAL, ids=str)
def test_masks_broadcast(rng, kind, mask_shape, causal):
    q, k, v = make_inputs(rng, (2, 4, 2, 9, 11, 16, 8))
    if kind == "bool":
        mask = rng.random(mask_shape) < 0.7
    else:
        mask = rng.standard_normal(mask_shape).astype(np.float32)
        mask[rng.random(mask_shape) < 0.2] = -np.inf
    check_forward(q, k, v, mask=mask, causal=causal)


def test_fully_masked_rows_give_zero(rng):
    q, k, v = make_inputs(rng, (1, 2, 2, 6, 5, 8, 8))
    mask = np.ones((6, 5), dtype=bool)
    mask[2] = False                      # row 2 sees no key
    additive = np.zeros((6, 5), np.float32)
    additive[4] = -np.inf                # row 4 neither
    for m in (mask, additive):
        out, lse = qkv.scaled_dot_product_attention(q, k, v, m, return_lse=True)
        hidden = 2 if m is mask else 4
        assert np.all(out[:, :, hidden] == 0) and np.all(lse[:, :, hidden] == -np.inf)
        assert not np.isnan(out).any()
        check_forward(q, k, v, mask=m)
    # bottom-right causal with Nq > Nk: the first Nq - Nk rows see nothing.
    q, k, v = make_inputs(rng, (1, 1, 1, 7, 3, 8, 8))
    out = check_forward(q, k, v, causal="bottom-right")
    assert np.all(out[0, 0, :4] == 0)


@pytest.mark.parametrize("scale", [0.01, 0.5, 3.0])
def test_scale(rng, scale):
    check_forward(*make_inputs(rng, (1, 2, 2, 8, 8, 16, 16)), scale=scale)


def test_large_scores_do_not_overflow(rng):
    q, k, v = make_inputs(rng, (1, 1, 1, 8, 8, 4, 4))
    check_forward(q * 100, k * 100, v)


def expected_backward(q, k, v, dout, mask, causal, dtype):
    t = [torch.from_numpy(a).to(dtype).requires_grad_() for a in (q, k, v)]
    out, _ = reference_attention(*t, torch_mask(mask), causal)
    out.backward(torch.from_numpy(dout).to(dtype))
    return [a.grad.numpy() for a in t]


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("causal", CAUSAL, ids=str)
@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_float64_autograd(rng, shape, causal, masked):
    q, k, v = make_inputs(rng, shape)
    B, Hq, _, Nq, Nk, _, dv = shape
    dout = rng.standard_normal((B, Hq, Nq, dv), dtype=np.float32)
    mask = None
    if masked:
        mask = rng.random((B, 1, Nq, Nk)) < 0.8
        mask[:, :, 0] = False  # a row with no key: zero gradients
    kwargs = dict(attn_mask=mask, is_causal=causal is not None, enable_gqa=True,
                  causal_alignment=causal or "top-left")
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True, **kwargs)
    grads = qkv.scaled_dot_product_attention_backward(dout, q, k, v, out, lse, **kwargs)
    exact = expected_backward(q, k, v, dout, mask, causal, torch.float64)
    naive = expected_backward(q, k, v, dout, mask, causal, torch.float32)
    for name, got, e64, e32 in zip(("dq", "dk", "dv"), grads, exact, naive):
        assert got.shape == e64.shape
        assert_close(name, got, e64, e32, rtol=1e-4)


def test_dropout_reproducible_and_shared_with_backward(rng):
    q, k, v = make_inputs(rng, (1, 2, 2, 16, 16, 8, 8))
    dout = rng.standard_normal((1, 2, 16, 8), dtype=np.float32)
    kw = dict(dropout_p=0.3, dropout_seed=7)
    a = qkv.scaled_dot_product_attention(q, k, v, **kw)
    b = qkv.scaled_dot_product_attention(q, k, v, **kw)
    c = qkv.scaled_dot_product_attention(q, k, v, dropout_p=0.3, dropout_seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # The fused kernels and the reference draw the same mask from the seed.
    ref, lse = qkv.scaled_dot_product_attention(q, k, v, impl="reference", return_lse=True, **kw)
    assert np.abs(a - ref).max() < 1e-5
    fused = qkv.scaled_dot_product_attention_backward(dout, q, k, v, a, lse, **kw)
    exact = qkv.scaled_dot_product_attention_backward(dout, q, k, v, ref, lse, impl="reference",
                                                      **kw)
    for got, want in zip(fused, exact):
        assert np.abs(got - want).max() < 1e-4 * max(1.0, np.abs(want).max())


def test_strided_inputs_give_the_same_numbers(rng):
    q, k, v = make_inputs(rng, (2, 4, 2, 12, 10, 8, 8))
    want = qkv.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    # [B,N,H,d] transposed to [B,H,N,d]; a sliced head dim; a reversed batch.
    qt = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    wide = np.zeros(k.shape[:3] + (20,), np.float32)
    wide[..., 3:11] = k
    ks = wide[..., 3:11]
    vr = np.ascontiguousarray(v[::-1])[::-1]
    assert not qt.flags.c_contiguous and not ks.flags.c_contiguous and vr.strides[0] < 0
    got = qkv.scaled_dot_product_attention(qt, ks, vr, enable_gqa=True)
    assert np.array_equal(got, want)


def test_buffer_protocol_objects(rng):
    q, k, v = make_inputs(rng, (1, 1, 1, 4, 4, 8, 8))
    want = qkv.scaled_dot_product_attention(q, k, v)
    flat = array.array("f", q.ravel().tolist())
    mq = memoryview(flat).cast("B").cast("f", q.shape)
    got = qkv.scaled_dot_product_attention(mq, memoryview(k), torch.from_numpy(v))
    assert np.array_equal(got, want)


def test_inputs_are_read_in_place_when_their_strides_allow(rng):
    q, k, v = make_inputs(rng, (2, 2, 2, 8, 8, 16, 16))
    want = qkv.scaled_dot_product_attention(q, k, v)
    assert qkv._qkv._kernel_inputs() == (q.ctypes.data, k.ctypes.data, v.ctypes.data)
    # [B,N,H,d] memory seen as [B,H,N,d], and a slice of the head dim: rows still contiguous.
    qt = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    wide = np.zeros(k.shape[:3] + (40,), np.float32)
    wide[..., 8:24] = k
    ks = wide[..., 8:24]
    assert np.array_equal(qkv.scaled_dot_product_attention(qt, ks, v), want)
    assert qkv._qkv._kernel_inputs() == (qt.ctypes.data, ks.ctypes.data, v.ctypes.data)
    # Negative strides or a strided last dimension: read through a copy.
    qr = np.ascontiguousarray(q[::-1])[::-1]
    vs = np.ascontiguousarray(np.repeat(v, 2, axis=3))[..., ::2]
    assert np.array_equal(qkv.scaled_dot_product_attention(qr, k, vs), want)
    seen = qkv._qkv._kernel_inputs()
    assert seen[0] != qr.ctypes.data and seen[1] == k.ctypes.data and seen[2] != vs.ctypes.data
    # Memory written after the call is not what the kernel read: the output is its own array.
    out = qkv.scaled_dot_product_attention(q, k, v)
    q[...] = 0
    assert np.array_equal(out, want)


def test_output_owns_its_memory(rng):
    q, k, v = make_inputs(rng, (1, 2, 2, 8, 8, 16, 16))
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True)
    del q, k, v
    assert out.flags.writeable and out.flags.c_contiguous and out.shape == (1, 2, 8, 16)
    assert lse.shape == (1, 2, 8) and np.isfinite(out).all()


def test_gil_is_released_while_the_kernel_runs(rng):
    q, k, v = make_inputs(rng, (1, 2, 2, 512, 512, 64, 64))
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.01)
    try:
        start = time.perf_counter()
        qkv.scaled_dot_product_attention(q, k, v, impl="reference", threads=1)
        end = time.perf_counter()
    finally:
        done.set()
        ticker.join()
    during = [t for t in ticks if start < t < end]
    assert end - start > 0.05 and len(during) >= 3, (end - start, len(during))
