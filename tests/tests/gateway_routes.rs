//! The deployed gateway lets the CLI through: every request the `teamform`
//! CLI sends with an API key or personal token must reach a route of
//! `infra/template.yaml` that has no JWT authorizer, or API Gateway answers
//! 401 before the function sees the credential. Read from the repository's
//! own template and the CLI's own source, so that a new CLI request or a
//! moved route fails here rather than in a deployment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::BTreeSet;

use saphyr::{LoadableYamlNode, YamlOwned};
use teamform_tests::cli::root;

/// One route of the HTTP API: method (`ANY` for all), path pattern
/// (`$default` for the catch-all), and whether the JWT authorizer guards it.
#[derive(Debug, Clone)]
struct Route {
    event: String,
    method: String,
    path: String,
    jwt: bool,
}

fn text<'a>(node: &'a YamlOwned, key: &str) -> Option<&'a str> {
    node.as_mapping_get(key)?.as_str()
}

/// The route table of the template's HTTP API events.
fn routes() -> Vec<Route> {
    let source =
        std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml");
    let docs = YamlOwned::load_from_str(&source).expect("the template is YAML");
    let template = docs.first().expect("one document");
    let resources = template
        .as_mapping_get("Resources")
        .and_then(YamlOwned::as_mapping)
        .expect("Resources");
    let api = resources
        .values()
        .find(|r| text(r, "Type") == Some("AWS::Serverless::HttpApi"))
        .expect("an HTTP API");
    let default_authorizer = api
        .as_mapping_get("Properties")
        .and_then(|p| p.as_mapping_get("Auth"))
        .and_then(|a| text(a, "DefaultAuthorizer"));
    assert_eq!(
        default_authorizer,
        Some("Jwt"),
        "the API's default authorizer"
    );
    let mut routes = Vec::new();
    for function in resources.values() {
        let Some(events) = function
            .as_mapping_get("Properties")
            .and_then(|p| p.as_mapping_get("Events"))
            .and_then(YamlOwned::as_mapping)
        else {
            continue;
        };
        for (name, event) in events {
            if text(event, "Type") != Some("HttpApi") {
                continue;
            }
            let props = event.as_mapping_get("Properties");
            let prop = |k: &str| props.and_then(|p| text(p, k));
            let authorizer = props
                .and_then(|p| p.as_mapping_get("Auth"))
                .and_then(|a| text(a, "Authorizer"));
            routes.push(Route {
                event: name.as_str().unwrap_or("?").to_owned(),
                // An event without Path and Method is the `$default` route.
                method: prop("Method").unwrap_or("ANY").to_ascii_uppercase(),
                path: prop("Path").unwrap_or("$default").to_owned(),
                jwt: authorizer != Some("NONE"),
            });
        }
    }
    routes
}

/// How a route pattern matches a concrete path: `None` when it does not,
/// else its specificity. API Gateway picks the most specific match: literal
/// segments over `{x}` (one segment) over a greedy `{x+}` (one or more), a
/// named method over `ANY`, and `$default` only when nothing else matches.
fn specificity(route: &Route, method: &str, path: &str) -> Option<(u8, usize, usize, u8)> {
    let by_method = match route.method.as_str() {
        "ANY" => 0,
        m if m == method => 1,
        _ => return None,
    };
    if route.path == "$default" {
        return Some((0, 0, 0, by_method));
    }
    let pattern: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut literal = 0;
    for (i, part) in pattern.iter().enumerate() {
        let greedy = part.starts_with('{') && part.ends_with("+}");
        if greedy {
            // Last in the pattern, and at least one segment left for it.
            return (i + 1 == pattern.len() && segments.len() > i)
                .then_some((1, literal, i, by_method));
        }
        let segment = segments.get(i).filter(|s| !s.is_empty())?;
        if part.starts_with('{') && part.ends_with('}') {
            continue;
        }
        if part != segment {
            return None;
        }
        literal += 1;
    }
    (segments.len() == pattern.len()).then_some((2, literal, pattern.len(), by_method))
}

/// The route API Gateway sends `method path` to.
fn route_of<'r>(routes: &'r [Route], method: &str, path: &str) -> &'r Route {
    routes
        .iter()
        .filter_map(|r| Some((specificity(r, method, path)?, r)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no route for {method} {path} in {routes:#?}"))
}

/// Every request path the CLI's source spells out (string literals starting
/// with `/` in `reconciler/src`), as written there.
fn paths_in_cli_source() -> BTreeSet<String> {
    let dir = root().join("reconciler/src");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("reconciler/src") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source");
        let literals = source
            .match_indices("\"/")
            .filter_map(|(at, _)| source.get(at + 1..)?.split('"').next());
        for piece in literals {
            let is_path = piece.starts_with('/')
                && piece.len() > 1
                && piece
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/{}_-.".contains(c));
            if is_path {
                found.insert(piece.to_owned());
            }
        }
    }
    found
}

/// What the CLI sends with a key or token, with the path as its source
/// spells it (`{team}` filled in below).
const CLI_REQUESTS: &[(&str, &str)] = &[
    ("GET", "/catalog"),
    ("GET", "/teams/{team}/state"),
    ("POST", "/teams/{team}/changes"),
];

#[test]
fn every_request_the_cli_sends_with_a_key_or_token_passes_the_gateway() {
    let listed: BTreeSet<String> = CLI_REQUESTS.iter().map(|(_, p)| (*p).to_owned()).collect();
    assert_eq!(
        paths_in_cli_source(),
        listed,
        "the CLI's source sends other paths than this test checks: list them in CLI_REQUESTS"
    );
    let routes = routes();
    for (method, path) in CLI_REQUESTS {
        for team in ["acme", "a-b-c"] {
            let concrete = path.replace("{team}", team);
            let route = route_of(&routes, method, &concrete);
            assert!(
                !route.jwt,
                "{method} {concrete} goes to route {} ({} {}), behind the JWT authorizer: \
                 API Gateway refuses the CLI's key or token there",
                route.event, route.method, route.path
            );
        }
    }
}

#[test]
fn people_routes_stay_behind_the_jwt_authorizer() {
    let routes = routes();
    for (method, path) in [
        ("GET", "/me"),
        ("POST", "/me/tokens"),
        ("GET", "/me/teams"),
        ("POST", "/teams"),
    ] {
        let route = route_of(&routes, method, path);
        assert!(
            route.jwt,
            "{method} {path} must carry a person's verified claims: it goes to {route:?}"
        );
    }
}

#[test]
fn route_matching_follows_api_gateway_precedence() {
    let route = |event: &str, method: &str, path: &str, jwt: bool| Route {
        event: event.into(),
        method: method.into(),
        path: path.into(),
        jwt,
    };
    let routes = [
        route("default", "ANY", "$default", true),
        route("team", "ANY", "/teams/{team}/{proxy+}", false),
        route("state", "GET", "/teams/{team}/state", true),
        route("exact", "GET", "/teams/acme/state", false),
    ];
    assert_eq!(route_of(&routes, "GET", "/teams/acme/state").event, "exact");
    assert_eq!(route_of(&routes, "GET", "/teams/beta/state").event, "state");
    assert_eq!(route_of(&routes, "POST", "/teams/beta/state").event, "team");
    assert_eq!(route_of(&routes, "GET", "/teams/beta/a/b").event, "team");
    assert_eq!(route_of(&routes, "GET", "/teams/beta").event, "default");
    assert_eq!(route_of(&routes, "GET", "/me").event, "default");
}
