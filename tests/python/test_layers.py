"""qkv.MultiheadAttention against torch.nn.MultiheadAttention(batch_first=True) (state_dict as
arrays or as a .safetensors file; self and cross attention; PyTorch's masks), and qkv.explain
against `qkv explain --format json`."""

import json
import os
import struct
import subprocess

import numpy as np
import pytest
import torch

import qkv

CLI = os.environ.get("QKV_CLI", "build/qkv")  # set by ctest


def torch_mha(E=16, H=4, kdim=None, vdim=None, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(E, H, batch_first=True, kdim=kdim, vdim=vdim)
    with torch.no_grad():  # non-zero biases, so that a mix-up would show
        for name, p in m.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)
    return m.eval()


def arrays(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def write_safetensors(path, tensors):
    """The standard layout: 8-byte little-endian header length, JSON header, raw F32 data."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        data = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def close(got, want, rtol=1e-5):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= rtol * max(1.0, np.abs(want).max())


def test_self_attention_with_masks():
    module = torch_mha()
    layer = qkv.MultiheadAttention(arrays(module), num_heads=4)
    assert (layer.embed_dim, layer.num_heads, layer.head_dim) == (16, 4, 4)
    x = torch.randn(2, 7, 16)
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[1, 5:] = True
    attn = torch.ones(7, 7, dtype=torch.bool).triu(1)  # True = not allowed (causal)
    additive = torch.randn(7, 7)
    with torch.no_grad():
        for kwargs in ({}, {"key_padding_mask": padding}, {"attn_mask": attn},
                       {"attn_mask": additive, "key_padding_mask": padding}):
            want, want_w = module(x, x, x, **kwargs)
            np_kwargs = {k: v.numpy() for k, v in kwargs.items()}
            got, got_w = layer(x.numpy(), **np_kwargs)
            close(got, want)
            close(got_w, want_w)
    per_head, _ = module(x, x, x, average_attn_weights=False)
    out, weights = layer(x.numpy(), need_weights=False)
    assert weights is None
    close(out, per_head)
    _, per_head_w = layer(x.numpy(), average_attn_weights=False)
    assert per_head_w.shape == (2, 4, 7, 7)


def test_cross_attention_from_a_safetensors_file(tmp_path):
    module = torch_mha(E=12, H=3, kdim=5, vdim=7, seed=1)
    path = tmp_path / "mha.safetensors"
    write_safetensors(path, arrays(module))
    layer = qkv.MultiheadAttention(str(path), 3)
    q, k, v = torch.randn(2, 4, 12), torch.randn(2, 9, 5), torch.randn(2, 9, 7)
    with torch.no_grad():
        want, _ = module(q, k, v, need_weights=False)
    got, _ = layer(q.numpy(), k.numpy(), v.numpy(), need_weights=False)
    close(got, want)
    assert qkv.MultiheadAttention(path, 3).embed_dim == 12  # a PathLike


def test_state_dict_errors_name_the_tensor():
    state = arrays(torch_mha())
    with pytest.raises(ValueError, match="num_heads"):
        qkv.MultiheadAttention(state, 5)
    del state["out_proj.weight"]
    with pytest.raises(ValueError, match="out_proj.weight"):
        qkv.MultiheadAttention(state, 4)
    with pytest.raises(TypeError, match="state_dict: expected a dict of arrays"):
        qkv.MultiheadAttention(42, 4)
    state = arrays(torch_mha())
    state["in_proj_bias"] = state["in_proj_bias"].astype(np.float64)
    with pytest.raises(TypeError, match=r"state_dict\['in_proj_bias'\]: expected float32"):
        qkv.MultiheadAttention(state, 4)
    layer = qkv.MultiheadAttention(arrays(torch_mha()), 4)
    with pytest.raises(ValueError, match="key_padding_mask: expected \\[B,Nk\\]"):
        layer(np.zeros((2, 3, 16), np.float32), key_padding_mask=np.zeros((2, 4), bool))


def cli_json(*args):
    if not os.path.exists(CLI):
        pytest.fail(f"the qkv command is not built at {CLI}")
    run = subprocess.run([CLI, "explain", "--format", "json", *args], capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout)


def test_explain_default_is_the_cli_object():
    got = qkv.explain()
    assert got == cli_json()
    assert got["tokens"] == ["Write", "a", "poem"]
    assert got["schema_version"] == 1 and "X" in got
    assert set(got["heads"][0]["steps"]) >= {"Q", "K", "V", "scores", "scaled", "masked", "output"}
    assert qkv.explain(causal=True) == cli_json("--causal")


def test_explain_arrays_match_the_cli(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3), dtype=np.float32)
    w = [rng.standard_normal((2, 3), dtype=np.float32) for _ in range(3)]
    for name, a in zip(("x", "wq", "wk", "wv"), [x] + w):
        np.save(tmp_path / f"{name}.npy", a)
    files = [f"--{n}={tmp_path / n}.npy" for n in ("x", "wq", "wk", "wv")]
    assert qkv.explain(x, *w, tokens="the cat sat down") == cli_json(
        *files, "--tokens", "the cat sat down")
    with pytest.raises(ValueError, match="give all four or none"):
        qkv.explain(x)
