#!/usr/bin/env bash
# The logic of the teamform GitHub Action (action.yml), kept in a script so
# that it can be run, and tested, outside GitHub Actions.
#
#   scripts/action.sh install      install teamform (see INPUT_VERSION etc. below)
#   scripts/action.sh validate     validate every team file
#   scripts/action.sh plan         plan, post or update one pull-request comment
#   scripts/action.sh apply        apply every team file (--auto-approve)
#   scripts/action.sh drift        plan; on drift open or update an issue and fail
#
# Environment (the action sets these from its inputs):
#   INPUT_FILES            team files and directories, separated by spaces or newlines
#   INPUT_VERSION          teamform version to install (install)
#   INPUT_GIT              install with `cargo install --git URL --tag vVERSION` instead
#                          of from the crate registry (install)
#   INPUT_DOWNLOAD_URL     a .tar.gz holding a prebuilt `teamform`; `{version}` in it is
#                          replaced by INPUT_VERSION (install; wins over cargo)
#   INPUT_MARKDOWN_BUDGET  most characters of the comment (default 60000)
#   INPUT_COMMENT          "false": plan does not comment (default true)
#   PR_NUMBER              the pull request to comment on (plan)
#   GITHUB_REPOSITORY, GITHUB_SERVER_URL, GITHUB_RUN_ID, GITHUB_STEP_SUMMARY,
#   GITHUB_OUTPUT, GITHUB_PATH, RUNNER_TEMP   as GitHub Actions sets them
#   TEAMFORM               the teamform binary (default: teamform on PATH)
#   GH                     the GitHub CLI (default: gh on PATH; it reads GH_TOKEN)
#   TEAMFORM_ENDPOINT, TEAMFORM_TOKEN   passed through to teamform
#
# The plan comment carries a hidden marker, so each run edits the same
# comment instead of adding one; a plan that fails says so in the comment,
# with teamform's error output.
set -euo pipefail

MARKER='<!-- teamform-plan -->'
DRIFT_MARKER='<!-- teamform-drift -->'
TEAMFORM=${TEAMFORM:-teamform}
GH=${GH:-gh}
OUT=${TEAMFORM_OUT_DIR:-${RUNNER_TEMP:-/tmp}/teamform}
BUDGET=${INPUT_MARKDOWN_BUDGET:-60000}
# GitHub refuses a comment over 65536 characters; the plan keeps to BUDGET,
# and what this script adds around it (error output included) to the rest.
STDERR_CHARS=3000

mkdir -p "$OUT"

die() { printf 'teamform action: %s\n' "$*" >&2; exit 1; }

