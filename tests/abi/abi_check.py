#!/usr/bin/python3
"""abi_check.py: compare abi/ccm_provider.h with the committed abidw baseline.

It owns the rule "the ABI only grows at the end": a probe object that mentions
every ABI type is built from a header, dumped with abidw and diffed with
abidiff against abi/baseline/. Growth at the end of a struct is accepted only
with a CCM_ABI_MINOR bump; anything else (a removed or moved field, a changed
type or enumerator value, a removed function) fails.

  abi_check.py check    --cc CC --src DIR   the real header against the baseline
  abi_check.py selftest --cc CC --src DIR   prove the check fails when it must
  abi_check.py dump     --cc CC --src DIR   rewrite the baseline (after a bump)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Report lines that mean an incompatible change, whatever the exit code says.
INCOMPATIBLE = [
    (re.compile(r"data member deletion"), "a struct field was removed"),
    (re.compile(r"offset changed from"), "a struct field moved"),
    (re.compile(r"name changed from"), "a type changed"),
    (re.compile(r"enumerator deletion"), "an enumerator was removed"),
    (re.compile(r"enumerator change"), "an enumerator value changed"),
    (re.compile(r"return type changed"), "a function return type changed"),
    (re.compile(r"parameter \d+ of type .* was (added|removed)"),
     "a function parameter was added or removed"),
    (re.compile(r"[1-9]\d* Removed"), "a symbol was removed"),
    (re.compile(r"type size changed from (\d+) to (\d+)"), None),  # see below
]


def header_minor(header):
    with open(header, encoding="utf-8") as f:
        m = re.search(r"#define CCM_ABI_MINOR (\d+)", f.read())
    if not m:
        sys.exit("abi_check: CCM_ABI_MINOR not found in " + header)
    return int(m.group(1))


def header_major(header):
    with open(header, encoding="utf-8") as f:
        m = re.search(r"#define CCM_ABI_MAJOR (\d+)", f.read())
    return int(m.group(1))


def dump(cc, src, hdr_dir, out_abi, work):
    probe = os.path.join(work, "probe.so")
    subprocess.run([cc, "-std=c11", "-g", "-O0", "-shared", "-fPIC",
                    "-fvisibility=hidden", "-I", hdr_dir,
                    os.path.join(src, "tests/abi/abi_probe.c"), "-o", probe],
                   check=True)
    with open(out_abi, "w", encoding="utf-8") as f:
        subprocess.run(["abidw", "--no-corpus-path", "--no-comp-dir-path",
                        "--short-locs", "--headers-dir", hdr_dir, probe],
                       check=True, stdout=f)


def baseline_path(src):
    base = os.path.join(src, "abi", "baseline")
    names = sorted(n for n in os.listdir(base) if n.endswith(".abi"))
    if not names:
        sys.exit("abi_check: no baseline in " + base)
    return os.path.join(base, names[-1])


def baseline_version(path):
    m = re.search(r"ccm_provider-(\d+)\.(\d+)\.abi$", path)
    return int(m.group(1)), int(m.group(2))


def verdict(src, hdr_dir, cc, work):
    """Return (ok, reason) for the header in hdr_dir against the baseline."""
    base = baseline_path(src)
    bmajor, bminor = baseline_version(base)
    header = os.path.join(hdr_dir, "ccm_provider.h")
    major, minor = header_major(header), header_minor(header)
    if major != bmajor:
        return True, "new major %d (baseline %d.%d): a deliberate break" % (
            major, bmajor, bminor)
    cur = os.path.join(work, "current.abi")
    dump(cc, src, hdr_dir, cur, work)
    r = subprocess.run(["abidiff", base, cur], capture_output=True, text=True)
    report = r.stdout + r.stderr
    if r.returncode == 0:
        return True, "no ABI change against %s" % os.path.basename(base)
    if r.returncode & (1 | 2):
        return False, "abidiff failed (%d): %s" % (r.returncode, report)
    if r.returncode & 8:
        return False, "abidiff: incompatible change\n" + report
    for pattern, why in INCOMPATIBLE:
        for m in pattern.finditer(report):
            if why is None:
                if int(m.group(2)) < int(m.group(1)):
                    return False, "a struct shrank\n" + report
                continue
            return False, why + "\n" + report
    if minor <= bminor:
        return False, ("the ABI grew but CCM_ABI_MINOR is still %d "
                       "(baseline %d.%d): bump it\n" % (minor, bmajor, bminor)
                       + report)
    return True, "compatible growth to 1.%d\n%s" % (minor, report)


def mutate(src, work, name, fn):
    d = os.path.join(work, name)
    os.makedirs(d)
    with open(os.path.join(src, "abi/ccm_provider.h"), encoding="utf-8") as f:
        text = f.read()
    new = fn(text)
    if new == text:
        sys.exit("abi_check selftest: mutation %s did not apply" % name)
    with open(os.path.join(d, "ccm_provider.h"), "w", encoding="utf-8") as f:
        f.write(new)
    return d


def bump(text):
    return re.sub(r"#define CCM_ABI_MINOR (\d+)",
                  lambda m: "#define CCM_ABI_MINOR %d" % (int(m.group(1)) + 1),
                  text)


def selftest(src, cc, work):
    cases = [
        ("remove-field", False,
         lambda t: re.sub(r"\n  bool blackhole;[^\n]*", "", t)),
        ("reorder-fields", False,
         lambda t: t.replace(
             "  const char *target_node;       /* 1.0: node name */\n"
             "  const char *destination_cidr;  /* 1.0 */\n",
             "  const char *destination_cidr;  /* 1.0 */\n"
             "  const char *target_node;       /* 1.0: node name */\n")),
        ("insert-in-middle", False,
         lambda t: bump(t.replace("  bool blackhole;",
                                  "  uint64_t inserted;\n  bool blackhole;"))),
        ("change-enum-value", False,
         lambda t: t.replace("CCM_ERR_AUTH = -5", "CCM_ERR_AUTH = -9")),
        ("append-without-bump", False,
         lambda t: t.replace(
             "  size_t n_target_addresses;                              /* 1.0 */\n",
             "  size_t n_target_addresses;                              /* 1.0 */\n"
             "  uint32_t appended; /* 1.1 */\n")),
        ("append-with-bump", True,
         lambda t: bump(t.replace(
             "  size_t n_target_addresses;                              /* 1.0 */\n",
             "  size_t n_target_addresses;                              /* 1.0 */\n"
             "  uint32_t appended; /* 1.1 */\n"))),
    ]
    failed = 0
    for name, want_ok, fn in cases:
        d = mutate(src, work, name, fn)
        ok, reason = verdict(src, d, cc, os.path.join(work, name))
        first = reason.splitlines()[0] if reason else ""
        if ok == want_ok:
            print("ok   %s: %s (%s)" % (name, "accepted" if ok else "refused",
                                       first))
        else:
            failed += 1
            print("FAIL %s: expected %s, got %s: %s" % (
                name, "accept" if want_ok else "refuse",
                "accept" if ok else "refuse", first))
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    return failed == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["check", "selftest", "dump"])
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--src", required=True)
    a = ap.parse_args()
    src = os.path.abspath(a.src)
    work = tempfile.mkdtemp(prefix="ccm-abi-")
    try:
        if a.mode == "dump":
            h = os.path.join(src, "abi/ccm_provider.h")
            out = os.path.join(src, "abi/baseline/ccm_provider-%d.%d.abi" % (
                header_major(h), header_minor(h)))
            dump(a.cc, src, os.path.join(src, "abi"), out, work)
            print("wrote " + out)
            return 0
        if a.mode == "selftest":
            return 0 if selftest(src, a.cc, work) else 1
        ok, reason = verdict(src, os.path.join(src, "abi"), a.cc, work)
        print(("ok: " if ok else "ABI CHECK FAILED: ") + reason)
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
