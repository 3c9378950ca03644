#!/usr/bin/env bash
# Finds or installs what `make test` needs beyond Go: Node.js, which runs the
# WebAssembly tests, npm, which installs the packages of the e2ee cross-check
# (scripts/e2ee-crosscheck), curl, which runs the examples of docs/api.md, and
# coturn, whose turnutils_uclient checks the TURN relay as an independent client
# (the package's turnserver is not started by the tests or by this script).
# On a Debian machine as root it installs what is missing;
# elsewhere it says what to install. Under CI=true a missing dependency fails
# the run instead of letting tests skip.
set -euo pipefail

need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v curl >/dev/null || need+=(curl)
command -v turnutils_uclient >/dev/null || need+=(coturn)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  # Only the client is wanted: keep the package's TURN server from running (it
  # would take port 3478, the relay's default).
  if [[ " ${need[*]} " == *" coturn "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now coturn >/dev/null 2>&1 || true
  fi
  exit 0
fi
echo "missing: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
exit 1
