#!/usr/bin/env bash
# The documented offline install: a virtual environment over Debian's site packages (NumPy),
# then `pip install --no-build-isolation .` (setuptools driving CMake), then a call from outside
# the source tree. Usage: pip_install.sh PYTHON WORKDIR (run from the source root).
set -euo pipefail
python=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
"$python" -m venv --system-site-packages "$work/env"
"$work/env/bin/pip" install --no-build-isolation --no-index --quiet . 
cd "$work"
"$work/env/bin/python" - <<'PY'
import numpy as np
import qkv
assert "/env/" in qkv.__file__, qkv.__file__
q = np.random.default_rng(0).standard_normal((1, 2, 5, 8), dtype=np.float32)
out, lse = qkv.scaled_dot_product_attention(q, q, q, is_causal=True, return_lse=True)
assert out.shape == (1, 2, 5, 8) and np.isfinite(out).all()
assert np.allclose(out[:, :, 0], q[:, :, 0])  # the first query sees only itself
print("installed qkv", qkv.__file__, "works")
PY
