"""Installs the Python package qkv, setuptools driving CMake (offline, with Debian's NumPy):

    /usr/bin/python3 -m venv --system-site-packages ENV
    ENV/bin/pip install --no-build-isolation .

CMake configures the project in the setuptools build folder with only the library and the
extension (no CLI, tests or benchmarks), builds the target qkv_python for the interpreter that
runs this file, and the extension is copied into the wheel beside python/qkv/*.py.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent
VERSION = re.search(r"project\(qkv VERSION ([0-9.]+)",
                    (ROOT / "CMakeLists.txt").read_text()).group(1)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(self.build_temp).resolve() / "cmake"
        target = pathlib.Path(self.get_ext_fullpath(ext.name)).resolve()
        options = ["-DCMAKE_BUILD_TYPE=Release", f"-DQKV_PYTHON={sys.executable}",
                   "-DQKV_BUILD_PYTHON=ON", "-DQKV_BUILD_TESTS=OFF", "-DQKV_BUILD_BENCH=OFF",
                   "-DQKV_BUILD_EXAMPLES=OFF", "-DQKV_BUILD_TOOLS=OFF", "-DQKV_WITH_MPI=OFF"]
        options += os.environ.get("QKV_CMAKE_ARGS", "").split()
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *options], check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", "qkv_python",
                        "-j", str(os.cpu_count() or 1)], check=True)
        built = build / "python" / "qkv" / target.name
        if not built.exists():
            sys.exit(f"qkv: CMake did not build {built} (are python3-dev and pybind11-dev "
                     "installed? scripts/setup.sh installs them)")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(
    version=VERSION,
    package_dir={"": "python"},
    packages=["qkv"],
    package_data={"qkv": ["*.pyi", "py.typed"]},
    ext_modules=[Extension("qkv._qkv", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options={"build": {"build_base": "build/setuptools"}},
)
