//! The node's own web pages for patients, doctors and hospital administrators, in Chinese and
//! English, server-rendered so that they work without JavaScript.
//!
//! Pages are built in Rust with one escaping helper ([`esc`]) through which every piece of user
//! content passes; assets are embedded in the binary. Every form carries a CSRF token that each
//! POST handler checks ([`Viewer::check_csrf`]): for a logged-in visitor it is derived from the
//! session (SHA-256 over the stored session hash), before login it is a random double-submit
//! cookie. Handlers parse the form, call the same use-case of the application layer
//! ([`caremesh_app`]) as the JSON API, and render its result, so a page never allows what the API
//! refuses.

mod admin;
mod doctor;
pub mod i18n;
mod manage;
mod patient;
mod remote;

use std::convert::Infallible;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use caremesh_domain::{Language, Role, Timestamp};
use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::{AuthUser, check_same_origin, cookie_token};
use crate::state::AppState;
pub use i18n::{t, tf};

pub const LANG_COOKIE: &str = "caremesh_lang";
pub const ELDER_COOKIE: &str = "caremesh_elder";
pub const CSRF_COOKIE: &str = "caremesh_csrf";
pub const CSRF_FIELD: &str = "csrf";

const CSS: &str = include_str!("../../static/caremesh.css");
/// The stylesheet's URL carries a hash of its content, so it can be cached for a year.
fn css_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let h = hex::encode(Sha256::digest(CSS.as_bytes()));
        format!("/static/caremesh.{}.css", &h[..12])
    })
}

/// The HTML pages' routes, merged into the node's router.
pub fn router(state: AppState) -> Router<AppState> {
    let upload_limit = page_upload_limit(&state);
    Router::new()
        .route("/static/{file}", get(static_file))
        .merge(patient::router())
        .merge(manage::router())
        .merge(remote::router())
        .merge(patient::upload_router().layer(DefaultBodyLimit::max(upload_limit)))
        .merge(doctor::router())
        .merge(admin::router())
        .route("/prefs", post(prefs))
        .layer(middleware::from_fn_with_state(state, html_errors))
}

async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    if format!("/static/{file}") == css_url() || file == "caremesh.css" {
        let mut r = CSS.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        return r;
    }
    StatusCode::NOT_FOUND.into_response()
}

// ---------------------------------------------------------------------------------------------
// Escaping and formatting

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text and keeps its line breaks.
pub fn esc_text(s: &str) -> String {
    esc(s).replace('\n', "<br>")
}

