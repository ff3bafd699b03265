#!/usr/bin/env bash
# The reconciler end to end, as whole processes: `teamform apply` of a team
# of N invitations into a fresh embedded store, then a no-change `plan` of
# the same file, for each N given (default 10000 100000), side by side.
# Prints wall time, CPU time (user + system) and peak memory (resident set,
# from /usr/bin/time when present). On a shared machine the wall time
# includes waiting for a core; the CPU time does not.
#
#   scripts/bench-cli.sh [N ...]
#
# Builds the release binary first, unless TEAMFORM_BENCH_BIN names one to
# measure instead (say, a copy of an earlier build, to compare). Not part
# of the test command: it takes minutes, and absolute times on shared
# machines are noisy; compare the sizes of one run with each other.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
sizes=("$@")
((${#sizes[@]})) || sizes=(10000 100000)
BIN=${TEAMFORM_BENCH_BIN:-}
if [[ -z $BIN ]]; then
    cargo build --release --locked -p teamform
    BIN="$ROOT/target/release/teamform"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # label, command...
    local label=$1
    shift
    local start end
    start=$(date +%s.%N)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f '%M %U %S' -o "$work/rss" "$@" >/dev/null 2>"$work/err" || {
            cat "$work/err" >&2
            return 1
        }
    else
        "$@" >/dev/null 2>"$work/err" || {
            cat "$work/err" >&2
            return 1
        }
        echo "? ? ?" >"$work/rss"
    fi
    end=$(date +%s.%N)
    printf '%-28s %8.2f s wall %8s s cpu %6s MB peak\n' "$label" "$(echo "$end - $start" | bc)" \
        "$(awk '{ if ($2 == "?") print "?"; else printf "%.2f", $2 + $3 }' "$work/rss")" \
        "$(awk '{ if ($1 == "?") print "?"; else printf "%.0f", $1 / 1024 }' "$work/rss")"
}

for n in "${sizes[@]}"; do
    dir="$work/n$n"
    mkdir -p "$dir"
    python3 - "$n" >"$dir/team.yaml" <<'PY'
import sys
n = int(sys.argv[1])
roles = ["viewer", "developer", "modifier", "admin"]
print("version: 1\nteam: bench\ndisplay_name: Bench\nowner: owner@bench.io")
print("policy:\n  unmanaged: remove\nmembers:")
for i in range(n):
    print(f"  - email: p{i:07d}@bench.io\n    roles: [{roles[i % len(roles)]}]")
PY
    export TEAMFORM_STATE="$dir/state.db"
    measure "apply $n invitations" "$BIN" apply --auto-approve "$dir/team.yaml"
    measure "plan $n (no change)" "$BIN" plan --detailed-exitcode "$dir/team.yaml"
    measure "validate $n" "$BIN" validate "$dir/team.yaml"
done
