#!/usr/bin/env bash
# Clean release build and full `cargo test` of two revisions, one after the other on this
# machine, each in a fresh clone with an empty target dir (the cargo registry is shared, so
# downloads do not count). For choices that trade build time (the workspace split, profiles).
#
#   benches/build-times.sh REV_BEFORE [REV_AFTER]     # REV_AFTER defaults to HEAD
#
# Prints one line per measurement. The peer corpus is linked beside each clone when ../shared
# exists, so both run the same tests. Takes about 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
BEFORE=$1 AFTER=${2:-HEAD}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$WORK/shared"
unset CARGO_TARGET_DIR
for name in before after; do
  rev=$BEFORE; [ $name = after ] && rev=$AFTER
  git clone -q . "$WORK/$name"
  git -C "$WORK/$name" checkout -q "$(git rev-parse "$rev")"
done
seconds() {
  local s e rc=0
  s=$(date +%s.%N)
  "$@" > /dev/null 2>&1 || rc=$?
  e=$(date +%s.%N)
  echo "$(echo "$e - $s" | bc) s (exit $rc)"
}
for name in before after; do
  (
    cd "$WORK/$name"
    rev=$(git rev-parse --short HEAD)
    echo "$name ($rev) cargo build --release: $(seconds cargo build --release)"
    echo "$name ($rev) cargo test:            $(seconds cargo test)"
  )
done
