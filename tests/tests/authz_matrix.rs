//! Authorization as a matrix: every group route against every kind of caller, with the exact
//! status code each must get, and proof that every refused request changed nothing.
//!
//! Callers: anonymous, a patient of the node who is not a member, a member, a moderator, a doctor
//! of the group, its owner, a doctor who owns another group, and the hospital administrator.
//! Policy: anonymous 401; outsiders 404 (a group they are not in does not exist for them);
//! members without the role 403; administrators see settings, members, invites, reports and the
//! log and may moderate, but read no posts, files or library (403).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use caremesh_domain::{Clock, MemberState, Role};
use caremesh_store::FeedSort;
use caremesh_testkit::{Backend, TestNode, on_both_backends};
use common::{World, call, expect, get, post, world};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(every_role_against_every_group_route);

const CALLERS: [&str; 8] = [
    "anonymous",
    "outsider",
    "member",
    "moderator",
    "doctor",
    "owner",
    "other_doctor",
    "admin",
];

#[derive(Clone, Copy, Debug)]
enum Route {
    GetGroup,
    PatchGroup,
    ListMembers,
    ListBanned,
    RemoveMember,
    SetRole,
    Ban,
    Unban,
    RequestJoin,
    ListJoinRequests,
    ApproveJoin,
    RejectJoin,
    ListInvites,
    CreateInvite,
    RevokeInvite,
    InviteQr,
    Feed,
    PostQuestion,
    PostAnnouncement,
    Scheduled,
    GetPost,
    EditPost,
    DeletePost,
    Replies,
    Reply,
    History,
    Helpful,
    Accept,
    Pin,
    Report,
    Search,
    Upload,
    Download,
    ListFolders,
    CreateFolder,
    DeleteFolder,
    ListItems,
    AddItem,
    RemoveItem,
    ListReports,
    DismissReport,
    ModerationLog,
    DoctorQueue,
    MyGroups,
    CreateGroup,
    InvitePreview,
    AcceptInvite,
    Leave,
}

use Route::*;

/// Expected status for [anonymous, outsider, member, moderator, doctor, owner, other_doctor,
/// admin].
fn expected(r: Route) -> [u16; 8] {
    match r {
        GetGroup | ListMembers => [401, 404, 200, 200, 200, 200, 404, 200],
        PatchGroup | SetRole => [401, 404, 403, 403, 403, 200, 404, 403],
        ListBanned | RemoveMember | Ban | Unban | ListJoinRequests | ApproveJoin | RejectJoin
        | ListInvites | RevokeInvite | InviteQr | ListReports | DismissReport | ModerationLog => {
            [401, 404, 403, 200, 200, 200, 404, 200]
        }
        CreateInvite => [401, 404, 403, 201, 201, 201, 404, 201],
        RequestJoin => [401, 202, 409, 409, 409, 409, 202, 202],
        Feed | GetPost | Replies | Helpful | Search | Download | ListFolders | ListItems => {
            [401, 404, 200, 200, 200, 200, 404, 403]
        }
        PostQuestion | Reply | Report | Upload => [401, 404, 201, 201, 201, 201, 404, 403],
        PostAnnouncement => [401, 404, 403, 403, 201, 201, 404, 403],
        Accept | Pin => [401, 404, 403, 403, 200, 200, 404, 403],
        Scheduled => [401, 404, 403, 200, 200, 200, 404, 403],
        EditPost => [401, 404, 200, 403, 403, 403, 404, 403],
        DeletePost => [401, 404, 200, 200, 200, 200, 404, 200],
        History => [401, 404, 403, 200, 200, 200, 404, 200],
        CreateFolder | AddItem => [401, 404, 403, 201, 201, 201, 404, 403],
        DeleteFolder | RemoveItem => [401, 404, 403, 204, 204, 204, 404, 403],
        DoctorQueue => [401, 403, 403, 403, 200, 200, 200, 403],
        MyGroups | InvitePreview => [401, 200, 200, 200, 200, 200, 200, 200],
        CreateGroup => [401, 403, 403, 403, 201, 201, 201, 201],
        // After `Leave`: those who left (and outsiders) join; the owner never left.
        AcceptInvite => [401, 201, 201, 201, 201, 409, 201, 201],
        Leave => [401, 404, 204, 204, 204, 409, 404, 403],
    }
}

