#!/bin/sh
# run-conformance-aws.sh: ccm-conformance for the aws module against the
# AWS test double. Starts tests/doubles/aws.py on a free 127.0.0.1 port
# with the fixture seed, writes the config with @PORT@ replaced, runs
# tests/conformance/run-conformance.sh with the double's credentials in the
# environment, then stops the double (and prints its call log on failure).
#
# usage: run-conformance-aws.sh SRC_DIR KIT MODULE CONFIG [run-conformance args]
# With CCM_AWS_VALGRIND=/path/to/valgrind the kit runs under valgrind
# (definite leaks and invalid accesses fail the run).
set -u
src=$1 kit=$2 module=$3 cfg=$4
shift 4

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ccm-aws-conf.XXXXXX") || exit 2
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

/usr/bin/python3 "$src/tests/doubles/aws.py" --port 0 \
  --seed "$src/tests/doubles/fixtures/aws_seed.json" \
  > "$tmp/double.out" 2> "$tmp/double.err" &
pid=$!
port=""
i=0
while [ $i -lt 100 ]; do
  port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$tmp/double.out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
  i=$((i + 1))
done
if [ -z "$port" ]; then
  echo "run-conformance-aws.sh: the double did not start" >&2
  cat "$tmp/double.err" >&2
  exit 2
fi
sed "s|@PORT@|$port|g" "$cfg" > "$tmp/aws.cfg" || exit 2
if [ -n "${CCM_AWS_VALGRIND:-}" ]; then
  cat > "$tmp/kit.sh" <<EOS
#!/bin/sh
exec "$CCM_AWS_VALGRIND" --quiet --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite "$kit" "\$@"
EOS
  chmod +x "$tmp/kit.sh"
  kit=$tmp/kit.sh
fi

env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_WEB_IDENTITY_TOKEN_FILE \
  -u AWS_ROLE_ARN \
  AWS_ACCESS_KEY_ID=AKIDEXAMPLE \
  AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
  AWS_EC2_METADATA_DISABLED=true \
  AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
  /bin/sh "$src/tests/conformance/run-conformance.sh" "$kit" "$module" \
  "$tmp/aws.cfg" "$@"
rc=$?
if [ $rc -ne 0 ]; then
  echo "--- double call log" >&2
  /usr/bin/python3 -c "import sys,urllib.request;sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/_double/calls').read().decode()[-6000:])" >&2 || true
  echo "--- double stderr" >&2
  tail -n 30 "$tmp/double.err" >&2
fi
exit $rc
