//! The layers hold: each crate depends only on the crates below it, so the rules the
//! application layer owns cannot be bypassed. The web crate reaches the store and the
//! federation services only through `caremesh-app` (it has no dependency on them, so it cannot
//! write the store or queue an activity of its own); the application layer has no HTTP
//! framework and no SQL; the federation crate has no HTTP server and no SQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn dependencies(krate: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

fn sources_mention(krate: &str, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates")
            .join(krate)
            .join("src"),
    ];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && std::fs::read_to_string(&p).unwrap().contains(needle)
            {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

#[test]
fn web_reaches_the_store_only_through_the_application_layer() {
    let deps = dependencies("web");
    assert!(deps.contains(&"caremesh-app".to_owned()), "{deps:?}");
    for below in [
        "caremesh-store",
        "caremesh-store-sql",
        "caremesh-store-sqlite",
        "caremesh-store-postgres",
        "caremesh-federation",
        "caremesh-protocol",
        "sqlx",
    ] {
        assert!(
            !deps.contains(&below.to_owned()),
            "crates/web depends on {below}: handlers must call a use-case in caremesh-app instead"
        );
    }
    for needle in ["caremesh_store", "caremesh_federation", "sqlx"] {
        let files = sources_mention("web", needle);
        assert!(files.is_empty(), "{needle} named in {files:?}");
    }
}

#[test]
fn the_application_layer_has_no_http_framework_and_no_sql() {
    for krate in ["app", "federation", "store", "domain", "protocol"] {
        let deps = dependencies(krate);
        for banned in [
            "axum",
            "sqlx",
            "tower-http",
            "caremesh-web",
            "caremesh-store-sql",
        ] {
            assert!(
                !deps.contains(&banned.to_owned()),
                "crates/{krate} depends on {banned}"
            );
        }
    }
    let app = dependencies("app");
    for below in ["caremesh-domain", "caremesh-store", "caremesh-federation"] {
        assert!(app.contains(&below.to_owned()), "{app:?}");
    }
}

#[test]
fn federation_knows_nothing_of_the_application_layer() {
    let deps = dependencies("federation");
    assert!(!deps.contains(&"caremesh-app".to_owned()), "{deps:?}");
    let store = dependencies("store");
    assert!(
        !store.contains(&"caremesh-federation".to_owned()),
        "{store:?}"
    );
}
