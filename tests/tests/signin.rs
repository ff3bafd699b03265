#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
//! People on `teamform serve`, signed in by a real OpenID Connect provider
//! (oidc-provider from npm): bearer JWTs on the API, and the browser round
//! trip (sign-in, the emailed link's page, accepting, the team page) driven
//! over HTTP with a cookie jar, as a browser does it.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;
use teamform_tests::oidc::{Provider, key};
use teamform_tests::people::{api, link_in, start};

/// A browser: cookies kept, redirects followed by hand (so the test sees them).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
}

/// Opens `url` in `browser`, signing in at the provider as `email` when sent
/// there, following redirects; returns the last answer and its URL.
async fn open(
    browser: &reqwest::Client,
    provider: &Provider,
    base: &str,
    url: &str,
    email: &str,
) -> (StatusCode, String, String) {
    let mut url = url.to_owned();
    for _ in 0..12 {
        let r = browser.get(&url).send().await.unwrap();
        match location(&r) {
            Some(next) => {
                url = if next.starts_with("http") {
                    next
                } else if url.starts_with(&provider.issuer) {
                    format!("{}{next}", provider.issuer)
                } else {
                    format!("{base}{next}")
                };
                if let Some(uid) = url
                    .strip_prefix(&format!("{}/interaction/", provider.issuer))
                    .map(str::to_owned)
                {
                    let r = browser
                        .post(format!("{}/interaction/{uid}/login", provider.issuer))
                        .form(&[("email", email)])
                        .send()
                        .await
                        .unwrap();
                    url = location(&r).expect("the provider continues");
                }
            }
            None => {
                let status = r.status();
                return (status, url, r.text().await.unwrap());
            }
        }
    }
    panic!("too many redirects");
}

/// The CSRF token of the first form of a page.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn bearer_tokens_of_the_provider_act_as_their_person_and_forgeries_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let (provider, served) = start(dir.path());
    let jwt = provider.id_token("olivia@acme.com", false).await;
    let (status, me) = api(&served, &jwt, "GET", "/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["kind"].as_str(), me["email"].as_str()),
        (Some("person"), Some("olivia@acme.com"))
    );
    // The person creates a team with nothing but the provider's token.
    let team = json!({"team": "acme", "display_name": "Acme", "owner": "olivia@acme.com"});
    let (status, body) = api(&served, &jwt, "POST", "/teams", Some(team)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let pem = std::fs::read(key("rogue")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("trusted".into());
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": provider.issuer, "aud": "teamform", "sub": "olivia@acme.com",
        "email": "olivia@acme.com", "email_verified": true, "exp": now + 300});
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    let (status, body) = api(&served, &forged, "GET", "/teams/acme/members", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_signature")),
        "{body}"
    );
    // Signed with the provider's own key, each wrong in one claim.
    let trusted =
        jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(key("trusted")).unwrap()).unwrap();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims.clone();
        c[k] = v;
        jsonwebtoken::encode(&header, &c, &trusted).unwrap()
    };
    for (token, code) in [
        (with("iss", json!("http://127.0.0.1:1")), "token_issuer"),
        (with("aud", json!("someone-else")), "token_audience"),
        (with("exp", json!(now - 600)), "token_expired"),
        (with("email_verified", json!(false)), "email_unverified"),
    ] {
        let (status, body) = api(&served, &token, "GET", "/teams/acme/members", None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(code)),
            "{body}"
        );
    }
    // The control: the same key and claims, nothing wrong, pass.
    let (status, body) = api(
        &served,
        &with("sub", json!("olivia@acme.com")),
        "GET",
        "/teams/acme/members",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api(
        &served,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "GET",
        "/me",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_algorithm")),
        "{body}"
    );
    let unverified = provider.id_token("unverified@acme.com", false).await;
    let (status, body) = api(&served, &unverified, "GET", "/me", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("email_unverified")),
        "{body}"
    );
}

