#!/usr/bin/env bash
# The main job on a fresh machine: build teamform, then plan and apply every
# example against the embedded store (SQLite under target/demo/), and plan
# again to show that nothing is left to do. Needs only Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building teamform"
cargo build --locked --quiet -p teamform
teamform=target/debug/teamform
state_dir=target/demo
rm -rf "$state_dir"
export TEAMFORM_STATE="$state_dir/state.db"
unset TEAMFORM_ENDPOINT TEAMFORM_TOKEN TEAMFORM_CATALOG

for file in examples/acme/team.yaml examples/digitalocean/team.yaml; do
  echo
  echo "==> teamform validate $file"
  "$teamform" validate "$file"
  echo
  echo "==> teamform plan $file"
  "$teamform" plan "$file"
  echo
  echo "==> teamform apply --auto-approve $file"
  "$teamform" apply --auto-approve "$file"
  echo
  echo "==> teamform plan --detailed-exitcode $file   (0 = no changes)"
  "$teamform" plan --detailed-exitcode "$file"
  echo "exit code: $?"
done

echo
echo "==> teamform export --team acme"
"$teamform" export --team acme
echo
echo "Invitation emails were written to $state_dir/outbox/:"
ls "$state_dir/outbox" | head -n 5
echo "Done. The embedded store is $TEAMFORM_STATE."
