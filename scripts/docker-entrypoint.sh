#!/bin/sh
# Entrypoint of the pubtrail image: runs `pubtrail "$@"`.
# The build context never holds a signing key (see .dockerignore), so on the
# first `serve` against an empty data volume, with PUBTRAIL_ORIGIN set, it
# creates the log's signing key in the volume and prints the verifier key
# (pin it). Without PUBTRAIL_ORIGIN nothing is created and `serve` says which
# key is missing: a log's origin is chosen on purpose, never defaulted.
set -eu
if [ "${1:-}" = "serve" ]; then
  key="${PUBTRAIL_SIGNING_KEY_FILE:-${PUBTRAIL_DATA_DIR:-/data}/log-signing.key}"
  if [ ! -e "$key" ] && [ -n "${PUBTRAIL_ORIGIN:-}" ]; then
    verifier="$(pubtrail keygen --origin "$PUBTRAIL_ORIGIN" --out "$key")"
    echo "log verifier key: $verifier"
  fi
fi
exec pubtrail "$@"
