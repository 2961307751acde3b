#!/usr/bin/env python3
"""Checks that README.md's C++ code blocks are, in order, the "// readme:<name>" ... "// readme:end" regions
of examples/trading_engine.cpp (each region dedented, the regions of one name joined by an empty line), so
the README shows code that CI compiles and runs.

  examples/check_readme.py README.md examples/trading_engine.cpp     # exit 1 and a diff when they differ
  examples/check_readme.py --print examples/trading_engine.cpp       # the blocks README.md should have
"""
import difflib
import re
import sys
import textwrap


def regions(source_text):
    groups, order, current = {}, [], None
    for line in source_text.splitlines():
        m = re.fullmatch(r"\s*// readme:([\w-]+)\s*", line)
        if m and m.group(1) == "end":
            current = None
        elif m:
            current = m.group(1)
            if current not in groups:
                groups[current] = []
                order.append(current)
            groups[current].append([])
        elif current is not None:
            groups[current][-1].append(line)
    return [(name, "\n\n".join(textwrap.dedent("\n".join(part)).strip("\n") for part in groups[name]))
            for name in order]


def readme_blocks(readme_text):
    return [m.group(1).rstrip("\n") for m in re.finditer(r"^```cpp\n(.*?)^```", readme_text, re.S | re.M)]


def main(argv):
    if len(argv) == 3 and argv[1] == "--print":
        for name, text in regions(open(argv[2]).read()):
            print(f"```cpp\n{text}\n```\n")
        return 0
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    blocks = readme_blocks(open(argv[1]).read())
    expected = regions(open(argv[2]).read())
    ok = len(blocks) == len(expected)
    if not ok:
        print(f"{argv[1]} has {len(blocks)} C++ blocks, {argv[2]} {len(expected)} readme regions", file=sys.stderr)
    for (name, want), got in zip(expected, blocks):
        if want != got:
            ok = False
            print(f"{argv[1]}: the C++ block for region '{name}' differs from {argv[2]}:", file=sys.stderr)
            sys.stderr.writelines(difflib.unified_diff(got.splitlines(True), want.splitlines(True), "README.md",
                                                       argv[2] + ":" + name))
            print(file=sys.stderr)
    if ok:
        print(f"{argv[1]}: {len(blocks)} C++ blocks match {argv[2]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
