#!/usr/bin/env python3
"""Structural checks of src/ that `cargo clippy` does not make (run by `make lint`):

1. No import cycle between modules, parents and children included. A module is a file's path
   under src/ without `.rs` (`source/rest/page`, `config` for config/mod.rs); `crate::a::b::c`
   names the deepest module that exists, `super::x` is resolved from the file's own module,
   and a parent's `child::x` is a use of its child. Uses inside `#[cfg(test)]` modules are
   left out (tests may reach anywhere); `mod child;` alone is not a use.
2. No function longer than MAX_LINES lines, except those listed in LONG_ALLOWED with the
   reason they are long.

Usage: check_structure.py [--self-test] SRC_DIR
"""
import os
import re
import sys

MAX_LINES = 80
# file:function -> why it may be longer
LONG_ALLOWED = {}

USE_RE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
FN_RE = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def modules(src):
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)[:-3].replace(os.sep, "/")
            if rel.endswith("/mod"):
                rel = rel[: -len("/mod")]
            if rel in ("lib", "main"):
                rel = ""
            mods[rel] = path
    return mods


def strip_tests(text):
    """The text without `#[cfg(test)] mod ... { ... }` blocks (brace-matched)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def without_comments_and_strings(text):
    """The code with comments, string and char literals blanked, in one pass (a `//` inside
    a string is not a comment, a quote inside a comment does not start a string)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            j = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if j < 0 else j + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(?:[^'\\\n]|\\[^\n]{1,10}?)'", text[i:]):
            m = re.match(r"'(?:[^'\\\n]|\\[^\n]{1,10}?)'", text[i:])
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def edges(src):
    mods = modules(src)
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        text = without_comments_and_strings(strip_tests(open(path, encoding="utf-8").read()))
        own = mod.split("/") if mod else []
        for m in USE_RE.finditer(text):
            parts = m.group(2).split("::")[1:]
            if m.group(1) == "crate":
                base = []
            else:
                base = own[:-1]
                while parts and parts[0] == "super":
                    base, parts = base[:-1], parts[1:]
            # brace groups (`use crate::{a, b}`) are expanded below
            target = None
            for k in range(len(parts), 0, -1):
                cand = "/".join(base + parts[:k])
                if cand in mods:
                    target = cand
                    break
            if target is None and base and "/".join(base) in mods:
                target = "/".join(base)
            if target is not None and target != mod and not target.startswith(mod + "/") and mod != "":
                graph[mod].add(target)
        # A parent reaching into its own children by relative path (`store::read`).
        for child in [c for c in mods if c.startswith(mod + "/") and "/" not in c[len(mod) + 1:]] if mod else []:
            name = child.rsplit("/", 1)[1]
            if re.search(r"(?<![:\w])" + re.escape(name) + r"::", text):
                graph[mod].add(child)
        for m in re.finditer(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^}]*)\}", text):
            prefix = m.group(2).split("::")[1:]
            base = [] if m.group(1) == "crate" else own[:-1]
            for item in m.group(3).split(","):
                name = item.strip().split("::")[0].split(" ")[0]
                if not name or name == "self":
                    continue
                cand = "/".join(base + prefix + [name])
                if cand not in mods:
                    # an item of the module the group is in (`use super::{Checkpoint}`)
                    cand = "/".join(base + prefix)
                if cand in mods and cand != mod and not cand.startswith(mod + "/") and mod != "":
                    graph[mod].add(cand)
    return graph


def cycles(graph):
    """Strongly connected components with more than one module."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def long_functions(src):
    found = []
    for mod, path in modules(src).items():
        lines = strip_tests(open(path, encoding="utf-8").read()).split("\n")
        i = 0
        while i < len(lines):
            m = FN_RE.match(lines[i])
            if not m or lines[i].rstrip().endswith(";"):
                i += 1
                continue
            indent, name = m.group(1), m.group(2)
            j = i
            while j < len(lines) and not (lines[j].startswith(indent + "}") and len(lines[j].rstrip()) == len(indent) + 1):
                j += 1
            length = j - i + 1
            key = f"{os.path.relpath(path, src)}:{name}"
            if length > MAX_LINES and key not in LONG_ALLOWED:
                found.append((key, length))
            i += 1
    return found


def check(src):
    problems = []
    for comp in cycles(edges(src)):
        problems.append("import cycle: " + " -> ".join(comp))
    for key, n in long_functions(src):
        problems.append(f"{key} is {n} lines (over {MAX_LINES}); split it or list it in LONG_ALLOWED with a reason")
    return problems


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "a"))
        open(os.path.join(d, "lib.rs"), "w").write("pub mod a;\npub mod b;\n")
        open(os.path.join(d, "a", "mod.rs"), "w").write("pub mod c;\nuse crate::b::X;\n")
        open(os.path.join(d, "a", "c.rs"), "w").write("use super::super::b;\n")
        os.makedirs(os.path.join(d, "p"))
        open(os.path.join(d, "p", "mod.rs"), "w").write("pub mod q;\npub struct T;\nfn f() { q::g(); }\n")
        open(os.path.join(d, "p", "q.rs"), "w").write("use super::T;\npub fn g() {}\n")
        open(os.path.join(d, "b.rs"), "w").write("use crate::a::c::Y;\n#[cfg(test)]\nmod tests { use crate::a::Z; }\n"
                                                   "fn long() {\n" + "    let x = 1;\n" * 90 + "}\n")
        problems = check(d)
        assert any("import cycle" in p and "a/c" in p and "b" in p for p in problems), problems
        assert any("b.rs:long is" in p for p in problems), problems
        assert any("import cycle: p -> p/q" in p for p in problems), problems
        assert not any("a -> b" in p and "a/c" not in p for p in problems), problems
    print("check_structure self-test: ok (a cycle and a long function are caught)")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--self-test":
        self_test()
        args = args[1:]
    problems = check(args[0] if args else "src")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("check_structure: no import cycle, no function over %d lines" % MAX_LINES)
