"""Checks action.yml's metadata and writes its steps as a workflow, so that
actionlint (which lints workflows) checks the steps, their expressions and
the inputs they use: python3 scripts/action_as_workflow.py action.yml OUT.yml
"""
import sys

import yaml

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    action = yaml.safe_load(f)

problems = []
for key in ("name", "description", "runs"):
    if key not in action:
        problems.append(f"{src}: missing `{key}`")
allowed = {"name", "description", "author", "branding", "inputs", "outputs", "runs"}
for key in sorted(set(action) - allowed):
    problems.append(f"{src}: unknown key `{key}`")
runs = action.get("runs", {})
if runs.get("using") != "composite":
    problems.append(f"{src}: runs.using must be composite")
inputs = action.get("inputs", {}) or {}
for name, spec in inputs.items():
    if "description" not in (spec or {}):
        problems.append(f"{src}: input `{name}` has no description")
step_ids = {s.get("id") for s in runs.get("steps", [])}
for name, spec in (action.get("outputs", {}) or {}).items():
    value = (spec or {}).get("value", "")
    if "description" not in (spec or {}) or "steps." not in value:
        problems.append(f"{src}: output `{name}` needs a description and a steps.* value")
    elif value.split("steps.")[1].split(".")[0] not in step_ids:
        problems.append(f"{src}: output `{name}` names a step that does not exist")
for i, step in enumerate(runs.get("steps", [])):
    if "run" in step and "shell" not in step:
        problems.append(f"{src}: step {i + 1} runs a command without `shell`")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)

workflow = {
    "name": f"{src} as a workflow",
    "on": {
        "workflow_call": {
            "inputs": {
                name: {
                    "description": spec.get("description", ""),
                    "type": "string",
                    "required": False,
                }
                for name, spec in inputs.items()
            }
        },
        "pull_request": None,
    },
    "jobs": {
        "action": {
            "runs-on": "ubuntu-latest",
            "steps": runs.get("steps", []),
        }
    },
}
with open(dst, "w") as f:
    yaml.safe_dump(workflow, f, sort_keys=False)
