#!/usr/bin/env bash
# The whole test suite: the real Debian haproxy, nginx and PostgreSQL check what we render, so
# they are installed first when missing (as root, through apt-get); then type check and jest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in haproxy nginx openssl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests need ${missing[*]}: run 'sudo apt-get install -y haproxy nginx openssl postgresql' first" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (Debian packages) for the tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx openssl postgresql >/dev/null
fi

node --version
npx tsc --noEmit
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
NODE_OPTIONS=--experimental-vm-modules npx jest --json --outputFile="$results" "$@" || status=$?
# One plain closing line for any CI that reads it.
node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$results" 2>/dev/null || true
exit "$status"