# The team files and directories, one per array element.
files=()
read_files() {
    local f
    # shellcheck disable=SC2086 # splitting on spaces and newlines is the point
    for f in ${INPUT_FILES:-team.yaml}; do
        files+=("$f")
    done
    ((${#files[@]})) || die "no team files given (input: files)"
}

output() {
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
        printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
    fi
}

summary() {
    if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
        cat "$1" >>"$GITHUB_STEP_SUMMARY"
    fi
}

# A fence longer than any backtick run in FILE.
fence_for() {
    local longest
    longest=$(grep -o '`*' "$1" 2>/dev/null | awk '{ if (length($0) > n) n = length($0) } END { print n + 0 }')
    ((longest < 3)) && longest=2
    printf '%*s' $((longest + 1)) '' | tr ' ' '`'
}

# The last STDERR_CHARS characters of FILE, in a fenced block.
stderr_block() {
    local file=$1 fence text
    text=$(tail -c "$STDERR_CHARS" "$file")
    if (($(wc -c <"$file") > STDERR_CHARS)); then
        text="[earlier output not shown]"$'\n'"$text"
    fi
    fence=$(printf '%s' "$text" | fence_for /dev/stdin)
    printf '%stext\n%s\n%s\n' "$fence" "$text" "$fence"
}

run_url() {
    if [[ -n "${GITHUB_RUN_ID:-}" && -n "${GITHUB_REPOSITORY:-}" ]]; then
        printf '%s/%s/actions/runs/%s' "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY" "$GITHUB_RUN_ID"
    fi
}

# Creates or edits the comment that carries MARKER on pull request PR_NUMBER.
post_comment() {
    local body=$1 repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set} id
    [[ -n "${PR_NUMBER:-}" ]] || die "PR_NUMBER is not set: plan comments only on pull requests"
    id=$("$GH" api "repos/$repo/issues/$PR_NUMBER/comments" --paginate \
        --jq ".[] | select(.body | contains(\"$MARKER\")) | .id" | head -n 1)
    if [[ -n "$id" ]]; then
        "$GH" api --method PATCH "repos/$repo/issues/comments/$id" -F "body=@$body" >/dev/null
        printf 'Updated the plan comment %s on pull request #%s.\n' "$id" "$PR_NUMBER"
    else
        "$GH" api --method POST "repos/$repo/issues/$PR_NUMBER/comments" -F "body=@$body" >/dev/null
        printf 'Posted the plan comment on pull request #%s.\n' "$PR_NUMBER"
    fi
}

install() {
    local version=${INPUT_VERSION:-} url=${INPUT_DOWNLOAD_URL:-} root="$OUT/install"
    if [[ -z "$version" && -z "$url" ]]; then
        command -v "$TEAMFORM" >/dev/null || die "teamform is not on PATH; set the version input"
        "$TEAMFORM" --version
        return
    fi
    mkdir -p "$root/bin"
    if [[ -n "$url" ]]; then
        url=${url//\{version\}/$version}
        curl -fsSL "$url" | tar -xz -C "$root/bin" \
            || die "cannot download and unpack $url"
        [[ -x "$root/bin/teamform" ]] || die "$url holds no teamform executable at its top"
    elif [[ -n "${INPUT_GIT:-}" ]]; then
        cargo install --locked --root "$root" --git "$INPUT_GIT" --tag "v$version" teamform
    else
        cargo install --locked --root "$root" --version "$version" teamform
    fi
    if [[ -n "${GITHUB_PATH:-}" ]]; then
        printf '%s\n' "$root/bin" >>"$GITHUB_PATH"
    fi
    "$root/bin/teamform" --version
}

validate() {
    read_files
    local code=0
    "$TEAMFORM" validate "${files[@]}" >"$OUT/validate.txt" 2>"$OUT/validate.err" || code=$?
    cat "$OUT/validate.txt"
    cat "$OUT/validate.err" >&2
    {
        printf '### teamform validate\n\n'
        if ((code == 0)); then
            printf '```text\n'
            cat "$OUT/validate.txt"
            printf '```\n'
        else
            printf '**Validation failed.**\n\n'
            stderr_block "$OUT/validate.err"
        fi
    } >"$OUT/validate.md"
    summary "$OUT/validate.md"
    output exitcode "$code"
    return "$code"
}

plan() {
    read_files
    local code=0 url args
    args=(plan "${files[@]}" --format markdown --detailed-exitcode
        --markdown-budget "$BUDGET" --markdown-out "$OUT/plan-full.md")
    url=$(run_url)
    [[ -n "$url" ]] && args+=(--full-plan-url "$url")
    ((${#files[@]} == 1)) && [[ -f "${files[0]}" ]] && args+=(--out "$OUT/plan.json")
    "$TEAMFORM" "${args[@]}" >"$OUT/plan.md" 2>"$OUT/plan.err" || code=$?
    cat "$OUT/plan.err" >&2
    {
        printf '%s\n' "$MARKER"
        case $code in
            0 | 2) cat "$OUT/plan.md" ;;
            *)
                printf '### teamform plan failed\n\n'
                printf 'teamform exited with %s. Its error output:\n\n' "$code"
                stderr_block "$OUT/plan.err"
                if [[ -s "$OUT/plan.md" ]]; then
                    printf '\n'
                    cat "$OUT/plan.md"
                fi
                ;;
        esac
    } >"$OUT/comment.md"
    summary "$OUT/comment.md"
    output exitcode "$code"
    output has-changes "$([[ $code == 2 ]] && echo true || echo false)"
    if [[ "${INPUT_COMMENT:-true}" != "false" ]]; then
        post_comment "$OUT/comment.md"
    fi
    # 2 (changes present) is a successful plan.
    ((code == 1)) && return 1
    return 0
}

apply() {
    read_files
    local code=0
    "$TEAMFORM" apply "${files[@]}" --auto-approve >"$OUT/apply.txt" 2>"$OUT/apply.err" || code=$?
    cat "$OUT/apply.txt"
    cat "$OUT/apply.err" >&2
    {
        if ((code == 0)); then
            printf '### teamform apply\n\n'
        else
            printf '### teamform apply failed\n\n'
            stderr_block "$OUT/apply.err"
            printf '\n'
        fi
        printf '<details><summary>Output</summary>\n\n'
        printf '%s\n' "$(tail -c 50000 "$OUT/apply.txt" | sed 's/^/    /')"
        printf '\n</details>\n'
    } >"$OUT/apply.md"
    summary "$OUT/apply.md"
    output exitcode "$code"
    return "$code"
}

# Plans every file; when live state differs from them (exit 2), opens an
# issue that carries DRIFT_MARKER, or edits the open one, and fails.
drift() {
    read_files
    local code=0 repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set} number
    "$TEAMFORM" plan "${files[@]}" --format markdown --detailed-exitcode \
        --markdown-budget "$BUDGET" >"$OUT/drift.md" 2>"$OUT/drift.err" || code=$?
    cat "$OUT/drift.err" >&2
    output exitcode "$code"
    case $code in
        0)
            printf 'No drift: live state matches the team files.\n'
            return 0
            ;;
        2) ;;
        *)
            {
                printf '### teamform drift check failed\n\n'
                stderr_block "$OUT/drift.err"
            } >"$OUT/drift-failed.md"
            summary "$OUT/drift-failed.md"
            return 1
            ;;
    esac
    {
        printf '%s\n' "$DRIFT_MARKER"
        printf 'The live teams differ from the team files on the default branch'
        local url
        url=$(run_url)
        [[ -n "$url" ]] && printf ' ([drift check](%s))' "$url"
        printf '. Someone changed them outside team.yaml, or an apply did not finish: apply the files again, or change them to match.\n\n'
        cat "$OUT/drift.md"
    } >"$OUT/issue.md"
    summary "$OUT/issue.md"
    number=$("$GH" api "repos/$repo/issues?state=open&per_page=100" --paginate \
        --jq ".[] | select((.body // \"\") | contains(\"$DRIFT_MARKER\")) | .number" | head -n 1)
    if [[ -n "$number" ]]; then
        "$GH" api --method PATCH "repos/$repo/issues/$number" -F "body=@$OUT/issue.md" >/dev/null
        printf 'Drift: updated issue #%s.\n' "$number" >&2
    else
        "$GH" api --method POST "repos/$repo/issues" \
            -f "title=teamform: live teams drifted from their team files" \
            -F "body=@$OUT/issue.md" >/dev/null
        printf 'Drift: opened an issue.\n' >&2
    fi
    return 1
}

case ${1:-} in
    install | validate | plan | apply | drift) "$1" ;;
    *) die "usage: $0 install|validate|plan|apply|drift" ;;
esac