/// Escapes a path segment (ids are URL-safe already; this is a guard).
pub fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Times are shown in China Standard Time (UTC+8), where the programme runs.
pub fn tz() -> FixedOffset {
    use chrono::Offset as _;
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

pub fn fmt_time(lang: Language, t: Timestamp) -> String {
    let local = t.to_datetime().with_timezone(&tz());
    match lang {
        Language::ZhCn => local.format("%Y年%-m月%-d日 %H:%M").to_string(),
        Language::En => local.format("%-d %b %Y, %H:%M").to_string(),
    }
}

/// Whole numbers: `12,345` in English, `1.2万` from ten thousand in Chinese.
pub fn fmt_num(lang: Language, n: u64) -> String {
    match lang {
        Language::ZhCn if n >= 10_000 => {
            let w = n as f64 / 10_000.0;
            let s = format!("{w:.1}");
            format!("{}万", s.trim_end_matches(".0"))
        }
        _ => {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
    }
}

/// Parses a `datetime-local` value as China Standard Time.
pub fn parse_local_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let dt = tz().from_local_datetime(&naive).single()?;
    Some(Timestamp::from_datetime(dt.with_timezone(&chrono::Utc)))
}

// ---------------------------------------------------------------------------------------------
// The visitor: session, language, elder mode, CSRF token

/// Who is looking at a page, in which language, and the CSRF token their forms carry.
pub struct Viewer {
    pub auth: Option<AuthUser>,
    pub lang: Language,
    pub elder: bool,
    pub csrf: String,
    /// A new double-submit cookie to set (anonymous visitors without one).
    new_csrf_cookie: Option<String>,
    pub path: String,
    secure: bool,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The language from the cookie, else the browser's `Accept-Language`, else Chinese.
pub fn pick_lang(headers: &HeaderMap) -> Language {
    match cookie(headers, LANG_COOKIE) {
        Some("en") => return Language::En,
        Some("zh-CN") => return Language::ZhCn,
        _ => {}
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut best: Option<(f32, Language)> = None;
    for part in accept.split(',') {
        let mut it = part.trim().split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let lang = if tag.starts_with("zh") {
            Language::ZhCn
        } else if tag.starts_with("en") {
            Language::En
        } else {
            continue;
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(Language::ZhCn, |(_, l)| l)
}

/// The CSRF token of a session: only the node (which knows the session's stored hash) and the
/// session's own pages can produce it.
fn session_csrf(token_hash: &str) -> String {
    hex::encode(Sha256::digest(format!("caremesh-csrf-v1:{token_hash}")))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = pick_lang(&parts.headers);
        let elder = cookie(&parts.headers, ELDER_COOKIE) == Some("1");
        let auth = match cookie_token(parts) {
            Some(token) => caremesh_app::accounts::session_user(&state.app, &token)
                .await
                .ok()
                .map(|(session, user)| AuthUser { user, session }),
            None => None,
        };
        let mut new_csrf_cookie = None;
        let csrf = match &auth {
            Some(a) => session_csrf(&a.session.token_hash),
            None => match cookie(&parts.headers, CSRF_COOKIE) {
                Some(c) if c.len() == 43 => c.to_owned(),
                _ => {
                    let t = crate::auth::new_token().unwrap_or_default();
                    new_csrf_cookie = Some(t.clone());
                    t
                }
            },
        };
        Ok(Self {
            auth,
            lang,
            elder,
            csrf,
            new_csrf_cookie,
            path: parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
            secure: state.settings.secure_cookies(),
        })
    }
}

impl Viewer {
    pub fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }

    pub fn tf(&self, key: &str, args: &[(&str, &str)]) -> String {
        tf(self.lang, key, args)
    }

    pub fn time(&self, ts: Timestamp) -> String {
        fmt_time(self.lang, ts)
    }

    pub fn num(&self, n: u64) -> String {
        fmt_num(self.lang, n)
    }

    /// The logged-in account, or a redirect to the login page that comes back here.
    pub fn require(&self) -> Result<&AuthUser, PageError> {
        self.auth.as_ref().ok_or_else(|| PageError::Login {
            next: self.path.clone(),
        })
    }

    pub fn require_role(&self, ok: impl Fn(Role) -> bool) -> Result<&AuthUser, PageError> {
        let a = self.require()?;
        if ok(a.user.role) {
            Ok(a)
        } else {
            Err(ApiError::forbidden("your account may not use this page").into())
        }
    }

    /// The hidden field every form carries.
    pub fn csrf_field(&self) -> String {
        format!(
            r#"<input type="hidden" name="{CSRF_FIELD}" value="{}">"#,
            esc(&self.csrf)
        )
    }

    /// A form posting to `action` with the CSRF field, the given inner HTML and one button.
    pub fn button_form(
        &self,
        action: &str,
        hidden: &[(&str, &str)],
        label: &str,
        class: &str,
    ) -> String {
        let mut h = format!(
            r#"<form method="post" action="{}" class="inline">{}"#,
            esc(action),
            self.csrf_field()
        );
        for (k, v) in hidden {
            h.push_str(&format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                esc(k),
                esc(v)
            ));
        }
        h.push_str(&format!(
            r#"<button type="submit" class="{}">{}</button></form>"#,
            esc(class),
            esc(label)
        ));
        h
    }

    /// Refuses a form without the right token (403).
    pub fn check_csrf(&self, form: &Form) -> Result<(), PageError> {
        let given = form.get(CSRF_FIELD).unwrap_or("");
        // A fresh cookie means the browser sent none: nothing can match.
        let ok = self.new_csrf_cookie.is_none()
            && !given.is_empty()
            && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(PageError::Api(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_refused",
                "the form was not sent from this node's page (missing or wrong CSRF token); reload the page and try again",
            )))
        }
    }

    /// A complete HTML page.
    pub fn page(&self, title: &str, body: &str) -> Response {
        self.page_with_status(StatusCode::OK, title, body)
    }

    pub fn page_with_status(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let html = layout(self, title, body);
        let mut r = (status, html).into_response();
        html_headers(r.headers_mut());
        if let Some(c) = &self.new_csrf_cookie {
            let secure = if self.secure { "; Secure" } else { "" };
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={c}; Path=/; HttpOnly; SameSite=Strict{secure}"
            )) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        r
    }

    pub fn cookie_header(&self, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .ok()
    }
}

