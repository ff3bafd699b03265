# Sourced by the scripts that test against `teamform serve` (schemathesis.sh,
# scim.sh): starts the binary $BIN on a free loopback port over a fresh
# SQLite store in a work directory under target/, and stops it on exit.
#
#   serve_start NAME   sets WORK (target/NAME.XXXXXX), PORT, BASE, SERVE_PID
#                      and token (the bootstrap owner's tfp_ token)
#
# Needs ROOT, BIN and VENV (a Python for the free port), and the functions
# stage and die. On failure the server log stays in WORK; on success WORK is
# removed.

serve_cleanup() {
    local status=$?
    if [[ -n "${SERVE_PID:-}" ]]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    if [[ -n "${WORK:-}" ]]; then
        if [[ $status -eq 0 ]]; then
            rm -rf "$WORK"
        else
            printf '%s: work files (server log, reports) kept in %s\n' "$SERVE_NAME" "${WORK#"$ROOT"/}" >&2
        fi
    fi
    exit "$status"
}

serve_start() {
    SERVE_NAME=$1
    mkdir -p "$ROOT/target"
    WORK=$(mktemp -d "$ROOT/target/$SERVE_NAME.XXXXXX")
    SERVE_PID=
    trap serve_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    BASE="http://127.0.0.1:$PORT"
    # --state too: the outbox of invitation emails goes next to it.
    "$BIN" serve --catalog standard --addr "127.0.0.1:$PORT" --store "sqlite:$WORK/state.db" --state "$WORK/state.db" \
        >"$WORK/serve.out" 2>"$WORK/serve.log" &
    SERVE_PID=$!

    token=
    local deadline=$((SECONDS + 30))
    until [[ -n "$token" ]] && curl -sf -o /dev/null "$BASE/healthz"; do
        if ! kill -0 "$SERVE_PID" 2>/dev/null; then
            tail -n 20 "$WORK/serve.out" "$WORK/serve.log" >&2 || true
            die "teamform serve exited before it became ready"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$WORK/serve.out" "$WORK/serve.log" >&2 || true
            die "teamform serve not ready on 127.0.0.1:$PORT after 30 s"
        fi
        sleep 0.2
        token=$(sed -n 's/^bootstrap token .*: \(tfp_[^[:space:]]*\)$/\1/p' "$WORK/serve.out")
    done
    stage "teamform serve: listening on 127.0.0.1:$PORT (pid $SERVE_PID)"
}
