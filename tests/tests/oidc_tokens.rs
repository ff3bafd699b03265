#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
//! Token verification against a real OpenID Connect provider (oidc-provider
//! from npm): tokens it signs pass; forged ones are refused, each with its
//! own code.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use teamform_functions::auth::oidc::{OidcConfig, TokenError, Verifier};
use teamform_tests::oidc::{Provider, key};

fn verifier(provider: &Provider) -> Verifier {
    Verifier::new(OidcConfig::new(&provider.issuer, "teamform-cli").unwrap())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token signed with a fixture key, claims as given.
fn forge(key_name: &str, kid: &str, claims: serde_json::Value) -> String {
    let pem = std::fs::read(key(key_name)).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

fn claims(provider: &Provider) -> serde_json::Value {
    json!({
        "iss": provider.issuer, "aud": "teamform-cli", "sub": "bob@acme.com",
        "email": "bob@acme.com", "email_verified": true,
        "iat": now(), "exp": now() + 300,
    })
}

fn b64(v: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn tokens_the_provider_signs_name_their_person() {
    let provider = Provider::start(&["trusted"], &[], 0);
    let v = verifier(&provider);
    let plain = provider.id_token("alice@acme.com", false).await;
    let who = v.verify(&plain).await.unwrap();
    assert_eq!(who.email.as_str(), "alice@acme.com");
    assert!(!who.two_factor);
    let strong = provider.id_token("Carol@Acme.com", true).await;
    let who = v.verify(&strong).await.unwrap();
    assert_eq!(
        who.email.key(),
        "carol@acme.com",
        "emails compare in lower case"
    );
    assert!(who.two_factor, "amr names mfa");
    let unverified = provider.id_token("unverified@acme.com", false).await;
    assert_eq!(
        v.verify(&unverified).await,
        Err(TokenError::EmailUnverified)
    );
    // A token for another client of the same provider.
    let other = Verifier::new(OidcConfig::new(&provider.issuer, "teamform").unwrap());
    assert_eq!(other.verify(&plain).await, Err(TokenError::Audience));
}

#[tokio::test]
async fn forged_tokens_are_refused_each_with_its_reason() {
    let provider = Provider::start(&["trusted"], &[], 0);
    let v = verifier(&provider);
    let good = claims(&provider);
    // The fixture key is the provider's: a token signed with it and right
    // claims passes, so each case below fails for its one difference.
    assert!(
        v.verify(&forge("trusted", "trusted", good.clone()))
            .await
            .is_ok()
    );

    let with = |k: &str, val: serde_json::Value| {
        let mut c = good.clone();
        c[k] = val;
        c
    };
    let cases = [
        (
            forge("rogue", "trusted", good.clone()),
            TokenError::Signature,
        ),
        (
            forge("rogue", "rogue", good.clone()),
            TokenError::UnknownKey,
        ),
        (
            forge(
                "trusted",
                "trusted",
                with("iss", json!("http://127.0.0.1:1")),
            ),
            TokenError::Issuer,
        ),
        (
            forge("trusted", "trusted", with("aud", json!("someone-else"))),
            TokenError::Audience,
        ),
        (
            forge("trusted", "trusted", with("exp", json!(now() - 600))),
            TokenError::Expired,
        ),
        (
            forge("trusted", "trusted", with("nbf", json!(now() + 600))),
            TokenError::NotYetValid,
        ),
        (
            forge("trusted", "trusted", with("email_verified", json!(false))),
            TokenError::EmailUnverified,
        ),
        (
            forge("trusted", "trusted", with("email", json!(null))),
            TokenError::NoEmail,
        ),
        ("not.a.token".to_owned(), TokenError::Malformed),
    ];
    for (token, want) in cases {
        assert_eq!(v.verify(&token).await, Err(want.clone()), "{want:?}");
    }

    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "trusted"})),
        b64(&good)
    );
    let refused = v.verify(&none).await.unwrap_err();
    assert_eq!(refused.code(), "token_algorithm", "{refused:?}");
    // HS256 keyed with the provider's public key (the RS/HS confusion).
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", provider.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("trusted".into());
    let confused =
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(&public).unwrap()).unwrap();
    assert_eq!(
        v.verify(&confused).await,
        Err(TokenError::Algorithm("HS256".into()))
    );
    // The codes are distinct: each reason is visible to the client.
    let codes: std::collections::BTreeSet<_> = [
        TokenError::Signature,
        TokenError::UnknownKey,
        TokenError::Issuer,
        TokenError::Audience,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::EmailUnverified,
        TokenError::NoEmail,
        TokenError::Malformed,
    ]
    .iter()
    .map(TokenError::code)
    .collect();
    assert_eq!(codes.len(), 9);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_unknown_keys_do_not_hammer_the_provider() {
    let provider = Provider::start(&["trusted"], &[], 0);
    let port = provider.port();
    let v = verifier(&provider).with_refresh_interval(Duration::from_secs(2));
    let first = provider.id_token("alice@acme.com", false).await;
    v.verify(&first).await.unwrap();
    // A token naming an unknown key right after a fetch: refused without
    // asking the provider again (the provider is down now, and the answer is
    // still "unknown key", not "unavailable").
    drop(provider);
    let rogue = forge("rogue", "rogue", json!({}));
    assert_eq!(v.verify(&rogue).await, Err(TokenError::UnknownKey));

    // The provider comes back on the same issuer signing with a new key.
    let provider = Provider::start(&["next", "trusted"], &[], port);
    let rotated = provider.id_token("alice@acme.com", false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let who = v.verify(&rotated).await.unwrap();
    assert_eq!(who.email.as_str(), "alice@acme.com");
    // The old key is still published, so tokens signed with it still pass.
    v.verify(&first).await.unwrap();
}
