#!/usr/bin/env bash
# Runs the examples of README.md and docs/*.md against a built qkv and checks the output they
# quote, so that the docs stay true; first, check_paths.sh. The test suite runs it (ctest -R
# docs.examples).
#
#   scripts/check_docs.sh [build/qkv] [FILE.md ...]
#
# An example is checked when the line before its fence is `<!-- check-docs -->` and the fence is
# ```console. In the block, a line `$ COMMAND` (continued by lines ending in `\`) is run by bash,
# stdout and stderr together, in a temporary folder shared by the examples of one file, with the
# qkv under test first on PATH; it must exit 0, or N when the command ends with the comment
# `# exit code N`. The lines after it, up to the next `$`, are what
# the doc quotes of its output: each must appear in the output, in order, other lines between
# them allowed; `...` stands for any lines and is skipped, and `[...]` within a line for any text
# (a time, a speed). `<!-- check-docs tolerance=0.1 -->` lets each number of the quoted lines
# differ from the output's by that fraction of itself (for figures that depend on the machine's
# rounding, such as a trained model's losses).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
qkv="${1:-$root/build/qkv}"
shift || true
[ -x "$qkv" ] || { echo "check_docs: no qkv at '$qkv' (build it first)" >&2; exit 2; }
files=("$@")
((${#files[@]})) || files=("$root/README.md" "$root"/docs/*.md)
"$root/scripts/check_paths.sh"  # and every file a doc or comment names exists
python=/usr/bin/python3  # Debian's, installed by scripts/setup.sh
[ -x "$python" ] || python=python3
exec "$python" - "$qkv" "${files[@]}" <<'PYTHON'
import os, re, shutil, subprocess, sys, tempfile

qkv, files = sys.argv[1], sys.argv[2:]
marker = re.compile(r"^<!-- check-docs(?: tolerance=([0-9.]+))? -->\s*$")
number = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def examples(path):
    """(line number, tolerance, [(command, [quoted lines])]) of each marked block."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = marker.match(lines[i])
        if not m:
            i += 1
            continue
        start, tolerance = i + 1, float(m.group(1) or 0)
        if start >= len(lines) or lines[start].strip() != "```console":
            sys.exit(f"{path}:{start + 1}: check-docs must be followed by a ```console fence")
        i = start + 1
        steps = []
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command + "\n" + lines[i]  # bash continues the line
                steps.append((command, []))
            elif steps:
                steps[-1][1].append(line.rstrip())
            i += 1
        yield start + 1, tolerance, steps


def same(expected, actual, tolerance):
    """The quoted line equals the output line: `[...]` matches any text, and each number is
    within the tolerance (a fraction of the quoted number) of the output's."""
    regex, quoted_numbers = "", []
    for i, part in enumerate(expected.split("[...]")):
        if i:
            regex += ".*?"
        at = 0
        for m in number.finditer(part):
            regex += re.escape(part[at:m.start()]) + "(" + number.pattern + ")"
            quoted_numbers.append(m.group())
            at = m.end()
        regex += re.escape(part[at:])
    m = re.fullmatch(regex, actual)
    return m is not None and all(
        e == a or abs(float(a) - float(e)) <= tolerance * abs(float(e))
        for e, a in zip(quoted_numbers, m.groups()))


failures = 0
bin_dir = tempfile.mkdtemp(prefix="qkv-docs-bin-")
os.symlink(os.path.abspath(qkv), os.path.join(bin_dir, "qkv"))
env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
for path in files:
    work = tempfile.mkdtemp(prefix="qkv-docs-")
    try:
        for line_no, tolerance, steps in examples(path):
            for command, quoted in steps:
                where = f"{os.path.relpath(path)}:{line_no}: $ {command.splitlines()[0]}"
                run = subprocess.run(["bash", "-c", command], cwd=work, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     errors="replace")
                output = [l.rstrip() for l in run.stdout.split("\n")]
                expected_code = re.search(r"#\s*exit code (\d+)\s*$", command)
                if run.returncode != (int(expected_code.group(1)) if expected_code else 0):
                    failures += 1
                    print(f"FAIL {where}\n  exit code {run.returncode}\n{run.stdout}")
                    continue
                at = 0
                for q in quoted:
                    if q.strip() in ("", "..."):
                        continue
                    while at < len(output) and not same(q, output[at], tolerance):
                        at += 1
                    if at == len(output):
                        failures += 1
                        print(f"FAIL {where}\n  quoted line not in the output (in order): {q!r}\n"
                              f"  output:\n" + "\n".join("    " + l for l in output))
                        break
                    at += 1
                else:
                    print(f"ok   {where}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
shutil.rmtree(bin_dir, ignore_errors=True)
sys.exit(1 if failures else 0)
PYTHON
