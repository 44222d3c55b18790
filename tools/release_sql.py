#!/usr/bin/env python3
"""Freezes what a release of the store runs against its database, for the test that the next
release's schema still serves it (crates/store/tests/previous_release.rs):

    python3 tools/release_sql.py REV crates/store/tests/fixtures/previous-release

writes, from git revision REV, the migrations (`migrations/{sqlite,postgres}/*.sql`, byte for
byte) and every SQL statement of the store (`statements.sql`, one per line): each string literal
of crates/store/src/sql.rs and sql/*.rs that is a statement, and the refresh rotation's batch
statement of rotation.rs for one and for two families (its text is built in Rust: the pieces are
taken from the source and joined as `rotation_sql` joins them). Run it at each release with the
release's revision; `REV` is recorded in `RELEASE`."""

import os
import re
import subprocess
import sys

SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)
# A Rust string literal (no raw strings in these files), escapes included.
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)


def git(rev, *args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def show(rev, path):
    return git(rev, "show", f"{rev}:{path}")


def unescape(lit):
    """A Rust literal's value: `\\` + newline + indentation is dropped, `\\"` and `\\\\` kept."""
    out, i = [], 0
    while i < len(lit):
        c = lit[i]
        if c == "\\" and i + 1 < len(lit):
            n = lit[i + 1]
            if n == "\n":
                i += 2
                while i < len(lit) and lit[i] in " \t":
                    i += 1
                continue
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def statements(rev):
    files = ["crates/store/src/sql.rs"] + [
        f"crates/store/src/sql/{n}"
        for n in git(rev, "ls-tree", "--name-only", f"{rev}:crates/store/src/sql").split()
        if n.endswith(".rs")
    ]
    out = []
    for f in files:
        for m in LITERAL.finditer(show(rev, f)):
            text = " ".join(unescape(m.group(1)).split())
            if SQL_START.match(text) and text not in out:
                out.append(text)
    return out


def rotation(rev, n):
    """`rotation_sql(n)` of that release, from its pieces: the head and tail literals pushed
    around the `VALUES` tuples, and the tuple's format string (`{sep}` and `${}` filled in)."""
    src = show(rev, "crates/store/src/rotation.rs")
    body = src[src.index("pub(super) fn rotation_sql"):]
    pushed = [unescape(m) for m in re.findall(r'push_str\(\s*"((?:[^"\\]|\\.)*)"', body, re.S)]
    fmt = unescape(re.search(r'write!\(\s*sql,\s*"((?:[^"\\]|\\.)*)"', body, re.S).group(1))
    head, tail = pushed
    tuples = []
    for i in range(n):
        b = 2 + 8 * i
        t = fmt.replace("{sep}", "" if i == 0 else ", ")
        for k in range(8):
            t = t.replace("${}", f"${b + k}", 1)
        tuples.append(t)
    return " ".join((head + "".join(tuples) + tail).split())


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rev, out = argv
    for backend in ("sqlite", "postgres"):
        d = os.path.join(out, "migrations", backend)
        os.makedirs(d, exist_ok=True)
        path = f"crates/store/migrations/{backend}"
        for name in git(rev, "ls-tree", "--name-only", f"{rev}:{path}").split():
            with open(os.path.join(d, name), "w") as fh:
                fh.write(show(rev, f"{path}/{name}"))
    stmts = statements(rev) + [rotation(rev, 1), rotation(rev, 2)]
    with open(os.path.join(out, "statements.sql"), "w") as fh:
        fh.write("".join(s + "\n" for s in stmts))
    with open(os.path.join(out, "RELEASE"), "w") as fh:
        fh.write(git(rev, "rev-parse", rev))
    print(f"{out}: {len(stmts)} statements of {rev}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
