#!/usr/bin/env bash
# check_config.sh: `ccm-host --check-config` accepts every examples/*.cfg.
# The files are globbed when the test runs, so a new example is covered
# without re-running cmake; no example at all is a failure too.
. "$(dirname "$0")/../cli/lib.sh"

shopt -s nullglob
files=("$CCM_SOURCE_DIR"/examples/*.cfg)
[ "${#files[@]}" -gt 0 ] || fail "no examples/*.cfg found"

bad=0
for f in "${files[@]}"; do
  name=$(basename "$f" .cfg)
  # From another directory: relative paths must resolve against the file.
  (cd "$T" && run_cli "$name" --check-config "$f"; echo "$rc" >"$T/$name.rc")
  rc=$(cat "$T/$name.rc")
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: examples/$name.cfg: exit status $rc" >&2
    cat "$T/$name.out" "$T/$name.err" >&2
    bad=$((bad + 1))
    continue
  fi
  grep -q ": ok$" "$T/$name.out" || {
    cat "$T/$name.out" >&2
    echo "FAIL: examples/$name.cfg: no ok line" >&2
    bad=$((bad + 1))
    continue
  }
  echo "ok: examples/$name.cfg"
done
[ "$bad" -eq 0 ] || fail "$bad of ${#files[@]} example(s) rejected"
echo "${#files[@]} example(s) accepted"