const ROUTES: [Route; 48] = [
    GetGroup,
    PatchGroup,
    ListMembers,
    ListBanned,
    RemoveMember,
    SetRole,
    Ban,
    Unban,
    RequestJoin,
    ListJoinRequests,
    ApproveJoin,
    RejectJoin,
    ListInvites,
    CreateInvite,
    RevokeInvite,
    InviteQr,
    Feed,
    PostQuestion,
    PostAnnouncement,
    Scheduled,
    GetPost,
    EditPost,
    DeletePost,
    Replies,
    Reply,
    History,
    Helpful,
    Accept,
    Pin,
    Report,
    Search,
    Upload,
    Download,
    ListFolders,
    CreateFolder,
    DeleteFolder,
    ListItems,
    AddItem,
    RemoveItem,
    ListReports,
    DismissReport,
    ModerationLog,
    DoctorQueue,
    MyGroups,
    CreateGroup,
    InvitePreview,
    // Near the end: members who leave lose access for everything after.
    Leave,
    AcceptInvite,
];

struct Fx<'a> {
    node: &'a TestNode,
    w: &'a World,
    /// A question by a third patient, with a reply: targets that no caller owns.
    question: String,
    reply: String,
    attachment: String,
    invite_id: i64,
    invite_token: String,
    n: AtomicU32,
}

