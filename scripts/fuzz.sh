#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 20s).
# Minimising a new input runs the target over and over; the hub's targets
# open a WebSocket each run, so Go's default (60 s per input) would leave
# them minimising, not fuzzing: FUZZMINIMIZE (default 5s) bounds it.
set -euo pipefail
time=${1:-20s}
minimize=${FUZZMINIMIZE:-5s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    echo "== $pkg $target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -fuzzminimizetime "$minimize" "$pkg"
  done
done
