#!/usr/bin/env bash
# Validates the Sigma rules of docs/sigma with sigma-cli (from PyPI, in a virtualenv under
# target/) and converts them for Elasticsearch (Lucene and ES|QL). Whether each rule fires on
# its attack capture and on no clean one is tests/sigma.rs, part of `cargo test`.
# The attacktag and d3_fendtag validators download the MITRE ATT&CK and D3FEND data at run
# time, which this CI machine cannot reach; every other validator runs, and any issue fails.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SIGMA_VENV:-$PWD/target/sigma-venv}
RULES=docs/sigma

if [ ! -x "$VENV/bin/sigma" ]; then
  if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check \
      'sigma-cli==3.1.0' 'pySigma==1.5.1' 'pySigma-backend-elasticsearch==2.1.1'; }; then
    rm -rf "$VENV"
    if [ "${CI:-}" = true ]; then echo "sigma-check: could not install sigma-cli from PyPI"; exit 1; fi
    echo "sigma-check: SKIPPED, sigma-cli could not be installed (python3 -m venv, PyPI)"; exit 0
  fi
fi
SIGMA=$VENV/bin/sigma
"$SIGMA" version

count=$(find "$RULES" -name '*.yml' | wc -l)
[ "$count" -ge 1 ] || { echo "sigma-check: no rules in $RULES"; exit 1; }
"$SIGMA" check --fail-on-error --fail-on-issues -x attacktag -x d3_fendtag "$RULES"

# The rules already use ECS field names, so no field-mapping pipeline applies.
for target in lucene esql; do
  out=$("$SIGMA" convert -t "$target" --without-pipeline "$RULES")
  queries=$(grep -c 'rule.id' <<<"$out" || true)
  echo "$target: $queries queries"
  [ "$queries" = "$count" ] || { echo "$out"; echo "sigma-check: $target gave $queries queries for $count rules"; exit 1; }
done
"$SIGMA" convert -t lucene --without-pipeline "$RULES"