/// Headers of every HTML page: the content type, no caching, and a strict Content-Security-Policy
/// (no inline scripts or styles; images from the node itself or `data:` QR codes).
pub fn html_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin form posts then carry the page's real `Origin` (not `null`), which the
    // same-origin check accepts; other sites still get no referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Only paths on this node: `/x`, never `//host` or `https://…`. Browsers drop tabs and line
/// breaks from a URL and read `\` as `/`, so `/\t/host` would leave the node: anything with a
/// control character, a space or a backslash is refused, and what is kept is the path and query as
/// a URL parser reads them against this node, percent-encoded.
pub fn safe_back(s: Option<&str>) -> String {
    const HOME: &str = "/";
    let Some(p) = s else {
        return HOME.to_owned();
    };
    if !p.starts_with('/')
        || p.starts_with("//")
        || p.len() > 2048
        || p.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return HOME.to_owned();
    }
    let Ok(base) = url::Url::parse("http://node.invalid/") else {
        return HOME.to_owned();
    };
    match base.join(p) {
        Ok(u) if u.origin() == base.origin() && !u.path().starts_with("//") => {
            let mut out = u.path().to_owned();
            if let Some(q) = u.query() {
                out.push('?');
                out.push_str(q);
            }
            if let Some(f) = u.fragment() {
                out.push('#');
                out.push_str(f);
            }
            out
        }
        _ => HOME.to_owned(),
    }
}

