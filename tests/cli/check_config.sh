#!/usr/bin/env bash
# check_config.sh: --check-config validates without loading: "FILE: ok" and
# a summary, exit 0; or one "FILE:LINE: KEY: ..." line, exit 1.
. "$(dirname "$0")/lib.sh"

cat >"$T/good.cfg" <<'CFG'
cluster_name = "c1";
providers = (
  { name = "main"; module = "mods/ccm-none.so"; default = true; },
  { name = "other"; module = "/abs/ccm-other.so";
    load_balancer_class = "example.com/other"; }
);
CFG
run_cli good --check-config "$T/good.cfg"
expect_rc 0 good
expect_out good "^$T/good.cfg: ok$"
expect_out good '^cluster_name: c1$'
expect_out good '^providers: 2$'
expect_out good "^  main: default, module $T/mods/ccm-none.so, config [0-9a-f]{12}$"
expect_out good '^  other: class example.com/other, module /abs/ccm-other.so'
[ ! -s "$T/good.err" ] || { cat "$T/good.err" >&2; fail "good: stderr not empty"; }

run_cli override --check-config "$T/good.cfg" --cluster-name from-flag
expect_rc 0 override
expect_out override '^cluster_name: from-flag$'

cat >"$T/bad.cfg" <<'CFG'
providers = (
  { name = "main"; module = "m.so";
    http = { qps = "fast"; }; }
);
CFG
run_cli bad --check-config "$T/bad.cfg"
expect_rc 1 bad
expect_one_err_line bad "^$T/bad.cfg:3: providers\.\[0\]\.http\.qps: expected a number"
[ ! -s "$T/bad.out" ] || fail "bad: wrote to stdout"

printf 'providers = (\n  { name = "x" \n' >"$T/syntax.cfg"
run_cli syntax --check-config "$T/syntax.cfg"
expect_rc 1 syntax
expect_one_err_line syntax "^$T/syntax.cfg:[0-9]+: syntax error"

run_cli missing --check-config "$T/nope.cfg"
expect_rc 1 missing
expect_one_err_line missing "^$T/nope.cfg: cannot read"

# The shipped examples stay valid.
for f in "$CCM_SOURCE_DIR"/examples/*.cfg; do
  run_cli example --check-config "$f"
  expect_rc 0 example
  expect_out example ": ok$"
done
echo "ok"
