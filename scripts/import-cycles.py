#!/usr/bin/env python3
"""Import cycles between the modules of a Rust crate, read from its source text.

    scripts/import-cycles.py SRC_DIR...      (e.g. operator/src api-server/src)

Every module file (a.rs, a/mod.rs) is a node; `use crate::...`, `use super::...` and paths
written out in code (`crate::store::scans::ScanStore`) are edges to the module they name (the
longest module path that exists), `mod` declarations and `pub use` re-exports of a child are
not counted as the child depending on its parent. Test modules (`#[cfg(test)] mod tests`) are
left out, and so are the modules declared under `#[cfg(test)]`. The cycles are reported
three ways:

  files      between module files;
  top-level  between the crate's top-level modules (everything under `auth/` is `auth`);
  siblings   under each directory module, between its children collapsed like top-level.

It also lists the edges from a module to one of its ancestors (a child reaching into its
parent). Exit status 1 when there is a cycle or such an edge.
"""

import os
import re
import sys
from collections import defaultdict


def module_files(src):
    """(module path, file) for every .rs file below src; `crate` for lib.rs/main.rs."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel in (["lib"], ["main"]):
                if rel == ["main"]:
                    continue  # the binary is its own crate; it only uses the library
                mod = ("crate",)
            elif rel[-1] == "mod":
                mod = ("crate", *rel[:-1])
            else:
                mod = ("crate", *rel)
            out[mod] = path
    return out


def strip_tests_and_comments(text):
    # Comments and strings would give false edges; tests may reach anywhere.
    token = re.compile(
        r'//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|\'(?:\\[^\']+|[^\'\\])\'',
        re.S,
    )
    text = token.sub(lambda m: '""' if m.group(0)[:1] in "rb\"" else " ", text)
    m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    return text


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    if "{" not in tree:
        return [tree]
    head, rest = tree.split("{", 1)
    body = rest[: rest.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [head + p for part in parts if part.strip() for p in expand_use(part)]


def references(mod, text, children):
    """Module paths (as tuples) that the file of `mod` names, resolved from crate root."""
    refs = []
    uses = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for path in expand_use(m.group(1)):
            uses.append(path.split(" as ")[0].strip())
    # Paths written out in code.
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", text):
        uses.append(m.group(1))
    # Paths through a child module (`jwt::verify(...)` after `mod jwt`).
    for m in re.finditer(r"(?<![\w:])(\w+)(?:::\w+)+", text):
        if m.group(1) in children:
            uses.append(m.group(0))
    for path in uses:
        seg = [s for s in path.split("::") if s]
        if not seg:
            continue
        if seg[0] == "crate":
            base = ["crate"]
            seg = seg[1:]
        elif seg[0] == "super":
            base = list(mod)
            while seg and seg[0] == "super":
                base = base[:-1]
                seg = seg[1:]
        elif seg[0] == "self":
            base = list(mod)
            seg = seg[1:]
        else:
            # A child module named directly (`use jwt::Claims` after `mod jwt`).
            base = list(mod)
        refs.append(tuple(base + seg))
    return refs


def resolve(ref, modules):
    for n in range(len(ref), 0, -1):
        if ref[:n] in modules:
            return ref[:n]
    return None


def pub_use_children(mod, text):
    """Children that the module re-exports (`pub use jwt::Role`): not a dependency of theirs."""
    out = set()
    for m in re.finditer(r"\bpub\s+use\s+([^;]+);", text):
        for path in expand_use(m.group(1)):
            seg = [s for s in path.split("::") if s]
            if seg and seg[0] == "self":
                seg = seg[1:]
            if seg and seg[0] not in ("crate", "super"):
                out.add(mod + (seg[0],))
    return out


def sccs(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def name(mod):
    return "::".join(mod[1:]) or "crate"


def print_cycles(cycles, edges):
    for c in cycles:
        print("  cycle: " + " <-> ".join(name(m) for m in c))
        for a in c:
            for b in sorted(edges[a]):
                if b in c:
                    print(f"    {name(a)} -> {name(b)}")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    return max(check(src) for src in sys.argv[1:])


def test_only(files):
    """Modules declared under `#[cfg(test)]` (`#[cfg(test)] mod tests;`), with their children."""
    declared = set()
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;")
    for mod, path in files.items():
        with open(path, encoding="utf-8") as f:
            for m in pattern.finditer(f.read()):
                declared.add(mod + (m.group(1),))
    return {m for m in files if any(m[: len(d)] == d for d in declared)}


def check(src):
    print(f"{src}:")
    files = module_files(src)
    for mod in test_only(files):
        del files[mod]
    modules = set(files)
    edges = defaultdict(set)
    for mod, path in files.items():
        with open(path, encoding="utf-8") as f:
            text = strip_tests_and_comments(f.read())
        reexported = pub_use_children(mod, text)
        children = {m[-1] for m in modules if m[:-1] == mod}
        for ref in references(mod, text, children):
            target = resolve(ref, modules)
            if target is None or target == mod or target == ("crate",):
                continue
            if target in reexported:
                continue
            edges[mod].add(target)

    cycles = sccs(modules, edges)
    print(f"files: {len(modules)} modules, {sum(map(len, edges.values()))} edges, {len(cycles)} cycles")
    print_cycles(cycles, edges)
    found = bool(cycles)

    # Collapsed: under each directory module (the crate root included), between its children.
    parents = sorted({m[:-1] for m in modules if len(m) > 1})
    for parent in parents:
        depth = len(parent) + 1
        collapsed = defaultdict(set)
        kids = set()
        for a, bs in edges.items():
            if a[: len(parent)] != parent or len(a) < depth:
                continue
            for b in bs:
                if b[: len(parent)] != parent or len(b) < depth or a[:depth] == b[:depth]:
                    continue
                collapsed[a[:depth]].add(b[:depth])
                kids.update((a[:depth], b[:depth]))
        label = "top-level" if parent == ("crate",) else f"siblings in {name(parent)}"
        cs = sccs(kids, collapsed)
        if parent == ("crate",) or cs:
            print(f"{label}: {len(cs)} cycles")
        print_cycles(cs, collapsed)
        found = found or bool(cs)

    upward = [(a, b) for a, bs in edges.items() for b in bs if len(b) < len(a) and a[: len(b)] == b]
    print(f"child -> ancestor edges: {len(upward)}")
    for a, b in sorted(upward):
        print(f"  {name(a)} -> {name(b)}")
    return 1 if found or upward else 0


if __name__ == "__main__":
    sys.exit(main())
