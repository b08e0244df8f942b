//! The web pages over real HTTP, as a browser without JavaScript uses them: a session cookie, the
//! CSRF token the pages carry, form posts answered with redirects. Photos on the ask and reply
//! forms, a member's name in each group, creating groups, managing members, an admin recording a
//! doctor's credential, and paging through the feed and the doctor's queue; with the refusals,
//! which must change nothing. Every scenario runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use caremesh_domain::Role;
use caremesh_testkit::{Backend, TestNode, on_both_backends};
use common::images::{contains, jpeg_markers, jpeg_with_gps};
use common::{call, expect, get, post, world};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    ask_and_reply_forms_take_a_photo_without_its_location,
    photo_problems_keep_the_text_and_store_nothing,
    patients_choose_their_name_on_the_group_page,
    doctors_and_admins_create_groups_from_the_page,
    moderators_manage_members_from_the_page,
    feed_and_queue_pages_page_by_cursor,
    a_patient_of_a_partner_hospital_joins_from_the_invite_link,
    an_admin_records_a_credential_valid_through_the_day_typed,
    the_login_page_sends_nobody_off_this_node,
);

/// A browser without JavaScript, logged in with the session cookie of `token`.
struct Browser<'a> {
    node: &'a TestNode,
    token: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    html: String,
}

impl<'a> Browser<'a> {
    fn new(node: &'a TestNode, token: &str) -> Self {
        Self {
            node,
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req
            .header("cookie", format!("caremesh_session={}", self.token))
            .send()
            .await
            .unwrap();
        Answer {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            html: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.node.url(path))).await
    }

    /// The CSRF token the pages give this session.
    async fn csrf(&self) -> String {
        let page = self.get("/").await;
        assert_eq!(page.status, 200, "{}", page.html);
        let (_, rest) = page.html.split_once(r#"name="csrf" value=""#).unwrap();
        rest.split('"').next().unwrap().to_owned()
    }

    /// Posts a form as the pages do (urlencoded), with the session's CSRF token.
    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf().await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.form_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token unless given).
    async fn form_raw(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            self.http
                .post(self.node.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", self.node.url("/").trim_end_matches('/'))
                .body(body),
        )
        .await
    }

    /// Posts a `multipart/form-data` form with an optional file in the field `photo`.
    async fn multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        photo: Option<(&str, &[u8])>,
        with_csrf: bool,
    ) -> Answer {
        let csrf = self.csrf().await;
        let boundary = "----caremesh-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        let mut all: Vec<(&str, &str)> = Vec::new();
        if with_csrf {
            all.push(("csrf", csrf.as_str()));
        }
        all.extend_from_slice(fields);
        for (name, value) in all {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let (file_name, bytes): (&str, &[u8]) = photo.unwrap_or(("", &[]));
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            self.http
                .post(self.node.url(path))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .header("origin", self.node.url("/").trim_end_matches('/'))
                .body(body),
        )
        .await
    }
}

fn g(gid: &str, rest: &str) -> String {
    format!("/api/v1/groups/{gid}{rest}")
}

#[track_caller]
fn see_other(a: &Answer) -> String {
    assert_eq!(a.status, 303, "expected a redirect: {}", a.html);
    a.location.clone().unwrap()
}

/// The first `src` of an `<img>` in the page's main part (attachments).
fn image_sources(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .filter(|src| src.contains("/attachments/"))
        .collect()
}

async fn feed_len(node: &TestNode, token: &str, gid: &str) -> usize {
    expect(get(node, token, &g(gid, "/posts?limit=200")).await, 200)["items"]
        .as_array()
        .unwrap()
        .len()
}

async fn member_state(node: &TestNode, gid: &str, mid: i64) -> String {
    let group = node.store.group_by_public_id(gid).await.unwrap();
    let m = node.store.member_by_id(group.id, mid).await.unwrap();
    m.state.as_str().to_owned()
}

