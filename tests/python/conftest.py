"""Shared helpers of the Python tests: the float64 reference math in PyTorch and the tolerance
rule of the project's contract.

Legend: B batch, Hq query heads, Hkv key/value heads, Nq queries, Nk keys, d and dv head dims.
"""

import math

import numpy as np
import pytest
import torch


def reference_attention(q, k, v, mask=None, causal=None, scale=None, window=None, softcap=None,
                        alibi_slopes=None, sinks=None):
    """softmax(scale·q·k^T + bias)·v in the dtype of the given torch tensors, with the
    contract's rules: GQA by repeating kv heads, both causal alignments, bool (True = may
    attend) or additive masks, the score modifiers in their order (softcap, ALiBi, mask and
    window, sinks in the denominator), and 0 for a row that sees no key (lse -inf, or the sink),
    where PyTorch's math gives NaN. Returns (out, lse)."""
    B, Hq, Nq, d = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    group = Hq // Hkv
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    s = (q @ k.transpose(-1, -2)) * (scale if scale is not None else 1.0 / math.sqrt(d))
    i = torch.arange(Nq).unsqueeze(1)
    j = torch.arange(Nk).unsqueeze(0)
    diagonal = i + Nk - Nq  # the bottom-right diagonal, which windows and ALiBi follow
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    if alibi_slopes is not None:
        s = s - alibi_slopes.to(s.dtype).view(1, Hq, 1, 1) * (diagonal - j).abs().to(s.dtype)
    visible = torch.ones(Nq, Nk, dtype=torch.bool)
    if causal == "top-left":
        visible = j <= i
    elif causal == "bottom-right":
        visible = j <= diagonal
    if window is not None:
        left, right = window
        if left >= 0:
            visible = visible & (j >= diagonal - left)
        if right >= 0:
            visible = visible & (j <= diagonal + right)
    visible = visible.expand(B, Hq, Nq, Nk)
    if mask is not None:
        if mask.dtype == torch.bool:
            visible = visible & mask
        else:
            s = s + mask.to(s.dtype)
    s = s.masked_fill(~visible, -math.inf)
    if sinks is not None:
        # lse = log(exp(sink_h) + sum_j exp(s_ij)); the sink carries no value.
        sink = sinks.to(s.dtype).view(1, Hq, 1, 1).expand(B, Hq, Nq, 1)
        lse = torch.logsumexp(torch.cat([s, sink], dim=-1), dim=-1, keepdim=True)
        return torch.exp(s - lse) @ v, lse.squeeze(-1)
    # Rows that see no key: softmax over zeros, then zeroed, so that autograd stays finite.
    hidden_row = torch.isneginf(s).all(dim=-1, keepdim=True)
    s = s.masked_fill(hidden_row, 0.0)
    lse = torch.logsumexp(s, dim=-1, keepdim=True)
    p = torch.exp(s - lse).masked_fill(hidden_row, 0.0)
    lse = lse.masked_fill(hidden_row, -math.inf).squeeze(-1)
    return p @ v, lse


def bound(expected, naive, rtol):
    """The contract's bound for an optimised kernel against float64: max(rtol·max(1, max|expected|),
    2·(the error of a naive fp32 composition on the same inputs))."""
    expected = np.asarray(expected, dtype=np.float64)
    finite = np.isfinite(expected)
    scale = max(1.0, float(np.abs(expected[finite]).max(initial=0.0)))
    naive = np.asarray(naive, np.float64)[finite]
    naive_error = float(np.abs(naive - expected[finite]).max(initial=0.0))
    return max(rtol * scale, 2.0 * naive_error)


def assert_close(name, got, expected, naive, rtol=1e-5):
    """max|got - expected| within bound(); -inf entries (lse of hidden rows) must match exactly."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != {expected.shape}"
    inf = np.isinf(expected)
    assert np.array_equal(np.isinf(got), inf), f"{name}: the pattern of infinite entries differs"
    assert not np.isnan(got).any(), f"{name}: NaN"
    diff = float(np.abs(got[~inf] - expected[~inf]).max(initial=0.0))
    limit = bound(expected, naive, rtol)
    assert diff <= limit, f"{name}: max|diff| {diff:.3g} > {limit:.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
