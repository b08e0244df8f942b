//! Keeps `spec/openapi.yaml` and the router in step: every group route the web crate registers is
//! documented with the same methods, and every documented route is served (and asks for a
//! session first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use caremesh_domain::SystemClock;
use caremesh_store_sqlite::SqliteStore;
use caremesh_web::{AppState, WebSettings};
use tower::ServiceExt as _;

const SPEC: &str = include_str!("../../../spec/openapi.yaml");

/// The modules that register the group API, with their source.
const SOURCES: [(&str, &str); 5] = [
    ("groups.rs", include_str!("../src/groups.rs")),
    ("posts.rs", include_str!("../src/posts.rs")),
    ("media.rs", include_str!("../src/media.rs")),
    ("library.rs", include_str!("../src/library.rs")),
    ("moderation.rs", include_str!("../src/moderation.rs")),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(METHOD, path)` of every operation under `paths:`.
fn documented() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut path = None;
    for line in SPEC.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
            continue;
        }
        if !line.starts_with("   ") {
            if !line.starts_with("  ") {
                path = None;
            }
            continue;
        }
        if let (Some(p), Some(m)) = (
            &path,
            line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')),
        ) && METHODS.contains(&m)
        {
            out.insert((m.to_uppercase(), p.clone()));
        }
    }
    out
}

/// `(METHOD, path)` of every `.route(PATH, method(handler)...)` in the group modules.
fn registered() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (file, src) in SOURCES {
        let mut rest = src;
        while let Some(i) = rest.find(".route(") {
            let call = &rest[i + ".route(".len()..];
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(j, _)| j)
                .unwrap_or_else(|| panic!("unbalanced .route( in {file}"));
            let args = &call[..end];
            let (first, methods) = args.split_once(',').unwrap();
            let first = first.trim();
            let path = if first == "UPLOAD_ROUTE" {
                caremesh_web::media::UPLOAD_ROUTE.to_owned()
            } else {
                first.trim_matches('"').to_owned()
            };
            assert!(path.starts_with("/api/v1/"), "{file}: {path}");
            for m in METHODS {
                let needle = format!("{m}(");
                let mut from = 0;
                while let Some(k) = methods[from..].find(&needle) {
                    let at = from + k;
                    let before = methods[..at].chars().last().unwrap_or(' ');
                    if !before.is_alphanumeric() && before != '_' {
                        out.insert((m.to_uppercase(), path.clone()));
                    }
                    from = at + needle.len();
                }
            }
            rest = &call[end..];
        }
    }
    out
}

#[test]
fn every_group_route_is_documented_and_nothing_else() {
    let doc = documented();
    let reg = registered();
    assert!(reg.len() > 40, "the scan found only {} routes", reg.len());
    let undocumented: Vec<_> = reg.difference(&doc).collect();
    let unserved: Vec<_> = doc.difference(&reg).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "registered but not in spec/openapi.yaml: {undocumented:?}\nin spec/openapi.yaml but not registered: {unserved:?}"
    );
}

fn settings() -> WebSettings {
    WebSettings {
        base_url: "http://127.0.0.1:8080/".parse().unwrap(),
        hospital_name: "Test".into(),
        max_body_bytes: 1 << 20,
        session_ttl_secs: 3600,
        login_max_failures: 5,
        login_window_secs: 900,
        invite_ttl_hours: 24,
        trusted_proxies: Vec::new(),
        max_members: 500,
        media_dir: std::env::temp_dir().join("caremesh-openapi-test-media"),
        max_file_bytes: 1 << 20,
        group_quota_bytes: 1 << 30,
        max_image_pixels: 1_000_000,
        max_concurrent_password_hashes: 2,
        max_concurrent_decodes: 1,
    }
}

#[tokio::test]
async fn every_documented_route_is_served_and_needs_a_session() {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let federation = caremesh_federation::Federation::new(
        store.clone(),
        Arc::new(SystemClock),
        caremesh_federation::Urls::new(settings().base_url),
        caremesh_federation::FederationSettings::default(),
    )
    .unwrap();
    let settings = settings();
    let app = caremesh_app::App::new(
        store,
        Arc::new(SystemClock),
        federation,
        settings.app_settings(),
    );
    let app = caremesh_web::router(AppState::new(app, settings));
    for (method, path) in documented() {
        let concrete = path
            .replace("{gid}", "g1")
            .replace("{pid}", "p1")
            .replace("{aid}", "a1")
            .replace("{token}", "t1")
            .replace("{mid}", "1")
            .replace("{iid}", "1")
            .replace("{fid}", "1")
            .replace("{rid}", "1");
        let req = Request::builder()
            .method(method.as_str())
            .uri(&concrete)
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} is documented but answers {} without a session",
            resp.status()
        );
    }
}