async fn storage_bytes(node: &TestNode, gid: &str) -> i64 {
    node.store
        .group_by_public_id(gid)
        .await
        .unwrap()
        .storage_bytes
}

async fn ask_and_reply_forms_take_a_photo_without_its_location(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let patient = Browser::new(&node, &w.member);
    let tagged = jpeg_with_gps(64, 48);
    assert!(contains(&tagged, b"SecretCam") && jpeg_markers(&tagged).contains(&0xE1));

    // The form says what happens to photos.
    let page = patient.get(&format!("/g/{}", w.gid)).await;
    assert!(page.html.contains(r#"enctype="multipart/form-data""#));
    assert!(page.html.contains(r#"type="file""#));
    assert!(page.html.contains("去除拍摄地点（GPS）"), "{}", page.html);

    let asked = patient
        .multipart(
            &format!("/g/{}/ask", w.gid),
            &[
                ("title", "伤口照片"),
                ("body", "术后第三天，伤口这样正常吗？"),
            ],
            Some(("IMG_0001.JPG", &tagged)),
            true,
        )
        .await;
    let thread = see_other(&asked);
    let page = patient.get(&thread).await;
    assert_eq!(page.status, 200);
    let sources = image_sources(&page.html);
    assert_eq!(sources.len(), 1, "{}", page.html);
    assert!(page.html.contains("术后第三天，伤口这样正常吗？"));

    // The stored photo is a clean JPEG: no Exif, no camera, no position; turned upright.
    let served = patient
        .http
        .get(node.url(&sources[0]))
        .header("cookie", format!("caremesh_session={}", w.member))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    let bytes = served.bytes().await.unwrap();
    assert!(
        !jpeg_markers(&bytes).contains(&0xE1),
        "no APP1 (Exif) segment"
    );
    assert!(!contains(&bytes, b"Exif") && !contains(&bytes, b"SecretCam"));
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (48, 64));
    // Outsiders do not get it.
    let outsider = Browser::new(&node, &w.outsider);
    assert_eq!(outsider.get(&sources[0]).await.status, 404);

    // A reply with a photo; the doctor's queue form (urlencoded, no photo) still works.
    let reply = patient
        .multipart(
            &format!("{thread}/reply"),
            &[("body", "补一张今天的")],
            Some(("today.jpg", &tagged)),
            true,
        )
        .await;
    assert_eq!(see_other(&reply), thread);
    let page = patient.get(&thread).await;
    assert_eq!(image_sources(&page.html).len(), 2);
    let doctor = Browser::new(&node, &w.doctor);
    let answered = doctor
        .form(
            &format!("{thread}/reply"),
            &[("body", "正常，保持干燥。"), ("back", "/doctor/queue")],
        )
        .await;
    assert_eq!(see_other(&answered), "/doctor/queue");
    // A form without a file field's file posts without a photo.
    let plain = patient
        .multipart(
            &format!("{thread}/reply"),
            &[("body", "谢谢医生")],
            None,
            true,
        )
        .await;
    see_other(&plain);
    let page = patient.get(&thread).await;
    assert_eq!(image_sources(&page.html).len(), 2);
    assert!(page.html.contains("谢谢医生"));
}

async fn photo_problems_keep_the_text_and_store_nothing(b: Backend) {
    let Some(node) = TestNode::spawn_with(b, |c| c.media.max_file_bytes = 64 * 1024).await else {
        return;
    };
    let w = world(&node).await;
    let patient = Browser::new(&node, &w.member);
    let ask = format!("/g/{}/ask", w.gid);
    let before = feed_len(&node, &w.member, &w.gid).await;

    // Too large: the page comes back with the text and a clear message; nothing is stored.
    let big = vec![0xFFu8; 70 * 1024];
    let a = patient
        .multipart(
            &ask,
            &[("body", "我的问题<b>原样</b>")],
            Some(("big.jpg", &big)),
            true,
        )
        .await;
    assert_eq!(a.status, 413);
    assert!(a.html.contains("照片超过了 0.1 MB"), "{}", a.html);
    assert!(
        a.html
            .contains("我的问题&lt;b&gt;原样&lt;/b&gt;</textarea>"),
        "{}",
        a.html
    );
    assert!(a.html.contains(r#"role="alert""#));
    // Not an image: 415, text kept.
    let a = patient
        .multipart(
            &ask,
            &[("title", "标题"), ("body", "正文")],
            Some(("x.gif", b"GIF89a....")),
            true,
        )
        .await;
    assert_eq!(a.status, 415);
    assert!(a.html.contains("不能上传这种文件"));
    assert!(a.html.contains(r#"value="标题""#) && a.html.contains("正文</textarea>"));
    // A damaged JPEG: 422.
    let a = patient
        .multipart(
            &ask,
            &[("body", "正文")],
            Some(("bad.jpg", &[0xFF, 0xD8, 0xFF, 0xE0, 0, 1])),
            true,
        )
        .await;
    assert_eq!(a.status, 422);
    assert!(a.html.contains("无法读取这张照片"));
    // An empty question with a good photo: the text problem is named and the photo not stored.
    let a = patient
        .multipart(
            &ask,
            &[("body", "   ")],
            Some(("ok.jpg", &jpeg_with_gps(8, 8))),
            true,
        )
        .await;
    assert_eq!(a.status, 422);
    assert!(a.html.contains("请填写“您的问题”"), "{}", a.html);
    // Without the CSRF token: refused before anything is read into the group.
    let a = patient
        .multipart(
            &ask,
            &[("body", "伪造")],
            Some(("ok.jpg", &jpeg_with_gps(8, 8))),
            false,
        )
        .await;
    assert_eq!(a.status, 403);
    // A body announced as far larger than any photo is refused before it is read, as a page.
    let huge = patient
        .http
        .post(node.url(&ask))
        .header("cookie", format!("caremesh_session={}", w.member))
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", (8 * 1024 * 1024).to_string())
        .body(vec![0u8; 8 * 1024 * 1024])
        .send()
        .await;
    if let Ok(resp) = huge {
        assert_eq!(resp.status(), 413);
        let html = resp.text().await.unwrap_or_default();
        assert!(
            html.is_empty() || html.contains("<!doctype html>"),
            "{html}"
        );
    }
    // English pages say it in English.
    let a = patient
        .send(
            patient
                .http
                .get(node.url(&format!("/g/{}", w.gid)))
                .header("accept-language", "en"),
        )
        .await;
    assert!(
        a.html
            .contains("Location (GPS) and other hidden details are removed")
    );
    // Outsiders get 404 and store nothing either.
    let outsider = Browser::new(&node, &w.outsider);
    let a = outsider
        .multipart(
            &ask,
            &[("body", "x")],
            Some(("ok.jpg", &jpeg_with_gps(8, 8))),
            true,
        )
        .await;
    assert_eq!(a.status, 404);

    assert_eq!(feed_len(&node, &w.member, &w.gid).await, before);
    assert_eq!(storage_bytes(&node, &w.gid).await, 0);
}

async fn patients_choose_their_name_on_the_group_page(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let patient = Browser::new(&node, &w.member);
    let me = format!("/g/{}/me", w.gid);
    see_other(
        &patient
            .multipart(
                &format!("/g/{}/ask", w.gid),
                &[("body", "第一个问题")],
                None,
                true,
            )
            .await,
    );
    let page = patient.get(&format!("/g/{}", w.gid)).await;
    assert!(page.html.contains("您在本群的名字"));
    assert!(page.html.contains(r#"value="patient.member (display)""#));

    let saved = patient
        .form(&me, &[("display_name", "康复中的王阿姨")])
        .await;
    let back = see_other(&saved);
    assert_eq!(back, format!("/g/{}?done=name#my-name", w.gid));
    let page = patient.get(&back).await;
    assert!(page.html.contains("已保存：您在本群显示为“康复中的王阿姨”"));
    assert!(
        page.html
            .contains(r#"<span class="author">康复中的王阿姨</span>"#),
        "{}",
        page.html
    );
    // Others see it on the post and in the member list.
    let owner = Browser::new(&node, &w.owner);
    assert!(
        owner
            .get(&format!("/g/{}", w.gid))
            .await
            .html
            .contains("康复中的王阿姨")
    );
    assert!(
        owner
            .get(&format!("/g/{}/members", w.gid))
            .await
            .html
            .contains("康复中的王阿姨")
    );

    // Bad input: the form comes back with the problem and what was typed; nothing changes.
    let long = "名".repeat(65);
    for (value, message) in [
        ("   ", "请填写“在本群显示的名字”"),
        (long.as_str(), "最多 64 个字"),
    ] {
        let a = patient.form(&me, &[("display_name", value)]).await;
        assert_eq!(a.status, 422);
        assert!(a.html.contains(message), "{}", a.html);
        assert!(a.html.contains(r#"aria-invalid="true""#));
    }
    // Refused: no CSRF token, doctors and staff, outsiders, logged-out visitors.
    let a = patient.form_raw(&me, &[("display_name", "伪造")]).await;
    assert_eq!(a.status, 403);
    for token in [&w.doctor, &w.moderator] {
        let a = Browser::new(&node, token)
            .form(&me, &[("display_name", "x")])
            .await;
        assert_eq!(a.status, 403, "{}", a.html);
    }
    let a = Browser::new(&node, &w.outsider)
        .form(&me, &[("display_name", "x")])
        .await;
    assert_eq!(a.status, 404);
    let anon = Browser::new(&node, "");
    let a = anon.form_raw(&me, &[("display_name", "x")]).await;
    assert!(matches!(a.status.as_u16(), 303 | 403), "{}", a.status);
    let member = expect(
        get(&node, &w.owner, &g(&w.gid, "/members?limit=200")).await,
        200,
    );
    let names: Vec<&str> = member["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"康复中的王阿姨"));
    assert!(!names.contains(&"伪造") && !names.contains(&"x"));
}

async fn doctors_and_admins_create_groups_from_the_page(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let doctor = node.account_with_token(Role::Doctor, "dr.new").await;
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let staff = node.account_with_token(Role::Staff, "nurse").await;
    let patient = node.account_with_token(Role::Patient, "patient").await;
    let d = Browser::new(&node, &doctor);
    let page = d.get("/").await;
    assert!(page.html.contains(r#"href="/groups/new""#));
    let page = d.get("/groups/new").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("创建新群") && page.html.contains("谁可以查看成员名单"));

    let fields = [
        ("name", "心衰患者之家 · 唐山"),
        ("condition", "慢性心力衰竭"),
        ("condition_code", "I50"),
        ("city", "唐山"),
        ("language", "zh-CN"),
        ("description", "出院后的自我管理。"),
        ("rules", "互相尊重。"),
        ("member_list", "members"),
    ];
    // Bad input first: the form comes back with everything typed, and no group is made.
    let mut bad = fields.to_vec();
    bad[0] = ("name", "  ");
    let a = d.form("/groups/new", &bad).await;
    assert_eq!(a.status, 422);
    assert!(a.html.contains("请填写“群名称”"), "{}", a.html);
    assert!(
        a.html.contains(r#"value="慢性心力衰竭""#)
            && a.html.contains("出院后的自我管理。</textarea>")
    );
    assert!(a.html.contains(r#"value="members" checked"#));
    let mut bad = fields.to_vec();
    bad[2] = ("condition_code", "i50 !");
    let a = d.form("/groups/new", &bad).await;
    assert_eq!(a.status, 422);
    assert!(
        a.html.contains("只能包含大写字母、数字、点和横线"),
        "{}",
        a.html
    );
    assert!(a.html.contains(r#"value="i50 !""#));
    let none = expect(get(&node, &doctor, "/api/v1/groups").await, 200);
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    let created = d.form("/groups/new", &fields).await;
    let to = see_other(&created);
    let gid = to.strip_prefix("/g/").unwrap();
    let group = expect(get(&node, &doctor, &g(gid, "")).await, 200);
    assert_eq!(group["name"], "心衰患者之家 · 唐山");
    assert_eq!(group["condition_code"], "I50");
    assert_eq!(group["member_list"], "members");
    assert_eq!(group["my_role"], "owner");
    assert_eq!(group["rules"], "互相尊重。");
    assert!(d.get(&to).await.html.contains("心衰患者之家 · 唐山"));

    // Administrators may create groups too (the JSON API's rule); staff and patients may not, and
    // their attempts create nothing.
    let a = Browser::new(&node, &admin)
        .form("/groups/new", &fields)
        .await;
    see_other(&a);
    for token in [&staff, &patient] {
        let b = Browser::new(&node, token);
        assert_eq!(b.get("/groups/new").await.status, 403);
        assert!(!b.get("/").await.html.contains("/groups/new"));
        assert_eq!(b.form("/groups/new", &fields).await.status, 403);
    }
    // Without the CSRF token nothing is created either.
    assert_eq!(d.form_raw("/groups/new", &fields).await.status, 403);
    let all = expect(get(&node, &admin, "/api/v1/groups?scope=all").await, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    // Logged out: to the login page.
    let anon = Browser::new(&node, "");
    let a = anon.get("/groups/new").await;
    assert_eq!(see_other(&a), "/login?next=%2Fgroups%2Fnew");
}

async fn moderators_manage_members_from_the_page(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let members_page = format!("/g/{}/members", w.gid);
    // The outsider asks to join through the API (they have the group's id).
    let pending = expect(
        post(
            &node,
            &w.outsider,
            &g(&w.gid, "/join-requests"),
            json!({"message": "我是新病人"}),
        )
        .await,
        202,
    );
    let pending_id = pending["id"].as_i64().unwrap();

    let moderator = Browser::new(&node, &w.moderator);
    let page = moderator.get(&members_page).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("入群申请") && page.html.contains("我是新病人"));
    assert!(page.html.contains("同意patient.outsider (display)入群"));
    // A plain member sees the (open) list but no request and no action; their posts are refused.
    let member = Browser::new(&node, &w.member);
    let page = member.get(&members_page).await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains("入群申请") && !page.html.contains("/remove"));
    let approve = format!("/g/{}/members/{pending_id}/approve", w.gid);
    assert_eq!(member.form(&approve, &[]).await.status, 403);
    assert_eq!(
        moderator.form_raw(&approve, &[]).await.status,
        403,
        "no CSRF token"
    );
    // Outsiders learn nothing.
    assert_eq!(
        Browser::new(&node, &w.other_doctor)
            .get(&members_page)
            .await
            .status,
        404
    );
    assert_eq!(member_state(&node, &w.gid, pending_id).await, "pending");

    // The moderator admits the request.
    assert_eq!(
        see_other(&moderator.form(&approve, &[]).await),
        members_page
    );
    assert_eq!(member_state(&node, &w.gid, pending_id).await, "active");
    assert_eq!(
        moderator.form(&approve, &[]).await.status,
        409,
        "answered already"
    );
    let again = moderator.form(&approve, &[]).await;
    assert!(
        again.html.contains("这个申请已经处理过了"),
        "{}",
        again.html
    );

    // The owner appoints the new member moderator, then makes them a member again; only doctors'
    // accounts can be doctors.
    let owner = Browser::new(&node, &w.owner);
    let role = format!("/g/{}/members/{pending_id}/role", w.gid);
    assert!(
        owner
            .get(&members_page)
            .await
            .html
            .contains(&format!(r#"id="role-{pending_id}""#))
    );
    assert_eq!(
        moderator.form(&role, &[("role", "moderator")]).await.status,
        403
    );
    see_other(&owner.form(&role, &[("role", "moderator")]).await);
    let a = owner.form(&role, &[("role", "doctor")]).await;
    assert_eq!(a.status, 409);
    assert!(a.html.contains("只有医生账号才能担任本群医生"));
    see_other(&owner.form(&role, &[("role", "member")]).await);

    // The moderator removes the member with a reason, bans another, and lifts the ban.
    let remove = format!("/g/{}/members/{pending_id}/remove", w.gid);
    assert_eq!(member.form(&remove, &[]).await.status, 403);
    see_other(&moderator.form(&remove, &[("reason", "发广告")]).await);
    assert_eq!(member_state(&node, &w.gid, pending_id).await, "removed");
    let ban = format!("/g/{}/members/{}/ban", w.gid, w.member_id);
    see_other(&moderator.form(&ban, &[("reason", "多次违规")]).await);
    assert_eq!(member_state(&node, &w.gid, w.member_id).await, "banned");
    let page = moderator.get(&members_page).await;
    assert!(page.html.contains("已禁止加入的成员"));
    // The banned member has lost access to the pages at once.
    assert_eq!(member.get(&format!("/g/{}", w.gid)).await.status, 404);
    see_other(
        &moderator
            .form(&format!("/g/{}/members/{}/unban", w.gid, w.member_id), &[])
            .await,
    );
    assert_eq!(member_state(&node, &w.gid, w.member_id).await, "removed");
    // The owner cannot be removed.
    let owner_id = node
        .store
        .membership(
            node.store.group_by_public_id(&w.gid).await.unwrap().id,
            node.store.user_by_username("dr.owner").await.unwrap().id,
        )
        .await
        .unwrap()
        .unwrap()
        .id;
    let a = moderator
        .form(&format!("/g/{}/members/{owner_id}/remove", w.gid), &[])
        .await;
    assert_eq!(a.status, 409);
    assert!(a.html.contains("不能将群主移出本群"), "{}", a.html);

    // Every action is in the moderation log, as when done through the API.
    let log = expect(
        get(&node, &w.owner, &g(&w.gid, "/moderation-log")).await,
        200,
    );
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..6],
        [
            "unban",
            "ban",
            "remove_member",
            "dismiss_moderator",
            "appoint_moderator",
            "approve_join"
        ]
    );
    assert!(log["items"].to_string().contains("发广告"));

    // When the owner closes the member list, plain members are refused it.
    let (st, _) = call(
        &node,
        Some(&w.owner),
        Method::PATCH,
        &g(&w.gid, ""),
        Some(json!({"member_list": "moderators"})),
    )
    .await;
    assert_eq!(st, 200);
    let doctor = Browser::new(&node, &w.doctor);
    assert_eq!(doctor.get(&members_page).await.status, 200);
    let again_member = node.account_with_token(Role::Patient, "p.late").await;
    common::join(&node, &w.owner, &w.gid, &again_member).await;
    assert_eq!(
        Browser::new(&node, &again_member)
            .get(&members_page)
            .await
            .status,
        403
    );
    // Hospital administrators moderate without being members.
    let admin = Browser::new(&node, &w.admin);
    let page = admin.get(&members_page).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("/moderation"));
}

async fn feed_and_queue_pages_page_by_cursor(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    for i in 0..45 {
        expect(
            post(
                &node,
                &w.member,
                &g(&w.gid, "/posts"),
                json!({"kind": "question", "title": format!("问题编号{i:02}"), "body": "?"}),
            )
            .await,
            201,
        );
    }
    let patient = Browser::new(&node, &w.member);
    let mut seen = Vec::new();
    let mut path = format!("/g/{}", w.gid);
    let mut pages = 0;
    loop {
        let page = patient.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.html);
        pages += 1;
        for part in page.html.split("问题编号").skip(1) {
            let n: String = part.chars().take(2).collect();
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
        // The ask form is on the first page only.
        assert_eq!(page.html.contains("/ask\""), pages == 1);
        match page.html.split_once(r#"<a rel="next" href=""#) {
            Some((_, rest)) => {
                path = rest.split('"').next().unwrap().replace("&amp;", "&");
                assert!(page.html.contains(if pages == 1 {
                    "更早的帖子"
                } else {
                    "回到最新的帖子"
                }));
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..45).rev().map(|i| format!("{i:02}")).collect();
    assert_eq!(seen, expected, "newest first, every post once");
    let bad = patient.get(&format!("/g/{}?cursor=garbage", w.gid)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.html.contains("<!doctype html>"));

    // The doctor's queue: 20 a page, oldest first.
    let doctor = Browser::new(&node, &w.doctor);
    let first = doctor.get("/doctor/queue").await;
    assert!(
        first.html.contains("有 20 个以上问题等待您回答"),
        "{}",
        first.html
    );
    assert!(first.html.contains("问题编号00") && !first.html.contains("问题编号20"));
    let (_, rest) = first.html.split_once(r#"<a rel="next" href=""#).unwrap();
    let next = rest.split('"').next().unwrap().replace("&amp;", "&");
    let second = doctor.get(&next).await;
    assert!(second.html.contains("问题编号20") && !second.html.contains("问题编号19"));
    assert!(second.html.contains("回到第一页"));
    let (_, rest) = second.html.split_once(r#"<a rel="next" href=""#).unwrap();
    let third = doctor
        .get(&rest.split('"').next().unwrap().replace("&amp;", "&"))
        .await;
    assert!(third.html.contains("问题编号44") && !third.html.contains(r#"rel="next""#));
    // Patients have no queue.
    assert_eq!(patient.get("/doctor/queue").await.status, 403);
}

/// A patient of hospital A opens an invite link of a group hosted on B: B's page sends them to
/// their own hospital, where they choose their name for the group and ask to join; the host
/// accepts and the group appears among their groups at home. A group of a hospital that is not a
/// partner is refused, and a missing name stores nothing.
async fn a_patient_of_a_partner_hospital_joins_from_the_invite_link(b: Backend) {
    let Some(host) = TestNode::spawn_with(b, |c| c.hospital_name = "Hospital B".into()).await
    else {
        return;
    };
    let Some(a) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(stranger) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    host.add_partner(&a).await;
    a.add_partner(&host).await;
    let doctor = host.account_with_token(Role::Doctor, "dr.li").await;
    let gid = common::create_group(&host, &doctor, "心衰康复").await;
    let invite = expect(
        post(
            &host,
            &doctor,
            &g(&gid, "/invites"),
            json!({ "max_uses": 5 }),
        )
        .await,
        201,
    );
    let link = invite["url"].as_str().unwrap();
    let token = link.rsplit('/').next().unwrap();

    // On B, without an account there: the invitation leads to the partner hospitals.
    let visitor = reqwest::Client::new()
        .get(host.url(&format!("/group-invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(visitor.status(), 200);
    let html = visitor.text().await.unwrap();
    let base = a.url("/");
    let start = html
        .find(&format!("href=\"{base}remote-join?"))
        .unwrap_or_else(|| {
            panic!("no link to the patient's hospital in {html}");
        });
    let href = html[start + 6..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let path = href
        .strip_prefix(base.trim_end_matches('/'))
        .unwrap()
        .to_owned();

    // At home, logged in: the page asks for the name to show in the group.
    let pa = a.account_with_token(Role::Patient, "wang.xiaoli").await;
    let browser = Browser::new(&a, &pa);
    let page = browser.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains(r#"name="display_name""#),
        "{}",
        page.html
    );
    let group_url = host.federation.urls.group(&gid);
    let no_name = browser
        .form(
            "/remote-join",
            &[
                ("group", &group_url),
                ("invite", token),
                ("display_name", " "),
            ],
        )
        .await;
    assert_eq!(no_name.status, 422, "{}", no_name.html);
    assert!(
        a.store
            .group_by_remote_actor(&group_url)
            .await
            .unwrap()
            .is_none()
    );

    // A group of a hospital that is not a partner is refused before anything is fetched.
    let foreign = stranger.federation.urls.group("abc");
    let refused = browser
        .get(&format!(
            "/remote-join?group={}",
            url::form_urlencoded::byte_serialize(foreign.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.html);

    let sent = browser
        .form(
            "/remote-join",
            &[
                ("group", &group_url),
                ("invite", token),
                ("display_name", "小王"),
            ],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    assert!(sent.html.contains("Hospital B"), "{}", sent.html);
    caremesh_testkit::wait_for("the group among the patient's groups", || async {
        let (_, groups) = get(&a, &pa, "/api/v1/groups").await;
        groups["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|g| g["name"] == "心衰康复"))
    })
    .await;
    let members = expect(get(&host, &doctor, &g(&gid, "/members")).await, 200);
    assert!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["display_name"] == "小王"),
        "{members}"
    );
}

async fn an_admin_records_a_credential_valid_through_the_day_typed(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let doctor = node
        .create_account(Role::Doctor, "dr.zhao", "doctor password")
        .await;
    let a = Browser::new(&node, &admin);
    let fields = [
        ("title", "主任医师"),
        ("specialty", "乳腺外科"),
        ("licence_number", "110130000123456"),
        ("checked_on", "2026-11-20"),
        ("valid_until", "2027-11-19"),
    ];
    // A date the form cannot read records nothing.
    let mut bad = fields.to_vec();
    bad[4] = ("valid_until", "19/11/2027");
    let r = a.form("/admin/accounts/dr.zhao/credential", &bad).await;
    assert_eq!(r.status, 422);
    assert!(node.store.credential(doctor.id).await.unwrap().is_none());

    let r = a.form("/admin/accounts/dr.zhao/credential", &fields).await;
    assert_eq!(see_other(&r), "/admin/accounts/dr.zhao");
    let c = node.store.credential(doctor.id).await.unwrap().unwrap();
    assert_eq!(
        (c.title.as_str(), c.licence_number.as_str()),
        ("主任医师", "110130000123456")
    );
    assert_eq!(
        c.valid_until.map(|t| t.to_rfc3339()).as_deref(),
        Some("2027-11-20T00:00:00.000Z"),
        "valid through the last day typed, as with `caremesh credential set`"
    );
    let page = a.get("/admin/accounts/dr.zhao").await;
    assert!(page.html.contains("乳腺外科"), "{}", page.html);
}

/// `next` after logging in stays on this node, whatever a link puts in it: browsers drop tabs and
/// line breaks and read `\\` as `/`, so each of these would otherwise lead to another site.
async fn the_login_page_sends_nobody_off_this_node(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let token = node.account_with_token(Role::Patient, "patient.zhao").await;
    let logged_in = Browser::new(&node, &token);
    let anon = Browser::new(&node, "");
    let evil = [
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%0d%0a/evil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "%5C%5Cevil.example",
        "https://evil.example",
        "/%20/evil.example",
    ];
    for next in evil {
        let a = logged_in.get(&format!("/login?next={next}")).await;
        assert_eq!(see_other(&a), "/", "next={next}");
        let page = anon.get(&format!("/login?next={next}")).await;
        assert_eq!(page.status, 200);
        assert!(
            page.html.contains(r#"name="next" value="/""#),
            "next={next}: {}",
            page.html
        );
    }
    // A path of this node is kept, with its query.
    let a = logged_in.get("/login?next=%2Fgroups%3Fcursor%3D5").await;
    assert_eq!(see_other(&a), "/groups?cursor=5");
}
