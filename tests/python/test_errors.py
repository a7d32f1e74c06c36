"""Bad input raises ValueError (qkv.Error) or TypeError with a message naming the argument, the
rule and the shapes, and never takes the interpreter down."""

import numpy as np
import pytest

import qkv


def inputs(Hq=2, Hkv=2, Nq=4, Nk=5, d=8, dv=8):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((1, Hq, Nq, d), dtype=np.float32),
            rng.standard_normal((1, Hkv, Nk, d), dtype=np.float32),
            rng.standard_normal((1, Hkv, Nk, dv), dtype=np.float32))


def raises(kind, *fragments, **kwargs):
    """Calls the forward with inputs() changed by kwargs; checks the error and its message."""
    q, k, v = inputs()
    args = dict(query=q, key=k, value=v)
    args.update(kwargs)
    with pytest.raises(kind) as info:
        qkv.scaled_dot_product_attention(**args)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_wrong_ranks():
    q, _, _ = inputs()
    raises(ValueError, "q: expected rank 4 [B,Hq,Nq,d]", "[2, 4, 8]", query=q[0])
    raises(ValueError, "k: expected rank 4", key=np.zeros((5, 8), np.float32))


def test_zero_sized_dimension():
    raises(ValueError, "q: every dimension must be >= 1", query=np.zeros((1, 2, 0, 8), np.float32))


def test_mismatched_heads():
    q, k, v = inputs(Hq=3, Hkv=2)
    with pytest.raises(ValueError, match=r"multiple of kv heads Hkv \(2\).*q \[1, 3, 4, 8\]"):
        qkv.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    q, k, v = inputs(Hq=4, Hkv=2)
    with pytest.raises(ValueError, match=r"enable_gqa: query heads Hq \(4\) differ"):
        qkv.scaled_dot_product_attention(q, k, v)
    raises(ValueError, "v: kv heads Hkv must equal k's", value=inputs(Hkv=1)[2])


def test_mismatched_sizes():
    raises(ValueError, "k: head dim d must equal q's", key=inputs(d=4)[1])
    raises(ValueError, "v: key count Nk must equal k's", value=inputs(Nk=3)[2])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.uint8, np.complex64])
def test_other_dtypes_are_type_errors(dtype):
    q, _, _ = inputs()
    error = raises(TypeError, "query: expected float32 or float16, got", query=q.astype(dtype))
    assert np.dtype(dtype).name in str(error)


def test_float16_is_refused_by_name_where_the_kernels_do_not_read_it():
    raises(TypeError, "attn_mask: expected bool or float32, got float16",
           "only as the query, key and value", attn_mask=np.zeros((4, 5), np.float16))
    raises(TypeError, "alibi_slopes: expected float32, got float16",
           alibi_slopes=np.zeros(2, np.float16))


def test_objects_without_a_buffer():
    raises(TypeError, "query: expected a NumPy array", "list", query=[[1.0]])
    raises(TypeError, "value: expected a NumPy array", value=None)


def test_big_endian():
    q, _, _ = inputs()
    raises(TypeError, "query: big-endian", query=q.astype(">f4"))


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -1.0, 1e300])
def test_bad_scale(scale):
    raises(ValueError, "scale: must be finite and > 0", scale=scale)


def test_bad_options():
    raises(ValueError, "dropout_p: must be in [0, 1)", dropout_p=1.0)
    raises(ValueError, "dropout_p: must be in [0, 1)", dropout_p=float("nan"))
    raises(ValueError, "impl: expected reference, fused or auto, got 'fast'", impl="fast")
    raises(ValueError, "causal_alignment: expected none, top-left or bottom-right",
           causal_alignment="top")
    raises(ValueError, "causal_alignment: expected top-left or bottom-right",
           causal_alignment="none")
    raises(ValueError, "threads: must be >= 0", threads=-1)


def test_wrong_mask_shape():
    raises(ValueError, "mask: a boolean mask of shape [4, 4] does not broadcast to [B,Hq,Nq,Nk] = "
           "[1, 2, 4, 5]", attn_mask=np.ones((4, 4), bool))
    raises(ValueError, "mask: a float mask of shape [5]", attn_mask=np.zeros(5, np.float32))
    raises(TypeError, "attn_mask: expected bool or float32, got int64",
           attn_mask=np.ones((4, 5), np.int64))


def test_bad_score_modifiers():
    raises(ValueError, "window: expected (left, right), two ints >= -1 or None", window=3)
    raises(ValueError, "window: expected (left, right)", window=(1, 2, 3))
    raises(ValueError, "window: expected (left, right)", window=(1.5, 0))
    raises(ValueError, "window: each side must be >= -1", window=(-2, 0))
    raises(ValueError, "softcap: expected a real number, got 'big'", softcap="big")
    raises(ValueError, "softcap: must be finite and > 0, got -1", softcap=-1.0)
    raises(ValueError, "alibi_slopes: expected one value per query head, shape [Hq] = [2], got [3]",
           alibi_slopes=np.zeros(3, np.float32))
    raises(ValueError, "sinks: every value must be finite, got inf for head 1",
           sinks=np.array([0.0, np.inf], np.float32))
    raises(TypeError, "sinks: expected float32", sinks=np.zeros(2, np.int32))


def test_backward_with_a_resized_or_released_buffer():
    q, k, v = inputs()
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True)
    dout = np.ones_like(out)
    lse = lse.copy()
    lse.resize((1, 2, 3), refcheck=False)
    with pytest.raises(ValueError, match=r"lse \[1, 2, 3\] do not match"):
        qkv.scaled_dot_product_attention_backward(dout, q, k, v, out, lse)
    view = memoryview(q)
    view.release()
    with pytest.raises(ValueError, match="released"):
        qkv.scaled_dot_product_attention(view, k, v)
    with pytest.raises(ValueError, match=r"grad_out: expected the output's shape"):
        qkv.scaled_dot_product_attention_backward(dout[:, :1], q, k, v, out, lse)


def test_inputs_are_released_after_a_call():
    """The call holds the buffers only while it runs: the inputs can be resized afterwards."""
    q, k, v = inputs()
    qkv.scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError):
        qkv.scaled_dot_product_attention(q, k, v, scale=-1.0)
    q.resize((2, 2, 4, 8), refcheck=False)
    k.resize((1, 2, 3, 8), refcheck=False)


def test_error_is_a_value_error():
    assert issubclass(qkv.Error, ValueError)
    raises(qkv.Error, "scale", scale=-1.0)
