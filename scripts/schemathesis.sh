#!/usr/bin/env bash
# Schemathesis against `teamform serve`: the OpenAPI document is checked
# against what the server really answers, stateful phase included.
#
#   scripts/schemathesis.sh [path/to/teamform]      (default: target/debug/teamform)
#
# scripts/test.sh calls it after the cargo tests, with the binary they built
# and the venv it made (.venv-test/, or VENV=...). It:
#   1. starts `teamform serve` over a fresh SQLite file on a free loopback
#      port, and stops it on exit whatever the outcome;
#   2. seeds a team through the API with the bootstrap token `serve` prints
#      (custom roles, settings, invitations, an API key);
#   3. runs schemathesis (every phase, time-boxed) with that token, the
#      seeded team as the usual `team` path parameter, and exits non-zero if
#      it reports any failure.
#
# Checks: all of schemathesis's checks but two, among them not_a_server_error,
# status_code_conformance, missing_required_header, negative_data_rejection,
# the response schema, content type and headers, and use_after_free. Left out:
#   positive_data_acceptance      it takes any schema-valid request as one the
#       server must accept, but most are refused by the team's state (unknown
#       role, stale If-Match, a link token nobody was sent), rightly;
#   ensure_resource_availability  it takes a replayed POST (same
#       Idempotency-Key and body) for a new resource, but a replay names the
#       first one, which the run may have deleted since (404, rightly).
#
# Budget: SCHEMATHESIS_MAX_TIME seconds for the run itself (default 200; the
# fuzzing and stateful phases use all of it), SCHEMATHESIS_MAX_EXAMPLES per
# operation and phase (default 50); SCHEMATHESIS_SEED (printed) repeats a run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BIN=${1:-$ROOT/target/debug/teamform}
VENV=${VENV:-$ROOT/.venv-test}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-200}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
SEED=${SCHEMATHESIS_SEED:-$RANDOM}
TEAM=acme

stage() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ -x "$BIN" ]] || die "$BIN not found: run \`cargo build --locked -p teamform\` first"
[[ -x "$VENV/bin/schemathesis" ]] || die "$VENV/bin/schemathesis not found: scripts/test.sh installs it from scripts/requirements-test.txt"
VENV=$(cd "$VENV" && pwd)

# shellcheck source=lib/serve.sh
. "$ROOT/scripts/lib/serve.sh"

# --- 1. the server ------------------------------------------------------------
serve_start schemathesis

# --- 2. the seeded team -------------------------------------------------------
TEAMFORM_TOKEN="$token" "$VENV/bin/python" - "$BASE" "$TEAM" "$WORK/ids" <<'PY' || die "seeding the team failed"
import os
import sys

import requests

base, team, ids = sys.argv[1], sys.argv[2], sys.argv[3]
s = requests.Session()
s.headers["Authorization"] = f"Bearer {os.environ['TEAMFORM_TOKEN']}"


def call(method, path, body=None, want=(200, 201, 204)):
    r = s.request(method, base + path, json=body, timeout=10)
    if r.status_code not in want:
        sys.exit(f"{method} {path} -> {r.status_code}: {r.text}")
    return r.json() if r.content else None


call("POST", "/teams", {"team": team, "display_name": "Acme", "owner": "owner@acme.test"})
call("PUT", f"/teams/{team}/roles/release-manager",
     {"description": "Ships releases", "permissions": ["team.members.read", "team.audit.read"]})
call("PUT", f"/teams/{team}/roles/unused", {"description": "Held by nobody", "permissions": ["team.members.read"]})
call("PUT", f"/teams/{team}/settings", {"require_2fa": False, "invitation_ttl_days": 15, "seat_limit": 100})
for email, roles in [("bob@acme.test", ["developer"]), ("carol@acme.test", ["release-manager"]),
                     ("dave@acme.test", ["viewer"]), ("erin@acme.test", ["admin"])]:
    call("POST", f"/teams/{team}/invitations", {"email": email, "name": email.split("@")[0].title(), "roles": roles})
key = call("POST", f"/teams/{team}/api-keys", {"name": "ci", "roles": ["viewer"]})
spare = call("POST", "/me/tokens", {"name": "spare"})
with open(ids, "w") as f:
    f.write(f'"{key["id"]}", "{spare["id"]}"')
state = call("GET", f"/teams/{team}/state")
print(f"==> seeded team {team}: version {state['version']}, {len(state['invitations'])} invitations, "
      f"{len(state['roles'])} custom roles")
PY

# --- 3. schemathesis ----------------------------------------------------------
# The team path parameter is the seeded team most of the time (else every
# team route would answer 404), and people, role names and ids (of the API
# key and a personal token) are often seeded ones; the rest are generated,
# negative ones included.
cat >"$WORK/schemathesis.toml" <<EOF
[dictionaries]
teams = { values = ["$TEAM"] }
people = { values = ["bob@acme.test", "carol@acme.test", "dave@acme.test", "erin@acme.test", "owner@acme.test"] }
roles = { values = ["release-manager", "unused", "developer"] }
ids = { values = [$(cat "$WORK/ids")] }

[parameters]
"path.team" = { dictionary = "teams", probability = 0.8 }
"path.email" = { dictionary = "people", probability = 0.5 }
"path.name" = { dictionary = "roles", probability = 0.5 }
"path.id" = { dictionary = "ids", probability = 0.3 }
EOF

stage "schemathesis: all phases against $BASE (max ${MAX_TIME}s, ${MAX_EXAMPLES} examples, seed $SEED)"
start=$SECONDS
status=0
# One worker: the machine has two cores for serve and schemathesis, and
# Python 3.11 before 3.11.8 can fail with "AST constructor recursion depth
# mismatch" when hypothesis parses sources in several threads at once.
# A hard stop well past --max-time, should it ever not be honoured. Run from
# the work directory: schemathesis keeps its cache (`.schemathesis/`, what
# `st replay` reads) in the current one.
(cd "$WORK" && exec timeout -k 10 $((MAX_TIME + 60)) "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$BASE/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --exclude-checks positive_data_acceptance,ensure_resource_availability \
    --generation-database none \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --seed "$SEED" \
    --workers 1 \
    --no-color \
    --report junit,ndjson --report-dir "$WORK/report") \
    || status=$?
stage "schemathesis: exit $status after $((SECONDS - start)) s"
exit "$status"