impl Fx<'_> {
    fn g(&self, rest: &str) -> String {
        format!("/api/v1/groups/{}{rest}", self.w.gid)
    }

    fn next(&self) -> u32 {
        self.n.fetch_add(1, Ordering::SeqCst)
    }

    async fn fresh_account(&self) -> String {
        let n = self.next();
        self.node
            .account_with_token(Role::Patient, &format!("fresh{n}"))
            .await
    }

    async fn fresh_member(&self) -> i64 {
        let t = self.fresh_account().await;
        common::join(self.node, &self.w.owner, &self.w.gid, &t).await
    }

    async fn fresh_pending(&self) -> i64 {
        let t = self.fresh_account().await;
        expect(
            post(self.node, &t, &self.g("/join-requests"), json!({})).await,
            202,
        )["id"]
            .as_i64()
            .unwrap()
    }

    async fn fresh_invite(&self) -> (i64, String) {
        let v = expect(
            post(self.node, &self.w.owner, &self.g("/invites"), json!({})).await,
            201,
        );
        let token = v["url"].as_str().unwrap().rsplit('/').next().unwrap();
        (v["id"].as_i64().unwrap(), token.to_owned())
    }

    async fn fresh_post(&self, author: &str) -> String {
        expect(
            post(
                self.node,
                author,
                &self.g("/posts"),
                json!({"kind": "question", "body": format!("fresh {}", self.next())}),
            )
            .await,
            201,
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn fresh_folder(&self) -> i64 {
        expect(
            post(
                self.node,
                &self.w.owner,
                &self.g("/library/folders"),
                json!({"name": format!("folder {}", self.next())}),
            )
            .await,
            201,
        )["id"]
            .as_i64()
            .unwrap()
    }

    /// The request a caller makes for a route, with fresh targets where the route consumes one.
    async fn request(&self, r: Route) -> (Method, String, Option<Value>) {
        let get = |p: String| (Method::GET, p, None);
        match r {
            GetGroup => get(self.g("")),
            PatchGroup => (
                Method::PATCH,
                self.g(""),
                Some(json!({"description": format!("v{}", self.next())})),
            ),
            ListMembers => get(self.g("/members")),
            ListBanned => get(self.g("/members?state=banned")),
            RemoveMember => {
                let m = self.fresh_member().await;
                (Method::DELETE, self.g(&format!("/members/{m}")), None)
            }
            SetRole => {
                let m = self.fresh_member().await;
                (
                    Method::PUT,
                    self.g(&format!("/members/{m}/role")),
                    Some(json!({"role": "moderator"})),
                )
            }
            Ban => {
                let m = self.fresh_member().await;
                (
                    Method::POST,
                    self.g(&format!("/members/{m}/ban")),
                    Some(json!({})),
                )
            }
            Unban => {
                let m = self.fresh_member().await;
                expect(
                    post(
                        self.node,
                        &self.w.owner,
                        &self.g(&format!("/members/{m}/ban")),
                        json!({}),
                    )
                    .await,
                    200,
                );
                (Method::DELETE, self.g(&format!("/members/{m}/ban")), None)
            }
            RequestJoin => (Method::POST, self.g("/join-requests"), Some(json!({}))),
            ListJoinRequests => get(self.g("/join-requests")),
            ApproveJoin | RejectJoin => {
                let m = self.fresh_pending().await;
                let verb = if matches!(r, ApproveJoin) {
                    "approve"
                } else {
                    "reject"
                };
                (
                    Method::POST,
                    self.g(&format!("/join-requests/{m}/{verb}")),
                    Some(json!({})),
                )
            }
            ListInvites => get(self.g("/invites")),
            CreateInvite => (Method::POST, self.g("/invites"), Some(json!({}))),
            RevokeInvite => {
                let (id, _) = self.fresh_invite().await;
                (Method::DELETE, self.g(&format!("/invites/{id}")), None)
            }
            InviteQr => get(self.g(&format!("/invites/{}/qr?format=png", self.invite_id))),
            Feed => get(self.g("/posts")),
            PostQuestion => (
                Method::POST,
                self.g("/posts"),
                Some(json!({"kind": "question", "body": "q"})),
            ),
            PostAnnouncement => (
                Method::POST,
                self.g("/posts"),
                Some(json!({"kind": "announcement", "body": "a"})),
            ),
            Scheduled => get(self.g("/posts/scheduled")),
            GetPost => get(self.g(&format!("/posts/{}", self.question))),
            EditPost => {
                let p = self.fresh_post(&self.w.member).await;
                (
                    Method::PATCH,
                    self.g(&format!("/posts/{p}")),
                    Some(json!({"body": "edited"})),
                )
            }
            DeletePost => {
                let p = self.fresh_post(&self.w.member).await;
                (Method::DELETE, self.g(&format!("/posts/{p}")), None)
            }
            Replies => get(self.g(&format!("/posts/{}/replies", self.question))),
            Reply => (
                Method::POST,
                self.g(&format!("/posts/{}/replies", self.question)),
                Some(json!({"body": "r"})),
            ),
            History => get(self.g(&format!("/posts/{}/history", self.question))),
            Helpful => (
                Method::PUT,
                self.g(&format!("/posts/{}/helpful", self.reply)),
                None,
            ),
            Accept => (
                Method::PUT,
                self.g(&format!("/posts/{}/accepted-answer", self.question)),
                Some(json!({"reply": self.reply})),
            ),
            Pin => (
                Method::PUT,
                self.g(&format!("/posts/{}/pin", self.question)),
                None,
            ),
            Report => {
                let p = self.fresh_post(&self.w.doctor).await;
                (
                    Method::POST,
                    self.g(&format!("/posts/{p}/reports")),
                    Some(json!({"reason": "spam"})),
                )
            }
            Search => get(self.g("/search?q=fresh")),
            Upload => (Method::POST, self.g("/attachments?name=x.pdf"), None),
            Download => get(self.g(&format!("/attachments/{}", self.attachment))),
            ListFolders => get(self.g("/library/folders")),
            CreateFolder => (
                Method::POST,
                self.g("/library/folders"),
                Some(json!({"name": format!("new folder {}", self.next())})),
            ),
            DeleteFolder => {
                let f = self.fresh_folder().await;
                (
                    Method::DELETE,
                    self.g(&format!("/library/folders/{f}")),
                    None,
                )
            }
            ListItems => get(self.g("/library/items")),
            AddItem => {
                let f = self.fresh_folder().await;
                (
                    Method::POST,
                    self.g("/library/items"),
                    Some(json!({"folder": f, "post": self.question})),
                )
            }
            RemoveItem => {
                let f = self.fresh_folder().await;
                let item = expect(
                    post(
                        self.node,
                        &self.w.owner,
                        &self.g("/library/items"),
                        json!({"folder": f, "post": self.question}),
                    )
                    .await,
                    201,
                );
                let id = item["id"].as_i64().unwrap();
                (
                    Method::DELETE,
                    self.g(&format!("/library/items/{id}")),
                    None,
                )
            }
            ListReports => get(self.g("/reports")),
            DismissReport => {
                let p = self.fresh_post(&self.w.doctor).await;
                let rep = expect(
                    post(
                        self.node,
                        &self.w.member,
                        &self.g(&format!("/posts/{p}/reports")),
                        json!({"reason": "?"}),
                    )
                    .await,
                    201,
                );
                let id = rep["id"].as_i64().unwrap();
                (
                    Method::POST,
                    self.g(&format!("/reports/{id}/dismiss")),
                    Some(json!({})),
                )
            }
            ModerationLog => get(self.g("/moderation-log")),
            DoctorQueue => get("/api/v1/doctor/queue".into()),
            MyGroups => get("/api/v1/groups".into()),
            CreateGroup => (
                Method::POST,
                "/api/v1/groups".into(),
                Some(json!({"name": "new", "condition": "c", "city": "c", "language": "en"})),
            ),
            InvitePreview => get(format!("/api/v1/group-invites/{}", self.invite_token)),
            AcceptInvite => {
                let (_, token) = self.fresh_invite().await;
                (
                    Method::POST,
                    format!("/api/v1/group-invites/{token}/accept"),
                    Some(json!({})),
                )
            }
            Leave => (Method::POST, self.g("/leave"), None),
        }
    }

    /// Everything a refused request could have changed about the group.
    async fn fingerprint(&self) -> String {
        let s = &self.node.store;
        let g = s.group_by_public_id(&self.w.gid).await.unwrap();
        let mut members = Vec::new();
        for state in MemberState::ALL {
            members.push(s.list_members(g.id, state, None, 200).await.unwrap());
        }
        let far = self.node.clock.now().plus_secs(400 * 24 * 3600);
        let feed = s
            .feed(g.id, None, FeedSort::Newest, None, 200, far)
            .await
            .unwrap();
        let mut replies = Vec::new();
        for p in &feed {
            replies.push(
                s.replies(p.id, None, caremesh_store::ReplySort::Oldest, None, 200)
                    .await
                    .unwrap(),
            );
        }
        let invites = s.list_group_invites(g.id, None, 200).await.unwrap();
        let folders = s.list_folders(g.id).await.unwrap();
        let items = s.library_items(g.id, None, None, 200).await.unwrap();
        let reports = s.list_reports(g.id, false, None, 200).await.unwrap();
        let log = s.moderation_log(g.id, None, 200).await.unwrap();
        let groups = s.list_groups(None, 200).await.unwrap();
        format!(
            "{g:?}{members:?}{feed:?}{replies:?}{invites:?}{folders:?}{items:?}{reports:?}{log:?}{groups:?}"
        )
    }
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n".to_vec()
}

async fn every_role_against_every_group_route(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let author = node
        .account_with_token(Role::Patient, "third.patient")
        .await;
    common::join(&node, &w.owner, &w.gid, &author).await;
    let question = expect(
        post(
            &node,
            &author,
            &format!("/api/v1/groups/{}/posts", w.gid),
            json!({"kind": "question", "body": "fresh question"}),
        )
        .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = expect(
        post(
            &node,
            &author,
            &format!("/api/v1/groups/{}/posts/{question}/replies", w.gid),
            json!({"body": "a reply"}),
        )
        .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attachment = node
        .http
        .post(node.url(&format!("/api/v1/groups/{}/attachments", w.gid)))
        .bearer_auth(&author)
        .header("content-type", "application/pdf")
        .body(pdf())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fx0 = Fx {
        node: &node,
        w: &w,
        question: question.clone(),
        reply: reply.clone(),
        attachment,
        invite_id: 0,
        invite_token: String::new(),
        n: AtomicU32::new(0),
    };
    let (invite_id, invite_token) = fx0.fresh_invite().await;
    let fx = Fx {
        invite_id,
        invite_token,
        ..fx0
    };
    let tokens: [Option<&str>; 8] = [
        None,
        Some(&w.outsider),
        Some(&w.member),
        Some(&w.moderator),
        Some(&w.doctor),
        Some(&w.owner),
        Some(&w.other_doctor),
        Some(&w.admin),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in ROUTES {
        for (i, token) in tokens.iter().enumerate() {
            let (method, path, body) = fx.request(route).await;
            let want = expected(route)[i];
            let before = if want >= 400 {
                Some(fx.fingerprint().await)
            } else {
                None
            };
            let (status, answer) = if matches!(route, Upload) {
                let mut req = node
                    .http
                    .post(node.url(&path))
                    .header("content-type", "application/pdf")
                    .body(pdf());
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.unwrap();
                (
                    resp.status(),
                    resp.json::<Value>().await.unwrap_or(Value::Null),
                )
            } else {
                call(&node, *token, method.clone(), &path, body).await
            };
            if status.as_u16() != want {
                failures.push(format!(
                    "{route:?} as {}: {method} {path} -> {status} {answer}, expected {want}",
                    CALLERS[i]
                ));
            }
            if status.is_client_error() {
                assert!(
                    answer["error"].as_str().is_some(),
                    "{route:?} as {}: error body {answer}",
                    CALLERS[i]
                );
                if let Some(before) = &before
                    && &fx.fingerprint().await != before
                {
                    failures.push(format!(
                        "{route:?} as {}: refused with {status} but changed the group",
                        CALLERS[i]
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, ROUTES.len() * CALLERS.len());
    // The post survived everyone's attempts except those entitled.
    let q = expect(
        get(
            &node,
            &w.owner,
            &format!("/api/v1/groups/{}/posts/{question}", w.gid),
        )
        .await,
        200,
    );
    assert_eq!(q["accepted_answer"], reply.as_str());
    node.stop().await;
}
