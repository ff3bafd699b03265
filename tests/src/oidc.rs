//! A real OpenID Connect provider for the tests: `oidc-provider` from npm
//! (tests/oidc/provider.mjs, installed by scripts/test.sh), on a free
//! loopback port, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use sha2::{Digest, Sha256};

/// The provider's directory (its script, keys and node_modules).
pub fn dir() -> PathBuf {
    crate::cli::root().join("tests/oidc")
}

/// A signing key of the fixtures: `trusted` (the provider's), `next` (its
/// next one, for rotation) or `rogue` (nobody's).
pub fn key(name: &str) -> PathBuf {
    dir().join("keys").join(format!("{name}.pem"))
}

pub struct Provider {
    pub issuer: String,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts the provider signing with `keys` (PEM names, the first signs),
    /// accepting `redirect_uris` for the `teamform` client, on `port` (0: any).
    pub fn start(keys: &[&str], redirect_uris: &[&str], port: u16) -> Provider {
        let node_modules = dir().join("node_modules/oidc-provider");
        assert!(
            node_modules.is_dir(),
            "{} is missing: scripts/test.sh installs it (npm ci --prefix tests/oidc)",
            node_modules.display()
        );
        let keys: Vec<String> = keys.iter().map(|k| key(k).display().to_string()).collect();
        let mut child = Command::new("node")
            .arg(dir().join("provider.mjs"))
            .env("OIDC_KEYS", keys.join(","))
            .env("OIDC_REDIRECT_URIS", redirect_uris.join(","))
            .env("OIDC_PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs tests/oidc/provider.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the provider prints its issuer");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the provider's first line {line:?}: {e}"));
        let issuer = v["issuer"].as_str().expect("issuer").to_owned();
        Provider { issuer, child }
    }

    pub fn port(&self) -> u16 {
        self.issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the issuer")
    }

    /// Signs `email` in at the provider as the `teamform-cli` client (the
    /// authorization code flow with PKCE, over HTTP, as a browser would) and
    /// returns the ID token.
    pub async fn id_token(&self, email: &str, second_factor: bool) -> String {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let verifier = "a-test-code-verifier-of-enough-length-0123456789";
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:1/callback";
        let auth = format!(
            "{}/auth?client_id=teamform-cli&response_type=code&scope=openid%20email\
             &redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256\
             &state=s&nonce=n",
            self.issuer,
            teamform_functions::auth::oidc::form_encode(redirect)
        );
        let mut url = auth;
        let mut logged_in = false;
        for _ in 0..10 {
            let r = http.get(&url).send().await.expect("provider answers");
            let location = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            if let Some(location) = location {
                let next = if location.starts_with("http") {
                    location
                } else {
                    format!("{}{location}", self.issuer)
                };
                if let Some(code) = next.strip_prefix(&format!("{redirect}?")) {
                    let code = code
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("code="))
                        .expect("a code");
                    return self.exchange(&http, code, verifier, redirect).await;
                }
                url = next;
                continue;
            }
            assert!(
                !logged_in,
                "the provider asked twice: {}",
                r.text().await.unwrap_or_default()
            );
            let uid = url.rsplit('/').next().expect("interaction uid").to_owned();
            let mut form = vec![("email", email)];
            if second_factor {
                form.push(("mfa", "1"));
            }
            let r = http
                .post(format!("{}/interaction/{uid}/login", self.issuer))
                .form(&form)
                .send()
                .await
                .expect("login");
            url = r
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("login answered {}", r.status()));
            logged_in = true;
        }
        panic!("no code after 10 redirects");
    }

    async fn exchange(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
        redirect: &str,
    ) -> String {
        let r = http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
                ("client_id", "teamform-cli"),
            ])
            .send()
            .await
            .expect("token endpoint");
        let status = r.status();
        let body: serde_json::Value = r.json().await.expect("token JSON");
        assert!(status.is_success(), "{status}: {body}");
        body["id_token"].as_str().expect("an id_token").to_owned()
    }
}
