#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a cycle.

For every crate under crates/, each module (a file under src/) is a node and each `crate::x` or
`super::x` path in its code (comments and `#[cfg(test)] mod tests` left out) an edge to the module
it names. A strongly connected component of more than one module is a cycle, printed with its
members. A module's own submodules and parents do not count: `mod.rs` naming its children, and a
child using its parent's items, is how a module is built, not a cycle.

    scripts/check-module-cycles.py          # exit 1 and the cycles, or exit 0
"""

import os
import re
import sys
from collections import defaultdict

PATH = re.compile(r"\b(crate|super)::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)")


def modules(src):
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] in ("lib", "main", "mod"):
                parts = parts[:-1]
            found["::".join(parts)] = path
    return found


def code_of(path):
    text = open(path, encoding="utf-8").read()
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    return "\n".join(line for line in text.split("\n") if not line.strip().startswith("//"))


def owner(path, known):
    """The longest known module a `::` path starts with."""
    parts = path.split("::")
    for i in range(len(parts), 0, -1):
        candidate = "::".join(parts[:i])
        if candidate in known:
            return candidate
    return None


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


def graph(src):
    known = modules(src)
    edges = defaultdict(set)
    for module, path in known.items():
        if module == "":
            continue  # the crate root declares and re-exports every module
        for kind, rest in PATH.findall(code_of(path)):
            if kind == "super":
                parent = module.rsplit("::", 1)[0] if "::" in module else ""
                rest = f"{parent}::{rest}" if parent else rest
            target = owner(rest, known)
            if target and not related(module, target):
                edges[module].add(target)
    return known, edges


def cycles(nodes, edges):
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return found


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates")
    failed = False
    for crate in sorted(os.listdir(root)):
        src = os.path.join(root, crate, "src")
        if not os.path.isdir(src):
            continue
        known, edges = graph(src)
        for component in cycles(known, edges):
            failed = True
            print(f"{crate}: modules import each other in a cycle: {', '.join(component)}")
            for module in component:
                inside = sorted(t for t in edges[module] if t in component)
                print(f"  {module} -> {', '.join(inside)}")
    if failed:
        sys.exit(1)
    print("check-module-cycles: no module cycle in any crate")


if __name__ == "__main__":
    main()
