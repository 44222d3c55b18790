#!/usr/bin/env python3
"""Checks the workspace's shape (ARCHITECTURE.md): which crate may import which, no import
cycle between the files of one crate, no file over 600 lines and no function over 100 lines
outside tests. Exits 1 with every violation listed; `make arch` and `make lint` run it."""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Which of our crates each crate may depend on (normal dependencies).
ALLOWED = {
    "portcullis-core": set(),
    "portcullis-store": set(),
    "portcullis-blamka": set(),
    "portcullis-authn": {"portcullis-core"},
    "portcullis-authz": {"portcullis-core"},
    "portcullis-issuer": {"portcullis-core", "portcullis-store", "portcullis-blamka"},
    "portcullis-gateway": {
        "portcullis-core",
        "portcullis-authn",
        "portcullis-authz",
        "portcullis-issuer",
        "portcullis-store",
    },
}
# Outside crates a crate must not depend on (authz is pure RBAC: no HTTP types).
FORBIDDEN_EXTERNAL = {"portcullis-authz": {"http", "pingora", "pingora-core", "axum", "hyper"}}
# Crates whose files must not import each other in a cycle.
ACYCLIC = ["core", "authn", "authz", "issuer", "gateway"]
MAX_FILE_LINES = 600
MAX_FN_LINES = 100


def crate_deps(errors):
    run = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        errors.append(f"cargo metadata failed: {run.stderr.strip()}")
        return
    meta = json.loads(run.stdout)
    for pkg in meta["packages"]:
        name = pkg["name"]
        normal = {d["name"] for d in pkg["dependencies"] if d.get("kind") is None}
        ours = {d for d in normal if d.startswith("portcullis")}
        if name in ALLOWED:
            for bad in sorted(ours - ALLOWED[name]):
                errors.append(f"{name} depends on {bad} (ARCHITECTURE.md forbids it)")
        for bad in sorted(normal & FORBIDDEN_EXTERNAL.get(name, set())):
            errors.append(f"{name} depends on {bad} (it must stay free of HTTP types)")
        if name != "portcullis" and "portcullis-gateway" in normal:
            errors.append(f"{name} depends on portcullis-gateway: nothing but the binary may")


def module_of(src, path):
    """`a/b.rs` -> `a::b`, `lib.rs` -> ``, `a/tests.rs` stays `a::tests`."""
    rel = os.path.relpath(path, src)[:-3]
    if rel == "lib":
        return ""
    return rel.replace(os.sep, "::")


def is_test_file(path):
    parts = path.split(os.sep)
    base = os.path.basename(path)
    return "tests" in parts or base in ("tests.rs", "testing.rs") or base.endswith("_tests.rs")


def file_imports(src, files):
    """Edges between the crate's top-level modules' files, from `crate::` and `super::` paths."""
    mods = {module_of(src, f): f for f in files}
    edges = {}
    for mod, path in mods.items():
        if is_test_file(path):
            continue
        text = strip_tests(open(path, encoding="utf-8").read())
        targets = set()
        parent = mod.rsplit("::", 1)[0] if "::" in mod else ""
        for root, path in paths(text):
            base = "" if root == "crate" else parent
            segs = path
            # The longest module path that is a file of this crate.
            best = None
            for i in range(len(segs), 0, -1):
                cand = "::".join(([base] if base else []) + segs[:i])
                if cand in mods:
                    best = cand
                    break
            if best is None:
                best = base
            if best != mod and not is_test_file(mods.get(best, "")):
                targets.add(best)
        # A `foo.rs` that declares `mod bar;` owns `foo/bar.rs`: a child using its parent's
        # items is the module tree, not a cycle, so parent -> child edges are not counted.
        edges[mod] = {t for t in targets if not t.startswith(mod + "::") and t != mod}
    return edges


def paths(text):
    """Every `crate::a::b` / `super::a` path in `text`, grouped imports (`crate::{a, b::c}`)
    expanded, as (root, [segments])."""
    out = []
    for m in re.finditer(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)*)(::\{)?", text):
        segs = [s for s in m.group(2).split("::") if s]
        if m.group(3):
            depth, j = 1, m.end()
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            inner = text[m.end() : j - 1]
            for item in split_top(inner):
                head = re.match(r"\s*([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", item)
                if head and head.group(1) != "self":
                    out.append((m.group(1), segs + head.group(1).split("::")))
                else:
                    out.append((m.group(1), segs))
        elif segs:
            out.append((m.group(1), segs))
    return out


def split_top(inner):
    """Splits a use-group's items at top-level commas."""
    items, depth, cur = [], 0, []
    for ch in inner:
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur.append(ch)
    items.append("".join(cur))
    return [i for i in items if i.strip()]


def strip_tests(text):
    """Drops `#[cfg(test)] mod x { ... }` blocks so test-only imports don't count."""
    out = []
    i = 0
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text[i:])
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : i + m.start()])
        j = i + m.end()
        depth = 1
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    return "".join(out)


def cycles(edges):
    found = []
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(edges.get(n, ())):
            if state.get(t) == 1:
                found.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return found


def rust_files(d):
    for dirpath, _, names in os.walk(d):
        for n in names:
            if n.endswith(".rs"):
                yield os.path.join(dirpath, n)


FN_RE = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def long_functions(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    found = []
    i = 0
    while i < len(lines):
        m = FN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent = m.group(1)
        # The body ends at the first line closing at the fn's indentation.
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith("{") and ";" not in lines[j]:
            j += 1
        if j < len(lines) and lines[j].rstrip().endswith(";"):
            i = j + 1
            continue
        k = j + 1
        while k < len(lines) and lines[k] != indent + "}":
            k += 1
        if k - i + 1 > MAX_FN_LINES:
            found.append((m.group(2), i + 1, k - i + 1))
        i = k + 1
    return found


def sizes(errors):
    dirs = [os.path.join(ROOT, "src")] + [
        os.path.join(ROOT, "crates", c, "src") for c in sorted(os.listdir(os.path.join(ROOT, "crates")))
    ]
    for d in dirs:
        for f in rust_files(d):
            rel = os.path.relpath(f, ROOT)
            if is_test_file(f):
                continue
            n = open(f, encoding="utf-8").read().count("\n")
            if n > MAX_FILE_LINES:
                errors.append(f"{rel}: {n} lines (at most {MAX_FILE_LINES} outside tests)")
            for name, line, length in long_functions(f):
                errors.append(f"{rel}:{line}: fn {name} is {length} lines (at most {MAX_FN_LINES})")


def main():
    errors = []
    crate_deps(errors)
    for c in ACYCLIC:
        src = os.path.join(ROOT, "crates", c, "src")
        edges = file_imports(src, list(rust_files(src)))
        for cyc in cycles(edges):
            errors.append(f"crates/{c}: import cycle between files: {' -> '.join(m or 'lib' for m in cyc)}")
    sizes(errors)
    for e in errors:
        print(e)
    if errors:
        print(f"arch: {len(errors)} violation(s)", file=sys.stderr)
        sys.exit(1)
    print("arch: crate arrows, file cycles and sizes ok")


if __name__ == "__main__":
    main()
