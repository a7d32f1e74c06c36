"""qkv.torch.scaled_dot_product_attention, the torch.autograd.Function: its gradients against
torch autograd of the float64 math (1e-4), and 5 training steps of a small model with it
against the same steps with PyTorch's own math in fp32 (losses within 1e-4)."""

import math

import numpy as np
import pytest
import torch

import qkv.torch
from conftest import assert_close, reference_attention


def random_inputs(shape, seed):
    B, Hq, Hkv, Nq, Nk, d, dv = shape
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, Hq, Nq, d, generator=g), torch.randn(B, Hkv, Nk, d, generator=g),
            torch.randn(B, Hkv, Nk, dv, generator=g))


def grads_of(function, inputs, dout, dtype):
    leaves = [t.detach().to(dtype).requires_grad_() for t in inputs]
    out = function(*leaves)
    out.backward(dout.to(dtype))
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("shape", [(1, 2, 2, 7, 7, 8, 8), (2, 4, 2, 33, 17, 59, 31),
                                   (1, 8, 1, 64, 96, 64, 64)], ids=str)
@pytest.mark.parametrize("causal", [None, "top-left", "bottom-right"], ids=str)
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_float64_autograd(shape, causal, masked):
    q, k, v = random_inputs(shape, seed=3)
    B, Hq, _, Nq, Nk, _, dv = shape
    mask = None
    if masked:
        mask = torch.rand(B, 1, Nq, Nk, generator=torch.Generator().manual_seed(4)) < 0.8
        mask[..., 1, :] = False
    dout = torch.randn(B, Hq, Nq, dv, generator=torch.Generator().manual_seed(5))

    def bridge(q, k, v):
        return qkv.torch.scaled_dot_product_attention(
            q, k, v, mask, is_causal=causal is not None, enable_gqa=True,
            causal_alignment=causal or "top-left")

    def math_path(q, k, v):
        return reference_attention(q, k, v, mask, causal)[0]

    out, got = grads_of(bridge, (q, k, v), dout, torch.float32)
    out64, exact = grads_of(math_path, (q, k, v), dout, torch.float64)
    out32, naive = grads_of(math_path, (q, k, v), dout, torch.float32)
    assert_close("out", out.numpy(), out64.numpy(), out32.numpy())
    for name, g, e64, e32 in zip(("dq", "dk", "dv"), got, exact, naive):
        assert g.dtype == torch.float32
        assert_close(name, g.numpy(), e64.numpy(), e32.numpy(), rtol=1e-4)


@pytest.mark.parametrize("window", [None, (5, 0), (3, 2)], ids=str)
@pytest.mark.parametrize("causal", [None, "bottom-right"], ids=str)
def test_score_modifiers_and_the_sinks_gradient(window, causal):
    """softcap, ALiBi, the window and sinks together: the gradients of query, key, value and
    sinks against float64 autograd of the reference math."""
    shape = (2, 4, 2, 13, 19, 16, 8)
    q, k, v = random_inputs(shape, seed=6)
    g = torch.Generator().manual_seed(7)
    sinks = torch.randn(4, generator=g)
    slopes = torch.rand(4, generator=g)
    dout = torch.randn(2, 4, 13, 8, generator=g)

    def bridge(q, k, v, sinks):
        return qkv.torch.scaled_dot_product_attention(
            q, k, v, is_causal=causal is not None, causal_alignment=causal or "top-left",
            enable_gqa=True, window=window, softcap=3.0, alibi_slopes=slopes, sinks=sinks)

    def math_path(q, k, v, sinks):
        return reference_attention(q, k, v, causal=causal, window=window, softcap=3.0,
                                   alibi_slopes=slopes, sinks=sinks)[0]

    out, got = grads_of(bridge, (q, k, v, sinks), dout, torch.float32)
    out64, exact = grads_of(math_path, (q, k, v, sinks), dout, torch.float64)
    out32, naive = grads_of(math_path, (q, k, v, sinks), dout, torch.float32)
    assert_close("out", out.numpy(), out64.numpy(), out32.numpy())
    for name, g, e64, e32 in zip(("dq", "dk", "dv", "dsinks"), got, exact, naive):
        assert_close(name, g.numpy(), e64.numpy(), e32.numpy(), rtol=1e-4)


def test_noncontiguous_tensors_and_gradcheck_shapes():
    q, k, v = random_inputs((2, 3, 3, 5, 6, 4, 4), seed=8)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()
    out = qkv.torch.scaled_dot_product_attention(qt, k, v)
    out.sum().backward()
    assert qt.grad.shape == q.shape
    want = qkv.torch.scaled_dot_product_attention(q, k, v)
    assert torch.equal(out.detach(), want)


def test_refuses_non_cpu_and_float64():
    q, k, v = random_inputs((1, 1, 1, 2, 2, 4, 4), seed=1)
    with pytest.raises(TypeError, match="query: expected float32, got float64"):
        qkv.torch.scaled_dot_product_attention(q.double(), k, v)
    meta = torch.empty(1, 1, 2, 4, device="meta")
    with pytest.raises(ValueError, match="query: qkv runs on the CPU, got a tensor on meta"):
        qkv.torch.scaled_dot_product_attention(meta, k, v)


class TinyAttentionModel(torch.nn.Module):
    """Embedding -> causal multi-head self-attention (the attention function swappable) ->
    output projection to the vocabulary."""

    def __init__(self, attention, vocab=11, E=16, H=4):
        super().__init__()
        self.attention, self.H = attention, H
        self.embed = torch.nn.Embedding(vocab, E)
        self.qkv_proj = torch.nn.Linear(E, 3 * E)
        self.out = torch.nn.Linear(E, vocab)

    def forward(self, ids):
        B, N = ids.shape
        x = self.embed(ids)
        q, k, v = self.qkv_proj(x).view(B, N, 3, self.H, -1).permute(2, 0, 3, 1, 4)
        a = self.attention(q, k, v).transpose(1, 2).reshape(B, N, -1)
        return self.out(a + x)


def math_attention(q, k, v):
    """PyTorch's math path in fp32 (what F.scaled_dot_product_attention's math backend does)."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    N = q.shape[-2]
    s = s.masked_fill(~torch.ones(N, N, dtype=torch.bool).tril(), -math.inf)
    return torch.softmax(s, dim=-1) @ v


def train_losses(attention, steps=5):
    torch.manual_seed(0)
    model = TinyAttentionModel(attention)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 11, (4, 12), generator=g)
    losses = []
    for _ in range(steps):
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_five_training_steps_match_pytorch_math():
    ours = train_losses(lambda q, k, v: qkv.torch.scaled_dot_product_attention(q, k, v,
                                                                               is_causal=True))
    theirs = train_losses(math_attention)
    assert ours[-1] < ours[0]
    assert np.abs(np.array(ours) - np.array(theirs)).max() <= 1e-4, (ours, theirs)
