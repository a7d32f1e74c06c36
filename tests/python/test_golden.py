"""Every golden case of scaled dot-product attention (tests/data/golden, schema in its README)
through the Python API: the output against out_float64 at 1e-5, the gradients against
d*_float64 at 1e-4 (times max(1, max|expected|), without the floor for category g_tiny), or
twice the fp32 error of a naive composition where that is larger, as for any optimised kernel.
The naive composition is PyTorch's own for the plain cases, and the float32 run of the tests'
reference math (conftest.py) for the score-modifier cases, which PyTorch 1.13 lacks."""

import json
import pathlib

import numpy as np
import pytest
import torch
from conftest import assert_close, reference_attention

import qkv

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "data" / "golden"


def cases(kind):
    found = []
    for path in sorted(GOLDEN.glob("*.json")):
        if path.name == "index.json":
            continue
        case = json.loads(path.read_text())
        if case.get("kind") == kind:
            found.append(pytest.param(case, id=case["id"]))
    return found


def array(t):
    """A golden TENSOR: non-finite values are strings."""
    dtype = {"float32": np.float32, "float64": np.float64, "bool": np.bool_}[t["dtype"]]
    data = [float(x) if isinstance(x, str) else x for x in t["data"]]
    return np.array(data, dtype=dtype).reshape(t["shape"])


def options(case):
    p, inputs = case["params"], case["inputs"]
    kw = {}
    if not p.get("scale_is_default", True):
        kw["scale"] = float(np.float32(p["scale"]))
    if p.get("causal"):
        kw["is_causal"] = True
        kw["causal_alignment"] = p["causal"].replace("_", "-")
    for name in ("attn_mask_bool", "attn_mask_additive"):
        if name in inputs:
            kw["attn_mask"] = array(inputs[name])
    return kw


def check(case, name, got, expected_name, rtol):
    expected = np.nan_to_num(array(case["expected"][expected_name + "_float64"]), nan=0.0)
    pytorch32 = np.nan_to_num(array(case["expected"][expected_name + "_float32"]), nan=0.0)
    m = float(np.abs(expected).max())
    bound = rtol * (m if case["category"] == "g_tiny" else max(1.0, m))
    bound = max(bound, 2.0 * float(np.abs(pytorch32 - expected).max()))
    diff = float(np.abs(got - expected).max())
    assert not np.isnan(got).any(), f"{case['id']} {name}: NaN"
    assert diff <= bound, f"{case['id']} {name}: max|diff| {diff:.3g} > {bound:.3g}"


@pytest.mark.parametrize("case", cases("sdpa"))
def test_forward(case):
    q, k, v = (array(case["inputs"][n]) for n in "qkv")
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True, **options(case))
    check(case, "out", out, "out", 1e-5)
    for b, h, i in case.get("nan_rows_BHq", []):
        assert lse[b, h, i] == -np.inf and np.all(out[b, h, i] == 0)


@pytest.mark.parametrize("case", cases("sdpa_grad"))
def test_backward(case):
    q, k, v, g = (array(case["inputs"][n]) for n in ("q", "k", "v", "G"))
    kw = options(case)
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True, **kw)
    check(case, "out", out, "out", 1e-5)
    grads = qkv.scaled_dot_product_attention_backward(g, q, k, v, out, lse, **kw)
    for name, got in zip(("dQ", "dK", "dV"), grads):
        check(case, name, got, name, 1e-4)


def modifier_options(case):
    """The keyword arguments of a score-modifier case: options() plus the modifiers."""
    p, inputs = case["params"], case["inputs"]
    kw = options(case)
    if p["Hq"] != p["Hkv"]:
        kw["enable_gqa"] = True
    if p.get("window") is not None:
        kw["window"] = tuple(p["window"])
    if p.get("softcap") is not None:
        kw["softcap"] = p["softcap"]
    for name in ("alibi_slopes", "sinks"):
        if name in inputs:
            kw[name] = array(inputs[name])
    return kw


def naive_fp32(case, kw):
    """The tests' reference math run in float32 with autograd: (out, lse, {grad name: value})."""
    names = ("q", "k", "v") + (("sinks",) if "sinks" in case["inputs"] else ())
    t = {n: torch.tensor(array(case["inputs"][n]), dtype=torch.float32, requires_grad=True)
         for n in names}
    mask = kw.get("attn_mask")
    out, lse = reference_attention(
        t["q"], t["k"], t["v"], mask=None if mask is None else torch.from_numpy(mask),
        causal=kw.get("causal_alignment") if kw.get("is_causal") else None, scale=kw.get("scale"),
        window=kw.get("window"), softcap=kw.get("softcap"),
        alibi_slopes=None if "alibi_slopes" not in kw else torch.from_numpy(kw["alibi_slopes"]),
        sinks=t.get("sinks"))
    grads = {}
    if "G" in case["inputs"]:
        (out * torch.from_numpy(array(case["inputs"]["G"]))).sum().backward()
        grads = {"d" + (n.upper() if len(n) == 1 else n): t[n].grad.numpy() for n in names}
    return out.detach().numpy(), lse.detach().numpy(), grads


@pytest.mark.parametrize("case", cases("sdpa_ext") + cases("sdpa_ext_grad"))
def test_score_modifiers(case):
    kw = modifier_options(case)
    q, k, v = (array(case["inputs"][n]) for n in "qkv")
    naive_out, naive_lse, naive_grads = naive_fp32(case, kw)
    expected = case["expected"]
    out, lse = qkv.scaled_dot_product_attention(q, k, v, return_lse=True, **kw)
    assert_close("out", out, array(expected["out_float64"]), naive_out)
    assert_close("lse", lse, array(expected["lse_float64"]), naive_lse)
    if case["kind"] != "sdpa_ext_grad":
        return
    grads = qkv.scaled_dot_product_attention_backward(array(case["inputs"]["G"]), q, k, v, out,
                                                      lse, **kw)
    names = ("dQ", "dK", "dV") + (("dsinks",) if "sinks" in kw else ())
    assert len(grads) == len(names)
    for name, got in zip(names, grads):
        assert_close(name, got, array(expected[name + "_float64"]), naive_grads[name], rtol=1e-4)


def test_the_golden_set_is_there():
    assert len(cases("sdpa")) >= 30 and len(cases("sdpa_grad")) >= 3
    assert len(cases("sdpa_ext")) >= 10 and len(cases("sdpa_ext_grad")) >= 5