/// POST-redirect-GET: 303 to a page of this node.
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&safe_back(Some(to))) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn layout(v: &Viewer, title: &str, body: &str) -> String {
    let lang = v.lang.as_str();
    let mut nav = String::new();
    nav.push_str(&format!(
        r#"<a class="brand" href="/">{}</a>"#,
        esc(v.t("app-name"))
    ));
    if let Some(a) = &v.auth {
        nav.push_str(&format!(r#"<a href="/">{}</a>"#, esc(v.t("nav-groups"))));
        if a.user.role == Role::Doctor {
            nav.push_str(&format!(
                r#"<a href="/doctor/queue">{}</a><a href="/doctor/announce">{}</a>"#,
                esc(v.t("nav-queue")),
                esc(v.t("nav-announce"))
            ));
        }
        if a.user.role.is_admin() {
            nav.push_str(&format!(
                r#"<a href="/admin">{}</a>"#,
                esc(v.t("nav-admin"))
            ));
        }
    }
    let other = match v.lang {
        Language::ZhCn => ("en", "English"),
        Language::En => ("zh-CN", "中文"),
    };
    let mut tools = String::new();
    tools.push_str(&v.button_form(
        "/prefs",
        &[("lang", other.0), ("back", &v.path)],
        other.1,
        "link",
    ));
    let elder_label = if v.elder {
        v.t("elder-off")
    } else {
        v.t("elder-on")
    };
    tools.push_str(&v.button_form(
        "/prefs",
        &[
            ("elder", if v.elder { "0" } else { "1" }),
            ("back", &v.path),
        ],
        elder_label,
        "link",
    ));
    if let Some(a) = &v.auth {
        tools.push_str(&format!(
            r#"<span class="who">{}</span>"#,
            esc(&a.user.display_name)
        ));
        tools.push_str(&v.button_form("/logout", &[], v.t("logout"), "link"));
    }
    format!(
        r##"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {app}</title><link rel="stylesheet" href="{css}"></head>
<body class="{body_class}"><a class="skip" href="#main">{skip}</a>
<header><nav aria-label="{navlabel}">{nav}</nav><div class="tools">{tools}</div></header>
<main id="main"><h1>{title}</h1>
{body}</main>
<footer><p>{footer}</p></footer></body></html>"##,
        title = esc(title),
        app = esc(v.t("app-name")),
        css = css_url(),
        body_class = if v.elder { "elder" } else { "" },
        skip = esc(v.t("skip")),
        navlabel = esc(v.t("nav-label")),
        footer = esc(v.t("footer")),
    )
}

/// A rule a form field broke, said in the visitor's language; `label` is the field's label.
pub fn field_error(v: &Viewer, label: &str, e: &caremesh_domain::ValidationError) -> String {
    let m = e.message.as_str();
    if m == "must not be empty" {
        v.tf("err-field-empty", &[("field", label)])
    } else if let Some(n) = m
        .strip_prefix("must be at most ")
        .and_then(|r| r.strip_suffix(" characters long"))
    {
        v.tf("err-field-too-long", &[("field", label), ("max", n)])
    } else if m == "must be a single line" {
        v.tf("err-field-one-line", &[("field", label)])
    } else if e.field == "condition_code" {
        v.tf("err-condition-code", &[("field", label)])
    } else {
        v.tf("err-field-invalid", &[("field", label)])
    }
}

/// What went wrong with a photo, said in the visitor's language; `None` for failures that are not
/// about the file (those become error pages).
pub fn upload_error(v: &Viewer, state: &AppState, e: &ApiError) -> Option<String> {
    let limit = mb(state.settings.max_file_bytes);
    let problem = match e.code {
        "file_too_large" => v.tf("photo-too-large", &[("mb", &limit)]),
        "unsupported_file_type" => v.t("photo-unsupported").to_owned(),
        "corrupt_file" => v.t("photo-corrupt").to_owned(),
        "image_too_large" => v.t("photo-too-many-pixels").to_owned(),
        "group_storage_full" => v.t("photo-quota-full").to_owned(),
        "empty_file" => v.t("photo-empty").to_owned(),
        _ => return None,
    };
    let space = if v.lang == Language::ZhCn { "" } else { " " };
    Some(format!("{problem}{space}{}", v.t("photo-choose-again")))
}

/// Links between the pages of a list that work without JavaScript: to the next page (when there
/// is one, by the list's cursor) and back to the first.
pub fn pager(
    v: &Viewer,
    base: &str,
    next_cursor: Option<&str>,
    not_first: bool,
    next_key: &str,
    first_key: &str,
    anchor: &str,
) -> String {
    if next_cursor.is_none() && !not_first {
        return String::new();
    }
    let mut h = format!(r#"<nav class="pager" aria-label="{}">"#, esc(v.t("pages")));
    if let Some(c) = next_cursor {
        h.push_str(&format!(
            r#"<a rel="next" href="{base}?cursor={c}{anchor}">{}</a>"#,
            esc(v.t(next_key)),
            base = esc(base),
            c = seg(c),
            anchor = esc(anchor),
        ));
    }
    if not_first {
        h.push_str(&format!(
            r#"<a href="{}">{}</a>"#,
            esc(base),
            esc(v.t(first_key))
        ));
    }
    h.push_str("</nav>");
    h
}

// ---------------------------------------------------------------------------------------------
// Forms

/// A form as sent: `application/x-www-form-urlencoded`, or `multipart/form-data` when it carries
/// files. Names may repeat (checkboxes).
pub struct Form {
    fields: Vec<(String, String)>,
    files: Vec<FormFile>,
}

/// A file chosen in a form's file field. Files over `media.max_file_bytes` are read to the end
/// but not kept ([`FormFile::too_large`]), so that the page can answer with the form and its text.
pub struct FormFile {
    pub field: String,
    pub file_name: String,
    pub bytes: Bytes,
    pub too_large: bool,
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_owned()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }

    /// The file chosen in the field `name`; `None` when none was chosen.
    pub fn file(&self, name: &str) -> Option<&FormFile> {
        self.files.iter().find(|f| f.field == name)
    }
}

/// The page routes whose forms carry a photo, and so may be as large as one file and the text.
pub fn is_page_upload(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let Some(rest) = path.strip_prefix("/g/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let ok = |s: &str| !s.is_empty();
    matches!(parts.as_slice(), [g, "ask"] if ok(g))
        || matches!(parts.as_slice(), [g, "p", p, "reply"] if ok(g) && ok(p))
}

/// The largest body of a form with a photo: the photo and as much again as any other form.
pub fn page_upload_limit(state: &AppState) -> usize {
    state
        .settings
        .max_file_bytes
        .saturating_add(state.settings.max_body_bytes)
}

/// The page shown when a photo form announces a body too large to read: nothing was read, so the
/// visitor is asked to go back, where the browser still has their text.
pub async fn oversized_upload(state: &AppState, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let v = match Viewer::from_request_parts(&mut parts, state).await {
        Ok(v) => v,
        Err(never) => match never {},
    };
    let body = format!(
        r#"<p class="error" role="alert">{}</p><p>{}</p>"#,
        esc(&v.tf(
            "photo-too-large",
            &[("mb", &mb(state.settings.max_file_bytes))]
        )),
        esc(v.t("go-back-text-kept")),
    );
    v.page_with_status(StatusCode::PAYLOAD_TOO_LARGE, v.t("err-title"), &body)
}

/// A size in megabytes, as forms state their limits: `10`, or `0.5` below one.
pub fn mb(bytes: usize) -> String {
    let mb = bytes as f64 / (1024.0 * 1024.0);
    if mb >= 1.0 {
        format!("{}", mb.floor())
    } else {
        format!("{:.1}", mb.max(0.1))
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        // Cookie-authenticated changes must come from the node's own pages.
        if cookie_token(&parts).is_some() {
            check_same_origin(&parts, state)?;
        }
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let req = Request::from_parts(parts, body);
        if ct.starts_with("multipart/form-data") {
            return read_multipart(req, state).await;
        }
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the form as application/x-www-form-urlencoded or multipart/form-data",
            )
            .into());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::payload_too_large(state.settings.max_body_bytes))?;
        Ok(Self {
            fields: url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            files: Vec::new(),
        })
    }
}

