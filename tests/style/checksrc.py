#!/usr/bin/python3
"""checksrc.py: the project's style rules that a machine can check (curl's
checksrc idea). It reads C sources only and changes nothing.

Rules: no banned calls; no raw allocator calls in host code outside
host/util/mem.c; no // comments; no assignment inside an if/while condition;
every file opens with a comment saying what it owns.
"""
import os
import re
import sys

BANNED = ["strcpy", "strcat", "sprintf", "vsprintf", "atoi", "atol", "atoll",
          "strtok", "gets"]
RAW_ALLOC = ["malloc", "calloc", "realloc", "free", "strdup", "strndup"]
DIRS = ["host", "modules", "tests", "bench", "examples"]
ALLOC_EXEMPT = {os.path.join("host", "util", "mem.c")}


def strip(text):
    """Blank out comments, string and char literals, keeping line breaks."""
    out, i, n = [], 0, len(text)
    line_comments = []
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            line_comments.append(text.count("\n", 0, i) + 1)
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out), line_comments


def conditions(code):
    """Yield (line, text) of each if/while condition."""
    for m in re.finditer(r"\b(if|while)\s*\(", code):
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[j], 0)
            j += 1
        yield code.count("\n", 0, m.start()) + 1, code[m.end():j - 1]


def check_file(path, rel):
    problems = []
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    code, slashes = strip(text)
    for ln in slashes:
        problems.append((ln, "// comment: use /* */"))
    if not text.lstrip().startswith("/*"):
        problems.append((1, "file must open with a comment saying what it owns"))
    names = BANNED + ([] if rel in ALLOC_EXEMPT or not rel.startswith("host")
                      else RAW_ALLOC)
    for name in names:
        for m in re.finditer(r"(?<![\w.>])%s\s*\(" % name, code):
            ln = code.count("\n", 0, m.start()) + 1
            why = "banned call" if name in BANNED else "raw allocator (use mem_*)"
            problems.append((ln, "%s %s()" % (why, name)))
    for ln, cond in conditions(code):
        if re.search(r"(?<![=!<>+\-*/%&|^])=(?!=)", cond):
            problems.append((ln, "assignment inside a condition"))
    return problems


def main(root):
    failed = 0
    files = 0
    for d in DIRS:
        for base, _, names in os.walk(os.path.join(root, d)):
            for name in sorted(names):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(base, name)
                rel = os.path.relpath(path, root)
                files += 1
                for ln, msg in check_file(path, rel):
                    print("%s:%d: %s" % (rel, ln, msg))
                    failed += 1
    print("checksrc: %d files, %d problems" % (files, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
