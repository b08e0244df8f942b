//! Accounts over real HTTP: sign-up by invite, login and logout, sessions, admin routes, and the
//! error answers for bad input. Every scenario runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caremesh_domain::Role;
use caremesh_testkit::{Backend, TestNode, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    patient_signs_up_by_invite_and_logs_in_and_out,
    wrong_password_is_refused_and_throttled,
    expired_used_and_revoked_invites_create_nothing,
    sessions_expire,
    admin_routes_refuse_anonymous_and_other_roles,
    bad_input_gets_clear_errors_and_changes_nothing,
    admin_manages_doctors_passwords_and_credentials,
    cookie_writes_from_other_origins_are_refused,
    operations_endpoints_report_health_and_metrics,
    account_lists_page_by_cursor,
);

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn create_invite(node: &TestNode, admin: &str, body: Value) -> Value {
    let resp = node
        .http
        .post(node.url("/api/v1/admin/invites"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn signup(node: &TestNode, token: &str, username: &str) -> (StatusCode, Value) {
    let resp = node
        .http
        .post(node.url("/api/v1/signup"))
        .json(&json!({
            "invite": token,
            "username": username,
            "display_name": "乳腺癌病友 小李",
            "password": "a long patient password",
        }))
        .send()
        .await
        .unwrap();
    json_of(resp).await
}

async fn me(node: &TestNode, token: &str) -> (StatusCode, Value) {
    json_of(
        node.http
            .get(node.url("/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn patient_signs_up_by_invite_and_logs_in_and_out(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let invite = create_invite(&node, &admin, json!({ "label": "cardiology ward" })).await;
    let token = invite["token"].as_str().unwrap();
    assert_eq!(invite["url"], node.url(&format!("/join/{token}")));
    assert_eq!(invite["invite"]["state"], "usable");
    assert_eq!(invite["invite"]["max_uses"], 1);

    let (status, info) = json_of(
        node.http
            .get(node.url(&format!("/api/v1/invites/{token}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["hospital_name"], "Test Hospital");

    let (status, body) = signup(&node, token, "xiaoli").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["account"]["role"], "patient");
    assert_eq!(body["account"]["display_name"], "乳腺癌病友 小李");
    let signup_token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(me(&node, &signup_token).await.1["username"], "xiaoli");

    // Log in again with the password, through the cookie this time.
    let resp = node
        .http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({ "username": "xiaoli", "password": "a long patient password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let via_cookie = node
        .http
        .get(node.url("/api/v1/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(via_cookie.status(), StatusCode::OK);

    // Logout ends exactly that session.
    let out = node
        .http
        .post(node.url("/api/v1/auth/logout"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = node
        .http
        .get(node.url("/api/v1/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&node, &signup_token).await.0, StatusCode::OK);

    // The single-use invite is spent.
    let (status, body) = signup(&node, token, "someone.else").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"], "invite_used");
    node.stop().await;
}

async fn wrong_password_is_refused_and_throttled(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    node.create_account(Role::Doctor, "dr.wang", "the right password")
        .await;
    let attempt = |password: &'static str, user: &'static str| {
        let node = &node;
        async move {
            json_of(
                node.http
                    .post(node.url("/api/v1/auth/login"))
                    .json(&json!({ "username": user, "password": password }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) = attempt("wrong password", "dr.wang").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_credentials");
    // An unknown account gets the same answer, so accounts cannot be discovered.
    let (status, unknown) = attempt("whatever pass", "nobody").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, body);
    for _ in 1..5 {
        assert_eq!(
            attempt("wrong password", "dr.wang").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Five failures: now even the right password is refused until the window passes.
    let resp = node
        .http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({ "username": "dr.wang", "password": "the right password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    assert_eq!(json_of(resp).await.1["error"], "too_many_attempts");
    node.clock.advance_secs(901);
    assert_eq!(
        attempt("the right password", "dr.wang").await.0,
        StatusCode::OK
    );
    node.stop().await;
}

async fn expired_used_and_revoked_invites_create_nothing(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let expiring = create_invite(&node, &admin, json!({ "valid_hours": 1 })).await;
    let revoked = create_invite(&node, &admin, json!({ "max_uses": 3 })).await;
    let id = revoked["invite"]["id"].as_i64().unwrap();
    let resp = node
        .http
        .delete(node.url(&format!("/api/v1/admin/invites/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "revoked");

    node.clock.advance_secs(3601);
    let (status, body) = signup(&node, expiring["token"].as_str().unwrap(), "late.patient").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"], "invite_expired");
    let (status, body) = signup(&node, revoked["token"].as_str().unwrap(), "rev.patient").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"], "invite_revoked");
    let (status, body) = signup(&node, "not-a-real-token", "nobody.patient").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let info = node
        .http
        .get(node.url("/api/v1/invites/not-a-real-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        node.store.count_users(Some(Role::Patient)).await.unwrap(),
        0
    );
    node.stop().await;
}

async fn sessions_expire(b: Backend) {
    let Some(node) = TestNode::spawn_with(b, |c| c.auth.session_ttl_minutes = 30).await else {
        return;
    };
    let token = node.account_with_token(Role::Patient, "patient").await;
    node.clock.advance_secs(29 * 60);
    assert_eq!(me(&node, &token).await.0, StatusCode::OK);
    node.clock.advance_secs(60);
    let (status, body) = me(&node, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    node.stop().await;
}

async fn admin_routes_refuse_anonymous_and_other_roles(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    node.account_with_token(Role::Doctor, "dr.target").await;
    let others = [
        node.account_with_token(Role::Patient, "patient").await,
        node.account_with_token(Role::Doctor, "doctor").await,
        node.account_with_token(Role::Staff, "staff").await,
    ];
    let routes: [(&str, &str, Value); 10] = [
        ("GET", "/api/v1/admin/accounts", Value::Null),
        (
            "POST",
            "/api/v1/admin/accounts",
            json!({"username": "new.doc", "display_name": "N", "role": "doctor"}),
        ),
        ("GET", "/api/v1/admin/accounts/dr.target", Value::Null),
        (
            "POST",
            "/api/v1/admin/accounts/dr.target/password",
            json!({}),
        ),
        (
            "POST",
            "/api/v1/admin/accounts/dr.target/disable",
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/admin/accounts/dr.target/enable",
            Value::Null,
        ),
        (
            "PUT",
            "/api/v1/admin/accounts/dr.target/credential",
            json!({"title": "t", "specialty": "s", "licence_number": "1", "checked_on": "2026-11-01"}),
        ),
        (
            "DELETE",
            "/api/v1/admin/accounts/dr.target/credential",
            Value::Null,
        ),
        ("GET", "/api/v1/admin/invites", Value::Null),
        ("POST", "/api/v1/admin/invites", json!({})),
    ];
    let send = |method: &str, path: &str, body: &Value, token: Option<&str>| {
        let mut req = node.http.request(method.parse().unwrap(), node.url(path));
        if !body.is_null() {
            req = req.json(body);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    for (method, path, body) in &routes {
        let (status, err) = json_of(send(method, path, body, None).await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
        assert_eq!(err["error"], "unauthenticated");
        let (status, _) = json_of(
            send(method, path, body, Some("garbage-token"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "bad token {method} {path}"
        );
        for t in &others {
            let (status, err) = json_of(send(method, path, body, Some(t)).await.unwrap()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(err["error"], "forbidden");
        }
    }
    // Nothing the refused requests asked for happened.
    assert!(
        node.store
            .user_by_username("new.doc")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        !node
            .store
            .user_by_username("dr.target")
            .await
            .unwrap()
            .disabled
    );
    assert!(node.store.list_invites(None, 10).await.unwrap().is_empty());
    // The administrator gets through on every route.
    for (method, path, body) in &routes {
        let (status, resp) = json_of(send(method, path, body, Some(&admin)).await.unwrap()).await;
        assert!(
            status.is_success(),
            "admin {method} {path}: {status} {resp}"
        );
    }
    node.stop().await;
}

async fn bad_input_gets_clear_errors_and_changes_nothing(b: Backend) {
    let Some(node) = TestNode::spawn_with(b, |c| c.http.max_body_bytes = 4096).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let post = |body: String, content_type: &'static str| {
        node.http
            .post(node.url("/api/v1/admin/accounts"))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(String, &str, StatusCode, &str)> = vec![
        (
            "{\"username\": ".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "not json".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json!({"username": 5, "display_name": "x", "role": "doctor"}).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"display_name": "x", "role": "doctor"}).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"username": "dr.x", "display_name": "x", "role": "surgeon"}).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"username": "dr.x", "display_name": "x", "role": "doctor", "extra": 1})
                .to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"username": "Dr X", "display_name": "x", "role": "doctor"}).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"username": "dr.x", "display_name": "x", "role": "doctor", "password": "short"})
                .to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"username": "dr.x", "display_name": "x", "role": "patient"}).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "patients_sign_up_by_invite",
        ),
        (
            json!({"username": "admin", "display_name": "x", "role": "doctor"}).to_string(),
            "application/json",
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            json!({"username": "dr.x", "display_name": "x", "role": "doctor"}).to_string(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            format!("{{\"username\": \"{}\"}}", "x".repeat(5000)),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (body, ct, want_status, want_code) in cases {
        let (status, err) = json_of(post(body.clone(), ct).await.unwrap()).await;
        assert_eq!(status, want_status, "{body:.80}: {err}");
        assert_eq!(err["error"], want_code, "{body:.80}");
        assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A body over the limit sent without Content-Length (chunked) is refused too.
    let raw = chunked_post(&node, "/api/v1/admin/accounts", &admin, &"y".repeat(8000)).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw:.200}");
    assert!(raw.contains("\"payload_too_large\""), "{raw}");
    // The admin is unchanged and nobody else was created.
    assert_eq!(node.store.count_users(None).await.unwrap(), 1);
    let stored = node.store.user_by_username("admin").await.unwrap();
    assert_eq!(stored.role, Role::Admin);

    let (status, err) = json_of(
        node.http
            .get(node.url("/api/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, err) = json_of(
        node.http
            .delete(node.url("/api/v1/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let (status, err) = json_of(
        node.http
            .delete(node.url("/api/v1/admin/invites/abc"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_path"))
    );
    node.stop().await;
}

/// Sends a JSON body with `Transfer-Encoding: chunked` (no Content-Length) over a raw socket and
/// returns the raw response.
async fn chunked_post(node: &TestNode, path: &str, token: &str, filler: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = node.config.listen;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = format!("{{\"username\": \"{filler}\"}}");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(1000) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            String::from_utf8_lossy(chunk)
        ));
    }
    req.push_str("0\r\n\r\n");
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn admin_manages_doctors_passwords_and_credentials(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let resp = node
        .http
        .post(node.url("/api/v1/admin/accounts"))
        .bearer_auth(&admin)
        .json(&json!({"username": "dr.li", "display_name": "李医生", "role": "doctor"}))
        .send()
        .await
        .unwrap();
    let (status, created) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let generated = created["generated_password"].as_str().unwrap().to_owned();
    let doctor = node.login("dr.li", &generated).await;

    let put = node
        .http
        .put(node.url("/api/v1/admin/accounts/dr.li/credential"))
        .bearer_auth(&admin)
        .json(&json!({
            "title": "主任医师", "specialty": "心内科", "licence_number": "110108",
            "checked_on": "2026-11-20", "valid_until": "2027-11-20T00:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    let (status, cred) = json_of(put).await;
    assert_eq!(status, StatusCode::OK, "{cred}");
    assert_eq!(cred["status"], "valid");
    let (_, me_body) = me(&node, &doctor).await;
    assert_eq!(me_body["credential"]["title"], "主任医师");
    assert_eq!(me_body["credential"]["checked_on"], "2026-11-20");

    // A credential that ends before it starts is refused and the stored one kept.
    let bad = node
        .http
        .put(node.url("/api/v1/admin/accounts/dr.li/credential"))
        .bearer_auth(&admin)
        .json(&json!({
            "title": "x", "specialty": "y", "licence_number": "1",
            "checked_on": "2026-11-20", "valid_until": "2020-01-01T00:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        me(&node, &doctor).await.1["credential"]["title"],
        "主任医师"
    );

    let revoke = node
        .http
        .delete(node.url("/api/v1/admin/accounts/dr.li/credential"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(revoke).await.1["status"], "revoked");
    assert_eq!(
        me(&node, &doctor).await.1["credential"]["status"],
        "revoked"
    );

    // Resetting the password ends the doctor's sessions; the new password works.
    let reset = node
        .http
        .post(node.url("/api/v1/admin/accounts/dr.li/password"))
        .bearer_auth(&admin)
        .json(&json!({"password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(me(&node, &doctor).await.0, StatusCode::UNAUTHORIZED);
    let doctor = node.login("dr.li", "a brand new password").await;

    // Disabling ends sessions and refuses logins; an admin cannot disable themselves.
    let disable = node
        .http
        .post(node.url("/api/v1/admin/accounts/dr.li/disable"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(disable).await.1["disabled"], true);
    assert_eq!(me(&node, &doctor).await.0, StatusCode::UNAUTHORIZED);
    let login = node
        .http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"username": "dr.li", "password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let selfie = node
        .http
        .post(node.url("/api/v1/admin/accounts/admin/disable"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, err) = json_of(selfie).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::CONFLICT, Some("cannot_disable_self"))
    );
    let unknown = node
        .http
        .get(node.url("/api/v1/admin/accounts/no.such.user"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    node.stop().await;
}

async fn cookie_writes_from_other_origins_are_refused(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    node.create_account(Role::Admin, "admin", "admin password 1")
        .await;
    let resp = node
        .http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "admin password 1"}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let attempt = |origin: Option<&str>| {
        let mut req = node
            .http
            .post(node.url("/api/v1/admin/invites"))
            .header("cookie", &cookie)
            .json(&json!({}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let (status, err) = json_of(attempt(Some("https://evil.example")).await.unwrap()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("cross_origin_refused"))
    );
    assert!(node.store.list_invites(None, 10).await.unwrap().is_empty());
    let own = node.base_url.origin().ascii_serialization();
    assert_eq!(
        attempt(Some(&own)).await.unwrap().status(),
        StatusCode::CREATED
    );
    node.stop().await;
}

async fn operations_endpoints_report_health_and_metrics(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let (status, body) = json_of(node.http.get(node.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = json_of(node.http.get(node.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let want = if b == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(body["database"], want);
    node.http.get(node.url("/api/v1/me")).send().await.unwrap();
    let metrics = node.http.get(node.url("/metrics")).send().await.unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "caremesh_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "caremesh_http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"401\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "caremesh_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 1"
    ));
    node.stop().await;
}

async fn account_lists_page_by_cursor(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    for i in 0..5 {
        node.create_account(Role::Doctor, &format!("doctor{i}"), "doctor password")
            .await;
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = node.url("/api/v1/admin/accounts?role=doctor&limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) =
            json_of(node.http.get(url).bearer_auth(&admin).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            names.push(item["username"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        names,
        ["doctor0", "doctor1", "doctor2", "doctor3", "doctor4"]
    );
    for (query, code) in [
        ("cursor=bogus", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("role=king", "invalid_field"),
        ("colour=red", "invalid_query"),
    ] {
        let (status, err) = json_of(
            node.http
                .get(node.url(&format!("/api/v1/admin/accounts?{query}")))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(status.is_client_error(), "{query}");
        assert_eq!(err["error"], code, "{query}");
    }
    node.stop().await;
}

/// Forty wrong guesses for one account at the same moment: exactly `auth.login_max_failures` of
/// them are checked (401), every other one is refused by the throttle (429) without its password
/// being hashed. Not a storage test: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_guesses_are_checked_no_more_than_the_limit() {
    let Some(node) = TestNode::spawn_with(Backend::Sqlite, |c| c.auth.login_max_failures = 5).await
    else {
        return;
    };
    node.create_account(Role::Doctor, "dr.zhao", "the right password")
        .await;
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let http = node.http.clone();
            let url = node.url("/api/v1/auth/login");
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({ "username": "dr.zhao", "password": format!("guess {i}") }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut checked = 0;
    let mut throttled = 0;
    for g in guesses {
        match g.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    assert_eq!((checked, throttled), (5, 35));
    // The right password is refused too until the window passes.
    let resp = node
        .http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({ "username": "dr.zhao", "password": "the right password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    node.stop().await;
}
