#!/bin/sh
# run-conformance.sh: the ctest driver of ccm-conformance. It makes a fresh
# temporary directory, writes the config with @TMPDIR@ replaced by it, runs
# the kit and asserts on its output: the summary line, the exit status, and
# the checks that must be "ok", must "FAIL" or may be skipped.
#
# usage: run-conformance.sh KIT MODULE CONFIG [--ok CHECK]... [--fail CHECK]...
#                           [--max-skipped N] [--absent TEXT]... [-- KIT-ARGS...]
# With any --fail the kit must exit 1 and print "FAIL CHECK: ..." for each;
# otherwise it must exit 0.
set -u

kit=$1 module=$2 cfg=$3
shift 3
oks="" fails="" absents="" max_skipped=""
while [ $# -gt 0 ]; do
  case $1 in
    --ok) oks="$oks $2"; shift 2 ;;
    --fail) fails="$fails $2"; shift 2 ;;
    --absent) absents="$absents $2"; shift 2 ;;
    --max-skipped) max_skipped=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run-conformance.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ccm-conformance-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
sed "s|@TMPDIR@|$tmp|g" "$cfg" > "$tmp/run.cfg" || exit 2

"$kit" --module "$module" --config "$tmp/run.cfg" "$@" > "$tmp/out"
rc=$?
cat "$tmp/out"
echo "(ccm-conformance exit status $rc)"

bad=0
complain() { echo "run-conformance.sh: $*" >&2; bad=1; }

last=$(tail -n 1 "$tmp/out")
if ! printf '%s\n' "$last" |
    grep -Eq '^[0-9]+ passed, [0-9]+ failed(, [1-9][0-9]* skipped)?$'; then
  complain "last line is not the summary: '$last'"
fi
if [ "$(grep -Ec '^[0-9]+ passed, ' "$tmp/out")" -ne 1 ]; then
  complain "want exactly one summary line"
fi
if grep -Evq '^(ok   |FAIL |skip |     # |[0-9]+ passed, )' "$tmp/out"; then
  complain "unexpected output lines:"
  grep -Ev '^(ok   |FAIL |skip |     # |[0-9]+ passed, )' "$tmp/out" >&2
fi

if [ -n "$fails" ]; then
  [ "$rc" -eq 1 ] || complain "want exit status 1 (checks failed), got $rc"
  for c in $fails; do
    grep -q "^FAIL $c: " "$tmp/out" || complain "want 'FAIL $c: ...'"
  done
else
  [ "$rc" -eq 0 ] || complain "want exit status 0, got $rc"
  if grep -q '^FAIL ' "$tmp/out"; then complain "unexpected FAIL lines"; fi
fi
for c in $oks; do
  grep -q "^ok   $c\$" "$tmp/out" || complain "want 'ok   $c'"
done
for t in $absents; do
  if grep -q -- "$t" "$tmp/out"; then complain "'$t' must not appear"; fi
done
if [ -n "$max_skipped" ]; then
  n=$(grep -c '^skip ' "$tmp/out")
  [ "$n" -le "$max_skipped" ] ||
    complain "$n checks skipped, at most $max_skipped allowed"
fi
exit $bad
