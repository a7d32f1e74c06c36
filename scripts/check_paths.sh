#!/usr/bin/env bash
# Every file that a comment (in C++, CMake, shell and Python sources) or a doc (*.md) names by
# path must exist, so that no pointer outlives a renamed or deleted file. Run by check_docs.sh.
# A name is resolved from the repository's root, from the naming file's folder, from include/qkv/
# or src/, and, when it has no folder, anywhere in the tree. Not checked: #include lines (the
# compiler checks those), build/ paths, placeholders in capitals (FILE.md), suffix shorthands
# (`_avx2.cpp` beside a full name) and the external files listed below.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" - "$root" <<'PYTHON'
import os, re, subprocess, sys

root = sys.argv[1]
external = {"encoder.py"}  # OpenAI's GPT-2 tokenizer source, cited for bytes_to_unicode
files = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, text=True, check=True).stdout.split()
files = [f for f in files if os.path.exists(os.path.join(root, f))]
present = set(files)
basenames = {os.path.basename(f) for f in files}
token = re.compile(r"(?<![\w./*${}-])((?:[\w.-]+/)*[\w-]+\.(?:hpp|cpp|h|md|sh|py|cmake))(?![\w/])")


def exists(path, folder):
    stem = os.path.basename(path).split(".")[0]
    if path.startswith(("build", "/")) or path in external or stem.isupper() or stem.startswith("_"):
        return True
    for c in (path, os.path.normpath(os.path.join(folder, path)), "include/qkv/" + path,
              "src/" + path):
        if c in present or c + ".in" in present:  # .in: a file CMake configures
            return True
    if "/" not in path:
        return path in basenames or path + ".in" in basenames
    return any(f.endswith("/" + path) for f in files)  # from a folder the text is about


bad = []
for f in files:
    if not f.endswith((".hpp", ".cpp", ".h", ".md", ".sh", ".py", ".txt")) or f.startswith("tests/data"):
        continue
    is_cpp, is_doc = f.endswith((".hpp", ".cpp", ".h")), f.endswith(".md")
    with open(os.path.join(root, f), encoding="utf-8", errors="replace") as text:
        for n, line in enumerate(text, 1):
            if not is_doc:
                if line.lstrip().startswith("#include"):
                    continue
                at = line.find("//" if is_cpp else "#")
                if at < 0:
                    continue
                line = line[at:]
            line = re.sub(r"https?://\S+", "", line)
            for m in token.finditer(line):
                if not exists(m.group(1), os.path.dirname(f)):
                    bad.append(f"{f}:{n}: names {m.group(1)}, which does not exist")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(f"check_paths: {len(bad)} name(s) of missing files")
PYTHON
