#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

//! The default build has no AWS SDK: `serve --store dynamodb:TABLE` says
//! which feature it needs instead of failing later or being ignored.

use clap::Parser;
use teamform::cli::Cli;

#[cfg(not(feature = "dynamodb"))]
#[tokio::test]
async fn dynamodb_store_without_the_feature_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let cli = Cli::try_parse_from([
        "teamform",
        "--state",
        state.to_str().unwrap(),
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--store",
        "dynamodb:teams",
        "--owner",
        "alice@acme.com",
    ])
    .unwrap();
    let err = teamform::run::run(cli).await.unwrap_err().to_string();
    assert!(err.contains("--store dynamodb:teams"), "{err}");
    assert!(err.contains("`dynamodb` feature"), "{err}");
    assert!(err.contains("--features dynamodb"), "{err}");
    // Refused before anything was opened or created.
    assert!(!state.exists());
}

/// With the feature the option is taken: a missing `--owner` is the first
/// thing it objects to, not the build.
#[cfg(feature = "dynamodb")]
#[tokio::test]
async fn dynamodb_store_with_the_feature_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let cli = Cli::try_parse_from([
        "teamform",
        "--state",
        state.to_str().unwrap(),
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--store",
        "dynamodb:teams",
    ])
    .unwrap();
    let err = teamform::run::run(cli).await.unwrap_err().to_string();
    assert!(err.contains("needs a named owner"), "{err}");
    assert!(!err.contains("feature"), "{err}");
}
