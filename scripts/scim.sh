#!/usr/bin/env bash
# scim2-tester against `teamform serve`: the SCIM 2.0 routes (RFC 7643,
# RFC 7644) checked by an independent implementation, from discovery to
# create, query, filter, replace, PATCH and delete of Users and Groups.
#
#   scripts/scim.sh [path/to/teamform]      (default: target/debug/teamform)
#
# scripts/test.sh calls it after schemathesis, with the binary it built and
# the venv it made (.venv-test/, or VENV=...). It:
#   1. starts `teamform serve` over a fresh SQLite file on a free loopback
#      port, and stops it on exit whatever the outcome;
#   2. creates team `acme` and a SCIM token for it (default role `viewer`)
#      with the bootstrap token `serve` prints;
#   3. runs every check of scim2-tester against /scim/v2/acme, prints one
#      line per check and a summary, and exits non-zero if any check ends in
#      ERROR or CRITICAL. Nothing is filtered out: a check the server's
#      ServiceProviderConfig makes moot (bulk, sort, ...) is skipped by the
#      tester itself and printed as SKIPPED.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BIN=${1:-$ROOT/target/debug/teamform}
VENV=${VENV:-$ROOT/.venv-test}
TEAM=acme

stage() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ -x "$BIN" ]] || die "$BIN not found: run \`cargo build --locked -p teamform\` first"
[[ -x "$VENV/bin/python" ]] || die "$VENV/bin/python not found: scripts/test.sh installs it from scripts/requirements-test.txt"
"$VENV/bin/python" -c 'import scim2_tester' 2>/dev/null \
    || die "scim2-tester is not installed in $VENV: scripts/test.sh installs it from scripts/requirements-test.txt"
VENV=$(cd "$VENV" && pwd)

# shellcheck source=lib/serve.sh
. "$ROOT/scripts/lib/serve.sh"

# --- 1. the server ------------------------------------------------------------
serve_start scim

# --- 2 and 3. the team, its SCIM token, scim2-tester ----------------------------
TEAMFORM_TOKEN="$token" "$VENV/bin/python" - "$BASE" "$TEAM" <<'PY'
import collections
import json
import os
import sys
import urllib.request

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

base, team = sys.argv[1], sys.argv[2]


def call(method, path, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {os.environ['TEAMFORM_TOKEN']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


call("POST", "/teams", {"team": team, "display_name": "Acme", "owner": "owner@acme.test"})
secret = call("POST", f"/teams/{team}/scim-tokens", {"name": "scim2-tester", "default_role": "viewer"})["secret"]
print(f"==> team {team} with a SCIM token; scim2-tester against {base}/scim/v2/{team}", flush=True)

http = httpx2.Client(
    base_url=f"{base}/scim/v2/{team}",
    headers={"Authorization": f"Bearer {secret}"},
    timeout=30,
)
results = check_server(SyncSCIMClient(http))
failing = {Status.ERROR, Status.CRITICAL}
counts = collections.Counter()
for r in results:
    counts[r.status.name] += 1
    where = f" [{r.resource_type}]" if r.resource_type else ""
    reason = " ".join((r.reason or "").split())
    print(f"{r.status.name:10} {r.title}{where}: {reason[:300]}")
summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
print(f"==> scim2-tester: {len(results)} checks: {summary}")
bad = [r for r in results if r.status in failing]
sys.exit(1 if bad or not results else 0)
PY