#[tokio::test]
async fn an_invitee_signs_in_from_the_emailed_link_and_joins_and_a_wrong_person_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let (provider, served) = start(dir.path());
    let base = served.url.clone();
    let owner = &served.token;
    let team = json!({"team": "acme", "display_name": "Acme", "owner": "olivia@acme.com"});
    assert_eq!(
        api(&served, owner, "POST", "/teams", Some(team)).await.0,
        StatusCode::CREATED
    );
    let invite = json!({"email": "bob@acme.com", "roles": ["developer"]});
    let (status, body) = api(
        &served,
        owner,
        "POST",
        "/teams/acme/invitations",
        Some(invite),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let outbox = dir.path().join(".teamform/outbox");
    let link = link_in(&outbox, "bob@acme.com", "/join?token=tfi_");
    assert!(
        link.starts_with(&format!("{base}/join?token=")),
        "absolute: {link}"
    );

    // Carol, signed in, opens Bob's link: told it is Bob's, and nothing is used.
    let carol = browser();
    let (status, _, page) = open(
        &carol,
        &provider,
        &base,
        &format!("{base}/signin"),
        "carol@acme.com",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _, page) = open(&carol, &provider, &base, &link, "carol@acme.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("This link is for") && page.contains("bob@acme.com"),
        "{page}"
    );
    assert!(
        !page.contains("/ui/invitations/accept"),
        "no accept form for the wrong person"
    );
    // Even a forged post of the form by Carol (with her own CSRF token) is refused.
    let (_, _, home) = open(
        &carol,
        &provider,
        &base,
        &format!("{base}/"),
        "carol@acme.com",
    )
    .await;
    let token = link.split("token=").nth(1).unwrap();
    let r = carol
        .post(format!("{base}/ui/invitations/accept"))
        .form(&[("token", token), ("csrf", &csrf(&home))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Bob: the link's page says what is offered, then sends him to sign in.
    let bob = browser();
    let r = bob.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    for shown in [
        "Acme",
        "bob@acme.com",
        "developer",
        "Valid until",
        "Sign in",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    let signin = format!(
        "{base}/signin?return_to={}",
        teamform_functions::auth::oidc::form_encode(&link.replacen(&base, "", 1))
    );
    let (status, url, page) = open(&bob, &provider, &base, &signin, "bob@acme.com").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(url.starts_with(&link), "back on the link's page: {url}");
    assert!(page.contains("Accept and join Acme"), "{page}");
    // Without the page's CSRF token, the post is refused.
    let r = bob
        .post(format!("{base}/ui/invitations/accept"))
        .form(&[("token", token), ("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = bob
        .post(format!("{base}/ui/invitations/accept"))
        .form(&[("token", token), ("csrf", &csrf(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r).as_deref(), Some("/ui/teams/acme"));
    let (status, _, team_page) = open(
        &bob,
        &provider,
        &base,
        &format!("{base}/ui/teams/acme"),
        "bob@acme.com",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{team_page}");
    assert!(
        team_page.contains("bob@acme.com") && team_page.contains("Joined"),
        "{team_page}"
    );
    let (_, members) = api(
        &served,
        owner,
        "GET",
        "/teams/acme/members?status=joined",
        None,
    )
    .await;
    let joined: Vec<&str> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert!(joined.contains(&"bob@acme.com"), "{members}");

    // The used link now opens the "no longer works" page, for anyone.
    let r = bob.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("This link no longer works")
    );
    // Cookies are HttpOnly and SameSite=Lax.
    let r = browser()
        .get(format!("{base}/signin"))
        .send()
        .await
        .unwrap();
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
}

#[tokio::test]
async fn sign_in_refuses_a_forged_state_and_never_returns_to_another_site() {
    let dir = tempfile::tempdir().unwrap();
    let (provider, served) = start(dir.path());
    let base = served.url.clone();
    let b = browser();
    let r = b
        .get(format!("{base}/signin?return_to=https://evil.io/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_provider = location(&r).unwrap();
    assert!(to_provider.starts_with(&provider.issuer), "{to_provider}");
    for param in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "client_id=teamform&",
    ] {
        assert!(to_provider.contains(param), "{param}: {to_provider}");
    }
    // A callback with a state this browser did not start is refused.
    let r = b
        .get(format!("{base}/auth/callback?code=x&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The real round trip ends at home, not at the other site.
    let (status, url, _) = open(
        &b,
        &provider,
        &base,
        &format!("{base}/signin?return_to=https://evil.io/"),
        "dan@acme.com",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(url, format!("{base}/"));
}
