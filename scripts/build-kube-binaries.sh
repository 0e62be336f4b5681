#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd for envtest-style tests from the upstream Go modules
# (through the Go module proxy), into a cache outside the checkout keyed by version:
#
#   ${RINGMASTER_KUBE_CACHE:-$HOME/.cache/ringmaster/kube}/<k8s-version>-<etcd-version>/{kube-apiserver,kubectl,etcd}
#
# The versions come from the wrapper modules test/kube/apiserver/go.mod (k8s.io/kubernetes) and
# test/kube/etcd/go.mod (go.etcd.io/etcd/server/v3); their go.sum files are committed, so the
# build is checked against them. Idempotent: a binary that exists and answers --version with the
# expected version is not rebuilt. Progress goes to stderr; the last line on stdout is the
# directory holding both binaries, so callers can do: dir="$(scripts/build-kube-binaries.sh | tail -n1)".
#
# Needs Go >= 1.26 (go.mod says `go 1.26.0`; with the default GOTOOLCHAIN=auto an older go
# fetches that toolchain from the proxy). A cold build takes several minutes on 2 cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apiserver_mod="$root/test/kube/apiserver"
etcd_mod="$root/test/kube/etcd"

go_bin="$(command -v go || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go; fi
if [ -z "$go_bin" ]; then
  echo "build-kube-binaries: go not found (need Go >= 1.26 on PATH or at /usr/local/go/bin/go)" >&2
  exit 1
fi

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' "$apiserver_mod/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v3\./ { print $2; exit }' "$etcd_mod/go.mod")"
if [ -z "$k8s_version" ] || [ -z "$etcd_version" ]; then
  echo "build-kube-binaries: cannot read versions from $apiserver_mod/go.mod and $etcd_mod/go.mod" >&2
  exit 1
fi

# Every staging module must be replaced with the release matching k8s.io/kubernetes (v1.X.Y -> v0.X.Y).
staging_version="v0.${k8s_version#v1.}"
stale="$(awk -v want="$staging_version" '$2 == "=>" && $1 ~ /^k8s\.io\// && $4 != want { print $1 " " $4 }' "$apiserver_mod/go.mod")"
if [ -n "$stale" ]; then
  echo "build-kube-binaries: staging replaces in $apiserver_mod/go.mod do not match $staging_version:" >&2
  echo "$stale" >&2
  exit 1
fi

out_dir="${RINGMASTER_KUBE_CACHE:-$HOME/.cache/ringmaster/kube}/${k8s_version}-${etcd_version}"
mkdir -p "$out_dir"

# Module mode with the committed go.sum (-mod=readonly is the default; no vendor directory).
# No VCS stamping (the wrapper modules live in this repo; stamping would need git and is useless),
# no go.work from a parent directory, static binaries like the upstream release builds.
export GOWORK=off
export CGO_ENABLED="${CGO_ENABLED:-0}"

# Same version stamping as kubernetes' hack/lib/version.sh, so /version, --version and the
# compatibility (emulation) version logic see v1.X.Y rather than v0.0.0-master.
k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# ok BINARY EXPECTED: the binary exists, runs, and its --version output contains EXPECTED.
ok() {
  [ -x "$1" ] || return 1
  local v
  v="$("$1" --version 2>/dev/null)" || return 1
  case "$v" in *"$2"*) return 0 ;; *) return 1 ;; esac
}

# build NAME MODULE_DIR PACKAGE LDFLAGS: go build into a temporary file, then rename it into place,
# so an interrupted or concurrent run never leaves a half-written binary behind.
build() {
  local name="$1" mod="$2" pkg="$3" ldflags="$4" tmp start
  tmp="$out_dir/.$name.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  start=$SECONDS
  echo "build-kube-binaries: building $name ($pkg) into $out_dir ..." >&2
  (cd "$mod" && "$go_bin" build -trimpath -buildvcs=false -ldflags="$ldflags" -o "$tmp" "$pkg") >&2
  mv -f "$tmp" "$out_dir/$name"
  trap - EXIT
  echo "build-kube-binaries: built $name in $((SECONDS - start)) s ($(du -h "$out_dir/$name" | cut -f1))" >&2
}

if ok "$out_dir/kube-apiserver" "Kubernetes $k8s_version"; then
  echo "build-kube-binaries: kube-apiserver $k8s_version cached" >&2
else
  build kube-apiserver "$apiserver_mod" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
  ok "$out_dir/kube-apiserver" "Kubernetes $k8s_version" || {
    echo "build-kube-binaries: built kube-apiserver does not report $k8s_version" >&2; exit 1; }
fi

# kubectl of the server's version, from the same module (the tests read issued kubeconfigs with it).
# Its output is read whole first: `grep -q` closing the pipe early would fail it under pipefail.
kubectl_ok() {
  [ -x "$out_dir/kubectl" ] || return 1
  local v
  v="$("$out_dir/kubectl" version --client 2>/dev/null)" || return 1
  case "$v" in *"Client Version: $k8s_version"*) return 0 ;; *) return 1 ;; esac
}
if kubectl_ok; then
  echo "build-kube-binaries: kubectl $k8s_version cached" >&2
else
  build kubectl "$apiserver_mod" k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
  kubectl_ok || { echo "build-kube-binaries: built kubectl does not report $k8s_version" >&2; exit 1; }
fi

if ok "$out_dir/etcd" "etcd Version: ${etcd_version#v}"; then
  echo "build-kube-binaries: etcd $etcd_version cached" >&2
else
  build etcd "$etcd_mod" go.etcd.io/etcd/server/v3 "-s -w"
  ok "$out_dir/etcd" "etcd Version: ${etcd_version#v}" || {
    echo "build-kube-binaries: built etcd does not report $etcd_version" >&2; exit 1; }
fi

echo "$out_dir"
