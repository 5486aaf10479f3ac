#!/usr/bin/env python3
"""Import cycles between the modules of a crate.

Usage: scripts/import-cycles.py CRATE_SRC_DIR [...]

Every module is a file. A module depends on another when its code outside `#[cfg(test)]`
names it or an item in it through a `crate::`, `super::` or `self::` path (in `use` items or
inline). `mod` declarations are not dependencies. Prints each strongly connected group of
modules that depend on each other, with the edges that close the circle, and exits 1 when
there is one.
"""
import os
import re
import sys

PATH = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+|(?:crate|super|self)::\{)")


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    found = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if parts and parts[0] == "bin":
                continue
            found[tuple(parts)] = os.path.join(dirpath, name)
    return found


def code_outside_tests(text):
    """The text with `#[cfg(test)]` items and comments removed."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        k = text.find("{", j)
        semi = text.find(";", j)
        if semi != -1 and (k == -1 or semi < k):
            i = semi + 1
            continue
        depth, k = 0, k
        while k < len(text):
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            k += 1
            if depth == 0:
                break
        i = k
    return "".join(out)


def expand_use_groups(text):
    """`use a::{b, c::{d}}` -> `a::b`, `a::c::d` (enough for resolving module paths)."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(flatten(m.group(1).replace("\n", " ")))
    return paths


def flatten(tree):
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        return [tree.split(" as ")[0].strip()]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in items:
        if item.strip():
            out.extend(prefix + p for p in flatten(item))
    return out


def resolve(path, here, known):
    """The longest known module a path names, from module `here`."""
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    else:
        base = list(here)
        rest = parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
        base = tuple(base)
    best = None
    for n in range(len(rest) + 1):
        candidate = base + tuple(rest[:n])
        if candidate in known:
            best = candidate
    return best


def graph(src):
    known = modules(src)
    edges = {m: set() for m in known}
    for module, path in known.items():
        code = code_outside_tests(open(path, encoding="utf-8").read())
        paths = expand_use_groups(code) + [m.group(1) for m in PATH.finditer(code)]
        # A child module named without `self::` (`api::config_map::build(..)`).
        children = {m[-1] for m in known if len(m) == len(module) + 1 and m[: len(module)] == module}
        for child in children:
            for m in re.finditer(r"(?<![:\w])(" + child + r"(?:::[A-Za-z_][A-Za-z0-9_]*)+)", code):
                paths.append("self::" + m.group(1))
        for p in paths:
            if p.split("::")[0] in children:
                p = "self::" + p
            if not p.startswith(("crate", "super", "self")):
                continue
            target = resolve(p.rstrip(":{ "), module, known)
            if target is not None and target != module:
                edges[module].add(target)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for src in sys.argv[1:]:
        edges = graph(src)
        found = cycles(edges)
        name = lambda m: "::".join(("crate",) + m)
        print(f"{src}: {len(edges)} modules, {sum(len(e) for e in edges.values())} dependencies, {len(found)} cycles")
        for group in found:
            failed = True
            members = set(group)
            print("  cycle: " + ", ".join(name(m) for m in group))
            for m in group:
                for t in sorted(edges[m] & members):
                    print(f"    {name(m)} -> {name(t)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
