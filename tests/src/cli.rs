//! Running the real `teamform` binary as a process, and `teamform serve` in
//! the background, for end-to-end suites.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
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
    // With `dynamodb`: suites run `serve --store dynamodb:TABLE` on moto.
    BIN.get_or_init(|| build("teamform", "teamform", "dynamodb"))
        .clone()
}

/// The `api` Lambda bootstrap, built for this machine once per test process.
pub fn lambda_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("teamform-functions", "api", "aws"))
        .clone()
}

fn build(package: &str, bin: &str, features: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--locked", "--quiet", "-p", package, "--bin", bin])
        .args(["--features", features])
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

/// Runs `teamform ARGS` like [`teamform`], killing it after `limit`: for a
/// command that must exit by itself (a `serve` that must refuse to start),
/// where a regression would otherwise hang the suite.
pub fn teamform_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in ["TEAMFORM_ENDPOINT", "TEAMFORM_TOKEN", "TEAMFORM_STATE"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("teamform runs");
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn collect<R: Read + Send + 'static>(from: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut from) = from {
            let _ = from.read_to_string(&mut text);
        }
        text
    })
}

/// `teamform serve` running in the background; killed when dropped.
pub struct Served {
    child: Child,
    pub url: String,
    /// The bootstrap token serve printed, empty when it printed none (a
    /// restart over a store that already has one).
    pub token: String,
    /// Everything serve wrote to stdout and stderr so far, interleaved.
    output: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Everything serve wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Waits (up to 10 s) until serve's output contains `needle`, and returns
    /// the output either way.
    pub fn output_containing(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.output();
            if output.contains(needle) || Instant::now() >= deadline {
                return output;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Copies lines from `from` into `output`, and sends them on `lines` too
/// when given.
fn tee<R: Read + Send + 'static>(
    from: R,
    output: Arc<Mutex<String>>,
    lines: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if let Ok(mut out) = output.lock() {
                out.push_str(&line);
                out.push('\n');
            }
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    });
}

/// Starts `teamform serve` on a free port with extra args, and waits for its
/// address (its last line of start-up) and the bootstrap token printed
/// before it, if any. Panics with serve's output if it exits instead.
pub fn serve(dir: &Path, extra: &[&str]) -> Served {
    serve_with_env(dir, extra, &[])
}

/// [`serve`] with extra environment variables.
pub fn serve_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
    let mut args = vec!["serve"];
    if !extra.contains(&"--addr") {
        args.extend(["--addr", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let mut cmd = Command::new(bin());
    cmd.args(&args)
        .current_dir(dir)
        .env_remove("TEAMFORM_ENDPOINT")
        .env_remove("TEAMFORM_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    tee(
        child.stdout.take().expect("stdout"),
        output.clone(),
        Some(tx),
    );
    tee(child.stderr.take().expect("stderr"), output.clone(), None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut url, mut token) = (None, String::new());
    while url.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            let output = output.lock().map(|o| o.clone()).unwrap_or_default();
            panic!("serve did not print its address in time:\n{output}");
        };
        if let Some(u) = line.split("listening on ").nth(1) {
            url = Some(u.trim().to_owned());
        }
        if let Some(t) = line.split("): ").nth(1).filter(|t| t.starts_with("tfp_")) {
            token = t.trim().to_owned();
        }
    }
    Served {
        child,
        url: url.unwrap_or_default(),
        token,
        output,
    }
}