/// Reads a `multipart/form-data` form: text fields up to `http.max_body_bytes` in all, files up to
/// `media.max_file_bytes` each (larger ones are read to the end and marked). The whole body is
/// bounded by the route's body limit (see [`page_upload_limit`]).
async fn read_multipart(req: Request, state: &AppState) -> Result<Form, PageError> {
    use axum::extract::Multipart;
    let unreadable = |e: axum::extract::multipart::MultipartError| -> PageError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            crate::media::file_too_large(state.settings.max_file_bytes).into()
        } else {
            ApiError::bad_request("unreadable_body", e.body_text()).into()
        }
    };
    let mut multipart = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request("unreadable_body", e.body_text()))?;
    let file_limit = state.settings.max_file_bytes;
    let text_limit = state.settings.max_body_bytes;
    let mut text_bytes = 0usize;
    let mut form = Form {
        fields: Vec::new(),
        files: Vec::new(),
    };
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or("").to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let mut data: Vec<u8> = Vec::new();
                let mut size = 0usize;
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    size = size.saturating_add(chunk.len());
                    if size <= file_limit {
                        data.extend_from_slice(&chunk);
                    } else if !data.is_empty() {
                        data = Vec::new();
                    }
                }
                // An empty file field: the browser sends a part with neither name nor bytes.
                if size == 0 && file_name.is_empty() {
                    continue;
                }
                form.files.push(FormFile {
                    field: name,
                    file_name,
                    bytes: Bytes::from(data),
                    too_large: size > file_limit,
                });
            }
            None => {
                let value = field.text().await.map_err(unreadable)?;
                text_bytes = text_bytes.saturating_add(value.len());
                if text_bytes > text_limit {
                    return Err(ApiError::payload_too_large(text_limit).into());
                }
                form.fields.push((name, value));
            }
        }
    }
    Ok(form)
}

// ---------------------------------------------------------------------------------------------
// Errors as pages

