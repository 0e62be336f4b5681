#!/usr/bin/env bash
# Builds Pebble, Let's Encrypt's ACME test server, and its pebble-challtestsrv (a DNS server
# that answers every test host name with a loopback address) from the Go module proxy, into a
# cache outside the checkout keyed by version:
#
#   ${RINGMASTER_PEBBLE_CACHE:-$HOME/.cache/ringmaster/pebble}/<version>/{pebble,pebble-challtestsrv,certs/}
#
# certs/ holds the module's test CA (pebble.minica.pem) and the localhost certificate and key
# Pebble serves its directory with: the tests trust that CA for the directory's HTTPS.
# Idempotent: with both binaries and the certificates in place (and a stamp naming the version),
# nothing is built. Progress goes to stderr; the last line on stdout is the directory, so callers
# can do: dir="$(scripts/build-pebble.sh | tail -n1)". A cold build takes ~20 s on 2 cores.
set -euo pipefail

version="v2.10.3"
module="github.com/letsencrypt/pebble/v2"

go_bin="$(command -v go || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go; fi
if [ -z "$go_bin" ]; then
  echo "build-pebble: go not found (need Go on PATH or at /usr/local/go/bin/go)" >&2
  exit 1
fi

out_dir="${RINGMASTER_PEBBLE_CACHE:-$HOME/.cache/ringmaster/pebble}/$version"
stamp="$out_dir/.built"
if [ -x "$out_dir/pebble" ] && [ -x "$out_dir/pebble-challtestsrv" ] && [ -s "$out_dir/certs/pebble.minica.pem" ] \
  && [ -s "$out_dir/certs/localhost/cert.pem" ] && [ -s "$out_dir/certs/localhost/key.pem" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module@$version" ]; then
  echo "build-pebble: pebble $version cached" >&2
  echo "$out_dir"
  exit 0
fi

# Built into a temporary folder and moved into place, so an interrupted or concurrent run never
# leaves a half-written binary behind. Outside any module: go install name@version needs none.
export GOWORK=off
export CGO_ENABLED="${CGO_ENABLED:-0}"
mkdir -p "$out_dir"
tmp="$(mktemp -d "$out_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "build-pebble: building pebble and pebble-challtestsrv $version into $out_dir ..." >&2
(cd "$tmp" && GOBIN="$tmp/bin" "$go_bin" install -trimpath "$module/cmd/pebble@$version" "$module/cmd/pebble-challtestsrv@$version") >&2
source_dir="$(cd "$tmp" && "$go_bin" env GOMODCACHE)/$module@$version"
mkdir -p "$tmp/certs/localhost"
cp "$source_dir/test/certs/pebble.minica.pem" "$tmp/certs/"
cp "$source_dir/test/certs/localhost/cert.pem" "$source_dir/test/certs/localhost/key.pem" "$tmp/certs/localhost/"
chmod -R u+w "$tmp/certs"
mv -f "$tmp/bin/pebble" "$tmp/bin/pebble-challtestsrv" "$out_dir/"
rm -rf "$out_dir/certs"
mv "$tmp/certs" "$out_dir/certs"
echo "$module@$version" > "$stamp"
echo "build-pebble: built in $((SECONDS - start)) s" >&2
echo "$out_dir"
