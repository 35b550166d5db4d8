#!/usr/bin/env bash
# usage.sh: command-line mistakes give one line on stderr and exit 2.
. "$(dirname "$0")/lib.sh"

check() {
  local name=$1 re=$2
  shift 2
  run_cli "$name" "$@"
  expect_rc 2 "$name"
  expect_one_err_line "$name" "$re"
  [ ! -s "$T/$name.out" ] || fail "$name: wrote to stdout"
}

check unknown 'unknown option --no-such-flag' --no-such-flag
check unknown_short 'unknown option -z' -z
check noarg 'option --config needs a value' --config
check nomode 'nothing to do'
check twomodes 'only one of' --check-config a.cfg --check-module b.so
check level '--log-level: "loud"' --log-level loud --check-config a.cfg
check extra 'unexpected argument "stray"' --check-config a.cfg stray
check cluster '--cluster-name: must not be empty' --cluster-name= --check-config a.cfg
echo "ok"
