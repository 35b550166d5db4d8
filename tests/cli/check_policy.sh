#!/usr/bin/env bash
# check_policy.sh: --check-policy compiles a policy and prints every hook's
# result (exit 0, a rejection included), names file:line on one stderr line
# for any error (exit 1), validates against a module's declarations with
# --provider, reads a Service from YAML or JSON, and exits 2 on usage errors.
. "$(dirname "$0")/lib.sh"

FIX="$CCM_SOURCE_DIR/tests/policy/fixtures"
export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"

# A good policy on the built-in sample objects.
run_cli good --check-policy "$FIX/good.lua"
expect_rc 0 good
expect_out good '^policy: .*good\.lua'
expect_out good '^service: default/sample \(LoadBalancer\)$'
expect_out good '^load_balancer_name: "lb-default-sample"$'
expect_out good '^load_balancer_options: 0$'
expect_out good '^backend_nodes: node-a=kept node-b=dropped$'
expect_out good '^resource_tags: 1$'
expect_out good '^  k8s-service = "default/sample"$'
expect_out good '^node_labels: 1$'
expect_out good '^  example\.com/zone = "zone-a"$'
[ ! -s "$T/good.err" ] || { cat "$T/good.err" >&2; fail "good: wrote to stderr"; }

# A Service from YAML: its annotation becomes the lab option "pool".
if [ -f "$CCM_MODULE_DIR/ccm-lab.so" ]; then
  run_cli lab --check-policy "$FIX/good.lua" \
    --provider "$CCM_MODULE_DIR/ccm-lab.so" --service "$FIX/service-pool.yaml"
  expect_rc 0 lab
  expect_out lab '^provider module: lab$'
  expect_out lab '^  pool \(string\)'
  expect_out lab '^  ipv4-address \(string\)'
  expect_out lab '^  ipv6-address \(string\)'
  expect_out lab '^lb name rules: length 1\.\.63'
  expect_out lab '^service: shop/web \(LoadBalancer\)$'
  expect_out lab '^load_balancer_name: "lb-shop-web"$'
  expect_out lab '^  pool = "blue"$'

  # An option the module does not declare fails validation.
  cat >"$T/unknown.lua" <<'LUA'
return {
  load_balancer_options = function()
    return { colour = "blue" }
  end,
}
LUA
  run_cli unknown --check-policy "$T/unknown.lua" \
    --provider "$CCM_MODULE_DIR/ccm-lab.so"
  expect_rc 1 unknown
  expect_one_err_line unknown "unknown\.lua:2 load_balancer_options: unknown option 'colour'"

  # A name the module's rules refuse.
  printf 'return { load_balancer_name = function() return "Bad_Name" end }\n' \
    >"$T/badname.lua"
  run_cli badname --check-policy "$T/badname.lua" \
    --provider "$CCM_MODULE_DIR/ccm-lab.so"
  expect_rc 1 badname
  expect_one_err_line badname "badname\.lua:1 load_balancer_name: .*not allowed"
fi

# A Service from JSON that the policy rejects: printed, still exit 0.
run_cli reject --check-policy "$FIX/good.lua" --service "$FIX/service-reject.json"
expect_rc 0 reject
expect_out reject '^load_balancer_options: rejected at good\.lua:11: example\.com/reject is set: not today$'

# A runtime error on the sample objects: exit 1, one line with file:line.
cat >"$T/broken.lua" <<'LUA'
return {
  resource_tags = function(service)
    return { owner = service.annotations.nope.owner }
  end,
}
LUA
run_cli broken --check-policy "$T/broken.lua"
expect_rc 1 broken
expect_one_err_line broken '^policy broken\.lua:3 resource_tags: attempt to index a nil value'

# A syntax error.
printf 'return {\n  load_balancer_name = function( end,\n}\n' >"$T/syntax.lua"
run_cli syntax --check-policy "$T/syntax.lua"
expect_rc 1 syntax
expect_one_err_line syntax '^policy syntax\.lua:2 load: '

# A sandbox escape.
printf 'return {\n  resource_tags = function()\n    os.execute("true")\n  end,\n}\n' \
  >"$T/escape.lua"
run_cli escape --check-policy "$T/escape.lua"
expect_rc 1 escape
expect_one_err_line escape "escape\.lua:3 .*global 'os'"

# Files that do not exist or do not parse.
run_cli absent --check-policy "$T/absent.lua"
expect_rc 1 absent
expect_one_err_line absent 'absent\.lua'
echo "kind: [" >"$T/bad.yaml"
run_cli badyaml --check-policy "$FIX/good.lua" --service "$T/bad.yaml"
expect_rc 1 badyaml
expect_one_err_line badyaml 'bad\.yaml: YAML error'

# Usage errors.
run_cli nofile --check-policy
expect_rc 2 nofile
run_cli unknownopt --check-policy "$FIX/good.lua" --frobnicate
expect_rc 2 unknownopt
run_cli novalue --check-policy "$FIX/good.lua" --service
expect_rc 2 novalue

left=$(find "$TMPDIR" -mindepth 1 | wc -l)
[ "$left" -eq 0 ] || { find "$TMPDIR" >&2; fail "scratch files left in TMPDIR"; }
echo "ok"