/// A page handler's failure: a redirect to the login page, or an API error that
/// [`html_errors`] renders as a page in the visitor's language.
pub enum PageError {
    Login { next: String },
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<caremesh_app::model::StoreError> for PageError {
    fn from(e: caremesh_app::model::StoreError) -> Self {
        Self::Api(e.into())
    }
}

impl From<caremesh_app::AppError> for PageError {
    fn from(e: caremesh_app::AppError) -> Self {
        Self::Api(e.into())
    }
}

impl From<caremesh_domain::ValidationError> for PageError {
    fn from(e: caremesh_domain::ValidationError) -> Self {
        Self::Api(e.into())
    }
}

/// Carried from a failed handler to [`html_errors`].
#[derive(Clone)]
struct FailedPage {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login { next } => {
                let to = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                see_other(&to)
            }
            PageError::Api(e) => {
                let mut r = e.status.into_response();
                r.extensions_mut().insert(FailedPage {
                    status: e.status,
                    code: e.code,
                    message: e.message,
                });
                r
            }
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// Renders failed page requests as HTML pages in the visitor's language.
async fn html_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let viewer = match Viewer::from_request_parts(&mut parts, &state).await {
        Ok(v) => v,
        Err(never) => match never {},
    };
    let is_get = parts.method == Method::GET;
    let resp = next.run(Request::from_parts(parts, body)).await;
    let Some(failed) = resp.extensions().get::<FailedPage>().cloned() else {
        return resp;
    };
    if failed.status == StatusCode::UNAUTHORIZED && is_get {
        return PageError::Login {
            next: viewer.path.clone(),
        }
        .into_response();
    }
    let key = match failed.status.as_u16() {
        400 | 413 | 415 | 422 => "err-invalid",
        401 => "err-login",
        403 if failed.code == "csrf_refused" => "err-csrf",
        403 => "err-forbidden",
        404 => "err-not-found",
        409 => "err-conflict",
        410 => "err-gone",
        429 => "err-too-many",
        _ => "err-internal",
    };
    // Refusals people run into have a sentence of their own; others show the general one and
    // the node's (English) detail.
    let specific = i18n::lookup(viewer.lang, &format!("code-{}", failed.code));
    let body = format!(
        r#"<p class="error" role="alert">{}</p><p class="detail">{}</p><p><a href="/">{}</a></p>"#,
        esc(specific.unwrap_or(viewer.t(key))),
        esc(&failed.message),
        esc(viewer.t("back-home"))
    );
    viewer.page_with_status(failed.status, viewer.t("err-title"), &body)
}

// ---------------------------------------------------------------------------------------------
// Preferences: language and elder mode, for everyone (also before login)

async fn prefs(v: Viewer, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let back = safe_back(form.get("back"));
    let mut r = see_other(&back);
    let year = 365 * 24 * 3600;
    if let Some(l) = form.get("lang")
        && matches!(l, "en" | "zh-CN")
        && let Some(c) = v.cookie_header(LANG_COOKIE, l, year)
    {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(e) = form.get("elder")
        && let Some(c) = v.cookie_header(ELDER_COOKIE, if e == "1" { "1" } else { "0" }, year)
    {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(esc_text("a\n<b>"), "a<br>&lt;b&gt;");
    }

    #[test]
    fn language_from_cookie_then_accept_language() {
        let mut h = HeaderMap::new();
        assert_eq!(pick_lang(&h), Language::ZhCn);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en-GB,en;q=0.9"),
        );
        assert_eq!(pick_lang(&h), Language::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr;q=1, zh-TW;q=0.8, en;q=0.5"),
        );
        assert_eq!(pick_lang(&h), Language::ZhCn);
        h.insert(header::COOKIE, HeaderValue::from_static("caremesh_lang=en"));
        assert_eq!(pick_lang(&h), Language::En);
    }

    #[test]
    fn numbers_and_dates_per_language() {
        assert_eq!(fmt_num(Language::En, 1_234_567), "1,234,567");
        assert_eq!(fmt_num(Language::En, 12), "12");
        assert_eq!(fmt_num(Language::ZhCn, 12_000), "1.2万");
        assert_eq!(fmt_num(Language::ZhCn, 30_000), "3万");
        assert_eq!(fmt_num(Language::ZhCn, 9_999), "9,999");
        let t = Timestamp::parse_rfc3339("2025-03-05T06:30:00Z").unwrap();
        assert_eq!(fmt_time(Language::ZhCn, t), "2025年3月5日 14:30");
        assert_eq!(fmt_time(Language::En, t), "5 Mar 2025, 14:30");
        assert_eq!(parse_local_time("2025-03-05T14:30"), Some(t));
    }

    #[test]
    fn back_links_stay_on_this_node() {
        assert_eq!(safe_back(Some("/g/x")), "/g/x");
        assert_eq!(safe_back(Some("/g/x?cursor=5#top")), "/g/x?cursor=5#top");
        assert_eq!(safe_back(Some("/a/../b")), "/b");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "\\\\x",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n//evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_back(Some(bad)), "/");
        }
    }
}
