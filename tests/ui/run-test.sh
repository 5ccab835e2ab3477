#!/usr/bin/env bash
# tests/ui/run-test.sh: owns one CTest run of a node test file (ui.api,
# ui.browser) and the exit status CTest reads. Node's test runner counts a
# skipped test as passed, so this runs it with the spec reporter on stdout
# and a TAP copy at TAP_FILE, and exits with node's status when something
# failed, 77 (the tests' SKIP_RETURN_CODE) when all passed but a test was
# skipped (each printed as "skipped: TEST: WHY"), else 0.
#
#   tests/ui/run-test.sh NODE TEST_FILE TAP_FILE
set -euo pipefail
node=$1 file=$2 tap=$3
rm -f "$tap"
status=0
"$node" --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$file" || status=$?
(( status == 0 )) || exit "$status"
skipped=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$tap" | tail -n 1)
[[ -n $skipped ]] || { echo "run-test: no '# skipped' summary in $tap" >&2; exit 1; }
if (( skipped > 0 )); then
  sed -n 's/^ *ok [0-9]* - \(.*\) # SKIP *\(.*\)$/skipped: \1: \2/p' "$tap"
  echo "$skipped test(s) skipped: exit 77, reported as skipped"
  exit 77
fi
