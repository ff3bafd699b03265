#!/usr/bin/env bash
# Builds the Lambda bootstrap of the team service for arm64 (provided.al2023):
#
#   infra/package.sh            ->  target/lambda/{api,mailer,sweeper,events}/bootstrap
#
# Needs Rust (rustup) and Python 3. cargo-lambda and the zig linker it uses come
# from PyPI into .venv-lambda/ (gitignored, ~400 MB). A cold release build takes
# about 8 minutes on 2 cores. `sam build` (infra/template.yaml) runs the same
# `cargo lambda build` when this venv's bin is on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-python3}
VENV="$ROOT/.venv-lambda"
CARGO_LAMBDA_VERSION=1.9.2
TARGET=aarch64-unknown-linux-gnu

stage() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if ! "$VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -qF "$CARGO_LAMBDA_VERSION"; then
    stage "venv: installing cargo-lambda==$CARGO_LAMBDA_VERSION into .venv-lambda/"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV (is the venv module installed?)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "cargo-lambda==$CARGO_LAMBDA_VERSION" \
        || die "pip install cargo-lambda==$CARGO_LAMBDA_VERSION failed"
fi
# cargo-lambda finds zig (the ziglang wheel) through this venv.
export PATH="$VENV/bin:$PATH"
stage "$(cargo lambda --version)"

command -v rustup >/dev/null || die "rustup not found: the $TARGET standard library comes through rustup"
rustup target add "$TARGET" >/dev/null 2>&1 || die "rustup target add $TARGET failed"
stage "rust target $TARGET installed"

# The Lambda binaries need the crate's `aws` feature (the AWS SDK, lambda_http).
stage "cargo lambda build --release --arm64 --locked -p teamform-functions --features aws --bin api --bin mailer --bin sweeper --bin events"
cargo lambda build --release --arm64 --locked -p teamform-functions --features aws --bin api --bin mailer --bin sweeper --bin events

for function in api mailer sweeper events; do
    BOOTSTRAP="$ROOT/target/lambda/$function/bootstrap"
    [[ -f "$BOOTSTRAP" ]] || die "build finished but $BOOTSTRAP is missing"
    size=$(wc -c <"$BOOTSTRAP")
    stage "${BOOTSTRAP#"$ROOT"/}: $size bytes ($((size / 1024 / 1024)) MiB)"
done
