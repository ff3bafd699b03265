//! Which team files a command works on: files as named, and directories
//! searched for team files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The files named, in order, with each directory replaced by the team
/// files within it (recursively, sorted, hidden entries skipped). A team
/// file is a `*.yaml` or `*.yml` file with a top-level `team:` field, so
/// that other YAML in the same tree (a catalog, a workflow) is left out.
/// A path that does not exist is kept, for the command to report.
pub fn expand(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let before = out.len();
            walk(arg, &mut out)?;
            if out.len() == before {
                bail!(
                    "no team files in {} (*.yaml or *.yml files with a top-level `team:` field)",
                    arg.display()
                );
            }
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

/// Whether any argument is a directory: then several files are expected.
pub fn names_a_directory(args: &[PathBuf]) -> bool {
    args.iter().any(|a| a.is_dir())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_team_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_team_file(path: &Path) -> bool {
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == "yaml" || e == "yml");
    yaml && std::fs::read_to_string(path)
        .is_ok_and(|text| text.lines().any(|l| l.starts_with("team:")))
}
