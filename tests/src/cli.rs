//! Running the real `teamform` binary as a process, and `teamform serve` in
//! the background, for end-to-end suites.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `teamform` binary, built once per test process (a no-op when fresh).
pub fn bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("teamform", "teamform")).clone()
}

/// The `api` Lambda bootstrap, built for this machine once per test process.
pub fn lambda_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("teamform-functions", "api"))
        .clone()
}

fn build(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--locked", "--quiet", "-p", package, "--bin", bin])
        .current_dir(root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {bin} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("debug").join(bin)
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `teamform ARGS` in `dir` with a clean teamform environment plus `env`.
pub fn teamform(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for var in [
        "TEAMFORM_ENDPOINT",
        "TEAMFORM_TOKEN",
        "TEAMFORM_STATE",
        "TEAMFORM_CATALOG",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("teamform runs");
    Run {
        // A signal (a crash) has no code: report it as such, never as success.
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `teamform serve` running in the background; killed when dropped.
pub struct Served {
    child: Child,
    pub url: String,
    pub token: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `teamform serve` on a free port with extra args, and waits for its
/// address and bootstrap token.
pub fn serve(dir: &Path, extra: &[&str]) -> Served {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = Command::new(bin())
        .args(&args)
        .current_dir(dir)
        .env_remove("TEAMFORM_ENDPOINT")
        .env_remove("TEAMFORM_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("serve printed its address and token in time");
        if let Some(u) = line.split("listening on ").nth(1) {
            url = Some(u.trim().to_owned());
        }
        if let Some(t) = line.split("): ").nth(1).filter(|t| t.starts_with("tfp_")) {
            token = Some(t.trim().to_owned());
        }
    }
    Served {
        child,
        url: url.unwrap_or_default(),
        token: token.unwrap_or_default(),
    }
}
