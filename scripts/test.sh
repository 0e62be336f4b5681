#!/usr/bin/env bash
# The whole test suite: the real Debian haproxy, nginx and PostgreSQL check what we render, so
# they are installed first when missing (as root, through apt-get); then type check and jest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# chromium: the status page is tested in a real browser (playwright-core drives Debian's build).
for tool in haproxy nginx openssl chromium nft mosquitto; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests need ${missing[*]}: run 'sudo apt-get install -y haproxy nginx openssl postgresql chromium nftables mosquitto' first" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (Debian packages) for the tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx openssl postgresql chromium nftables mosquitto >/dev/null
fi

# The envtest-style tests run a real kube-apiserver and etcd, built from source with Go and cached
# (then this is a no-op); built here so a cold build (minutes) does not count against jest timeouts.
kube_start=$(date +%s%3N)
kube_bin_dir="$(scripts/build-kube-binaries.sh | tail -n1)"
echo "kube binaries: $kube_bin_dir ready in $(( $(date +%s%3N) - kube_start )) ms"

# The certificate tests order from Pebble, Let's Encrypt's ACME test server, built from the Go
# module proxy and cached the same way (~20 s cold, a no-op after).
pebble_start=$(date +%s%3N)
pebble_dir="$(scripts/build-pebble.sh | tail -n1)"
echo "pebble: $pebble_dir ready in $(( $(date +%s%3N) - pebble_start )) ms"

node --version
npx tsc --noEmit
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
NODE_OPTIONS=--experimental-vm-modules npx jest --json --outputFile="$results" "$@" || status=$?
# One plain closing line for any CI that reads it.
node -e 'const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$results" 2>/dev/null || true
exit "$status"
