#!/usr/bin/env bash
# Smoke test of the envtest-style control plane: starts etcd and kube-apiserver (built by
# scripts/build-kube-binaries.sh) on free 127.0.0.1 ports with a throwaway CA, an admin client
# certificate in group system:masters and a service-account key pair, waits for /readyz, runs
# `kubectl get namespaces` with a generated kubeconfig, then stops both and removes the temp dir.
#
#   test/kube/smoke.sh [BIN_DIR]     BIN_DIR holds kube-apiserver and etcd; default: build/cached
#   KUBE_SMOKE_LOG_DIR=DIR           also copy etcd.log and kube-apiserver.log into DIR
#
# Needs openssl, curl, kubectl, and python3 or node (to find free ports).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${1:-}"
if [ -z "$bin_dir" ]; then bin_dir="$("$root/scripts/build-kube-binaries.sh" | tail -n1)"; fi
for b in kube-apiserver etcd; do
  [ -x "$bin_dir/$b" ] || { echo "smoke: $bin_dir/$b missing" >&2; exit 1; }
done
# The kubectl built with the server (same version) when there is one, else the machine's.
kubectl_bin="$bin_dir/kubectl"; [ -x "$kubectl_bin" ] || kubectl_bin=kubectl
for t in openssl curl "$kubectl_bin"; do
  command -v "$t" >/dev/null || { echo "smoke: $t not found" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-kube-smoke.XXXXXX")"
etcd_pid=""; apiserver_pid=""
cleanup() {
  local rc=$?
  # Stop only the processes this script started, by pid.
  for pid in $apiserver_pid $etcd_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "${KUBE_SMOKE_LOG_DIR:-}" ]; then
    mkdir -p "$KUBE_SMOKE_LOG_DIR" && cp -f "$work"/*.log "$KUBE_SMOKE_LOG_DIR"/ 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo "smoke: FAILED (exit $rc); last log lines:" >&2
    for log in "$work/etcd.log" "$work/kube-apiserver.log"; do
      [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# free_ports N: N distinct ports the kernel reports free on 127.0.0.1 (racy by nature, like envtest).
free_ports() {
  if command -v python3 >/dev/null; then
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
  else
    node -e '
      const net = require("node:net"); const n = +process.argv[1]; const ports = []; const servers = [];
      (function next() {
        if (ports.length === n) { servers.forEach(s => s.close()); console.log(ports.join(" ")); return; }
        const s = net.createServer(); servers.push(s);
        s.listen(0, "127.0.0.1", () => { ports.push(s.address().port); next(); });
      })();' "$1"
  fi
}
read -r etcd_client_port etcd_peer_port apiserver_port <<<"$(free_ports 3)"

# --- certificates: a CA, an admin client cert (O=system:masters) it signs, a service-account key pair
pki="$work/pki"; mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 1 -subj "/CN=ringmaster-smoke-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/O=system:masters/CN=ringmaster-admin" \
  -keyout "$pki/admin.key" -out "$pki/admin.csr" 2>/dev/null
printf 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > "$pki/client.ext"
openssl x509 -req -in "$pki/admin.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 1 -sha256 -extfile "$pki/client.ext" -out "$pki/admin.crt" 2>/dev/null
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

# --- etcd
start=$(now_ms)
"$bin_dir/etcd" \
  --data-dir="$work/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_client_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_client_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync \
  >"$work/etcd.log" 2>&1 &
etcd_pid=$!
until curl -fsS "http://127.0.0.1:$etcd_client_port/health" 2>/dev/null | grep -q '"health":"true"'; do
  kill -0 "$etcd_pid" 2>/dev/null || { echo "smoke: etcd exited" >&2; exit 1; }
  [ $(( $(now_ms) - start )) -lt 30000 ] || { echo "smoke: etcd not healthy after 30 s" >&2; exit 1; }
  sleep 0.1
done
echo "smoke: etcd healthy on 127.0.0.1:$etcd_client_port after $(( $(now_ms) - start )) ms"

# --- kube-apiserver (flags as controller-runtime's envtest passes them)
mkdir -p "$work/apiserver-certs"
start=$(now_ms)
"$bin_dir/kube-apiserver" \
  --bind-address=127.0.0.1 \
  --secure-port="$apiserver_port" \
  --etcd-servers="http://127.0.0.1:$etcd_client_port" \
  --cert-dir="$work/apiserver-certs" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --allow-privileged=true \
  --authorization-mode=RBAC \
  --disable-admission-plugins=ServiceAccount \
  --client-ca-file="$pki/ca.crt" \
  --service-account-issuer="https://127.0.0.1:$apiserver_port/" \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  >"$work/kube-apiserver.log" 2>&1 &
apiserver_pid=$!
# --cert-dir makes the apiserver write a self-signed serving cert (apiserver.crt: the cert followed
# by the CA that signed it); verify against it instead of using -k.
serving_ca="$work/apiserver-certs/apiserver.crt"
readyz=""
until [ -s "$serving_ca" ] && readyz="$(curl -fsS --cacert "$serving_ca" --cert "$pki/admin.crt" \
    --key "$pki/admin.key" "https://127.0.0.1:$apiserver_port/readyz" 2>/dev/null)" && [ "$readyz" = ok ]; do
  kill -0 "$apiserver_pid" 2>/dev/null || { echo "smoke: kube-apiserver exited" >&2; exit 1; }
  [ $(( $(now_ms) - start )) -lt 120000 ] || { echo "smoke: kube-apiserver not ready after 120 s" >&2; exit 1; }
  sleep 0.2
done
echo "smoke: kube-apiserver /readyz ok on 127.0.0.1:$apiserver_port after $(( $(now_ms) - start )) ms (process start -> readyz)"

# --- kubectl through a generated kubeconfig (admin = client cert in system:masters)
kc="$work/kubeconfig"
"$kubectl_bin" config --kubeconfig="$kc" set-cluster smoke --server="https://127.0.0.1:$apiserver_port" \
  --certificate-authority="$serving_ca" --embed-certs=true >/dev/null
"$kubectl_bin" config --kubeconfig="$kc" set-credentials admin \
  --client-certificate="$pki/admin.crt" --client-key="$pki/admin.key" --embed-certs=true >/dev/null
"$kubectl_bin" config --kubeconfig="$kc" set-context smoke --cluster=smoke --user=admin >/dev/null
"$kubectl_bin" config --kubeconfig="$kc" use-context smoke >/dev/null

"$kubectl_bin" --kubeconfig="$kc" version
"$kubectl_bin" --kubeconfig="$kc" get namespaces
echo "smoke: ok"
