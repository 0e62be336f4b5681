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

# Slow tests (*.slow.test.ts) wait in real time: a kubeconfig token's expiry takes ~11 min, as
# Kubernetes issues no token shorter than 10 min and a Go apiserver's clock cannot be moved. So
# they start first (once the types check), in a jest of their own in the background (mostly
# asleep, they cost little CPU), and the rest of the suite runs meanwhile: the whole run takes
# about as long as its slowest part, not the sum. Only a run without arguments starts them:
# `npm test -- test/x.test.ts` runs just that file.
results=$(mktemp) slow_results="" slow_log="" slow_pid=""
trap '[ -n "$slow_pid" ] && kill -- -"$slow_pid" 2>/dev/null; rm -f "$results" "$slow_results" "$slow_log"' EXIT
if [ $# -eq 0 ]; then
  slow_results=$(mktemp) slow_log=$(mktemp)
  # setsid: its own process group, so an interrupted run stops all of it (see the trap).
  RINGMASTER_SLOW_TESTS=1 NODE_OPTIONS=--experimental-vm-modules setsid npx jest --json --outputFile="$slow_results" --testPathPatterns '\.slow\.test\.ts$' >"$slow_log" 2>&1 &
  slow_pid=$! slow_start=$(date +%s)
  echo "slow tests started in the background (jest pid $slow_pid), reported at the end"
fi
status=0
NODE_OPTIONS=--experimental-vm-modules npx jest --json --outputFile="$results" "$@" || status=$?

if [ -n "$slow_pid" ]; then
  echo "waiting for the slow tests (started $(( $(date +%s) - slow_start )) s ago)"
  wait "$slow_pid" || status=1
  slow_pid=""
  cat "$slow_log"
fi
# One plain closing line for any CI that reads it, summing both jest runs.
node -e '
  const fs = require("node:fs");
  const sum = { passed: 0, failed: 0, skipped: 0 };
  for (const file of process.argv.slice(1).filter(Boolean)) {
    let r;
    try { r = JSON.parse(fs.readFileSync(file, "utf8")); } catch { console.log(`(no jest results in ${file}: that run failed before reporting)`); continue; }
    sum.passed += r.numPassedTests; sum.failed += r.numFailedTests; sum.skipped += r.numPendingTests;
  }
  console.log(`tests: ${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped`);
' "$results" "$slow_results" || true
exit "$status"
