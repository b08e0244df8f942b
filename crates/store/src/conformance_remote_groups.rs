//! The behaviour every [`Store`] backend must show for groups across hospitals: remote members,
//! mirrored groups, posts from other nodes and what their hosts decide about them. Each backend's
//! test suite expands [`remote_group_conformance_suite!`](crate::remote_group_conformance_suite).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use caremesh_domain::{
    GroupRole, Language, MemberListVisibility, MemberState, PostKind, Role, Timestamp, UserId,
};

use crate::{
    DeletedBy, GroupSettings, HostedPostState, MirrorFolder, MirrorItem, NewGroup, NewOutboxEntry,
    NewUser, Pseudonym, RemoteFollow, RemotePost, Store, StoreError,
};

/// Expands to one `#[tokio::test]` per check.
#[macro_export]
macro_rules! remote_group_conformance_suite {
    ($factory:path) => {
        $crate::remote_group_conformance_suite!(@each $factory;
            remote_follow_with_invite_and_leaving,
            mirror_join_as_pseudonym_or_as_oneself,
            the_host_changes_a_mirrored_membership,
            remote_posts_are_stored_once_and_edited_only_forward,
            remote_helpful_marks_count_once,
            hosted_state_is_applied_and_removal_is_final,
            replies_wait_for_their_question,
            a_mirrored_library_is_replaced_whole,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                match $factory().await {
                    Some(store) => $crate::conformance_remote_groups::$name(store).await,
                    // The factory says why when it can; this records the test in any case.
                    None => $crate::skip::skip("the backend's database is not available"),
                }
            }
        )*
    };
}

type S = Arc<dyn Store>;

const T0: Timestamp = Timestamp::from_millis(1_795_420_800_000);
const QUOTA: i64 = 1 << 30;
const ALICE: &str = "https://a.example/pseudonyms/p1";
const BOB: &str = "https://c.example/pseudonyms/p2";

fn t(secs: i64) -> Timestamp {
    T0.plus_secs(secs)
}

async fn user(s: &S, name: &str, role: Role) -> UserId {
    s.create_user(
        NewUser {
            username: name.to_owned(),
            display_name: format!("{name} 显示"),
            role,
            password_hash: "x".into(),
        },
        T0,
    )
    .await
    .unwrap()
    .id
}

fn settings(name: &str) -> GroupSettings {
    GroupSettings {
        name: name.to_owned(),
        condition: "心力衰竭".into(),
        condition_code: None,
        city: "唐山".into(),
        language: Language::ZhCn,
        description: String::new(),
        rules: String::new(),
        member_list: MemberListVisibility::Moderators,
    }
}

async fn hosted_group(s: &S, owner: UserId) -> i64 {
    s.create_group(
        NewGroup {
            public_id: "g-hosted".into(),
            settings: settings("hosted"),
            owner,
        },
        T0,
    )
    .await
    .unwrap()
    .id
}

fn entry(peer: &str, id: &str) -> NewOutboxEntry {
    NewOutboxEntry {
        peer: peer.to_owned(),
        inbox_url: format!("https://{peer}/inbox"),
        activity_id: id.to_owned(),
        payload: format!(r#"{{"id":"{id}"}}"#),
        intent: false,
    }
}

fn remote_post(group_id: i64, origin: &str, author: &str, thread: Option<&str>) -> RemotePost {
    RemotePost {
        public_id: format!("local-{}", origin.rsplit('/').next().unwrap()),
        group_id,
        origin_id: origin.to_owned(),
        thread_public_id: None,
        thread_origin_id: thread.map(str::to_owned),
        author_actor_id: author.to_owned(),
        author_name: "小李".into(),
        kind: if thread.is_some() {
            PostKind::Reply
        } else {
            PostKind::Question
        },
        title: None,
        body: "原文".into(),
        pinned: false,
        published_at: t(10),
        files: Vec::new(),
    }
}

async fn pending_count(s: &S) -> u64 {
    s.peer_queues()
        .await
        .unwrap()
        .iter()
        .map(|q| q.pending)
        .sum()
}

pub async fn remote_follow_with_invite_and_leaving(s: S) {
    let owner = user(&s, "dr.li", Role::Doctor).await;
    let g = hosted_group(&s, owner).await;
    s.create_group_invite(crate::NewGroupInvite {
        group_id: g,
        token: "tok".into(),
        label: None,
        created_by: owner,
        created_at: T0,
        expires_at: None,
        max_uses: Some(1),
    })
    .await
    .unwrap();
    let follow = |actor: &'static str, token: Option<&'static str>| RemoteFollow {
        group_id: g,
        actor_id: actor,
        name: "小李",
        invite_token: token,
        max_members: 500,
    };
    let m = s
        .remote_follow(
            follow(ALICE, Some("tok")),
            vec![entry("a.example", "acc-1")],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(m.state, MemberState::Active);
    assert_eq!(m.display_name, "小李");
    assert_eq!(pending_count(&s).await, 1, "the Accept is queued with it");
    let log = s.moderation_log(g, None, 10).await.unwrap();
    assert_eq!(log[0].action, "join_by_invite", "the admission is logged");
    assert_eq!(log[0].target_member_id, Some(m.id));
    // The invite is used up: the next actor waits for a moderator... but a used-up token is refused.
    let err = s
        .remote_follow(
            follow(BOB, Some("tok")),
            vec![entry("c.example", "acc-2")],
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    assert_eq!(pending_count(&s).await, 1, "nothing queued for a refusal");
    let m = s
        .remote_follow(follow(BOB, None), Vec::new(), T0)
        .await
        .unwrap();
    assert_eq!(m.state, MemberState::Pending);
    assert_eq!(s.remote_member_actors(g).await.unwrap(), vec![ALICE]);
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 2);
    let left = s.remote_unfollow(g, ALICE, t(1)).await.unwrap().unwrap();
    assert_eq!(left.state, MemberState::Left);
    assert!(s.remote_member_actors(g).await.unwrap().is_empty());
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 1);
    assert!(
        s.remote_unfollow(g, "https://x.example/p/none", t(1))
            .await
            .unwrap()
            .is_none()
    );
}

async fn mirror(s: &S) -> i64 {
    s.upsert_mirror_group("https://b.example/groups/g1", "m1", settings("mirror"), T0)
        .await
        .unwrap()
        .id
}

pub async fn mirror_join_as_pseudonym_or_as_oneself(s: S) {
    let g = mirror(&s).await;
    // A link made here for the copy of a group hosted elsewhere admits nobody: only the host
    // admits its members.
    let admin = user(&s, "admin", Role::Admin).await;
    s.create_group_invite(local_link(g, admin)).await.unwrap();
    let err = s
        .join_by_invite("local-link", admin, 500, t(1))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("hosted_elsewhere"));
    assert_eq!(s.membership(g, admin).await.unwrap(), None);
    assert_eq!(s.group_invite_by_token("local-link").await.unwrap().uses, 0);
    // Refreshing the mirror keeps its id.
    let again = s
        .upsert_mirror_group(
            "https://b.example/groups/g1",
            "other",
            settings("renamed"),
            t(1),
        )
        .await
        .unwrap();
    assert_eq!((again.id, again.settings.name.as_str()), (g, "renamed"));
    let patient = user(&s, "wang", Role::Patient).await;
    let doctor = user(&s, "dr.zhang", Role::Doctor).await;
    let p = Pseudonym {
        id: 0,
        public_id: "ps1".into(),
        user_id: patient,
        group_id: g,
        display_name: "康复中的小李".into(),
        created_at: T0,
    };
    let m = s
        .join_remote_group(patient, g, Some(p), vec![entry("b.example", "f-1")], T0)
        .await
        .unwrap();
    assert_eq!(m.state, MemberState::Pending);
    let stored = s.pseudonym("ps1").await.unwrap().unwrap();
    assert_eq!(stored.display_name, "康复中的小李");
    assert_eq!(
        s.pseudonym_of(patient, g).await.unwrap().unwrap().public_id,
        "ps1"
    );
    // Staff join as themselves: no pseudonym.
    s.join_remote_group(doctor, g, None, vec![entry("b.example", "f-2")], T0)
        .await
        .unwrap();
    assert!(s.pseudonym_of(doctor, g).await.unwrap().is_none());
    assert_eq!(pending_count(&s).await, 2);
    let m = s.answer_remote_join(g, patient, true, t(1)).await.unwrap();
    assert_eq!(m.state, MemberState::Active);
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 1);
    // A second answer changes nothing.
    let m = s.answer_remote_join(g, patient, false, t(2)).await.unwrap();
    assert_eq!(m.state, MemberState::Active);
    let err = s
        .join_remote_group(patient, g, None, Vec::new(), t(3))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("already_member"));
    let m = s.answer_remote_join(g, doctor, false, t(1)).await.unwrap();
    assert_eq!(m.state, MemberState::Rejected);
}

pub async fn the_host_changes_a_mirrored_membership(s: S) {
    let g = mirror(&s).await;
    let doctor = user(&s, "dr.zhang", Role::Doctor).await;
    s.join_remote_group(doctor, g, None, Vec::new(), T0)
        .await
        .unwrap();
    // The host's role change may arrive before its Accept.
    let m = s
        .set_mirror_membership(g, doctor, MemberState::Active, GroupRole::Doctor, t(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.state, m.role), (MemberState::Active, GroupRole::Doctor));
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 1);
    let m = s.answer_remote_join(g, doctor, true, t(2)).await.unwrap();
    assert_eq!((m.state, m.role), (MemberState::Active, GroupRole::Doctor));
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 1);
    let m = s
        .set_mirror_membership(g, doctor, MemberState::Banned, GroupRole::Member, t(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.state, MemberState::Banned);
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 0);
    let err = s
        .join_remote_group(doctor, g, None, Vec::new(), t(4))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("banned"));
    // A host cannot bring back a membership its member left.
    let patient = user(&s, "wang", Role::Patient).await;
    s.join_remote_group(patient, g, None, Vec::new(), t(5))
        .await
        .unwrap();
    s.answer_remote_join(g, patient, true, t(6)).await.unwrap();
    s.leave_group(g, patient, t(7)).await.unwrap();
    let m = s
        .set_mirror_membership(g, patient, MemberState::Active, GroupRole::Member, t(8))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.state, MemberState::Left);
    let stranger = user(&s, "nobody", Role::Patient).await;
    assert!(
        s.set_mirror_membership(g, stranger, MemberState::Active, GroupRole::Member, t(5))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn remote_posts_are_stored_once_and_edited_only_forward(s: S) {
    let g = mirror(&s).await;
    let origin = "https://a.example/objects/q1";
    let (p, new) = s
        .store_remote_post(remote_post(g, origin, ALICE, None), Vec::new(), QUOTA)
        .await
        .unwrap();
    assert!(new);
    let (again, new) = s
        .store_remote_post(
            remote_post(g, origin, ALICE, None),
            vec![entry("x", "y")],
            QUOTA,
        )
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again.id, p.id);
    assert_eq!(pending_count(&s).await, 0, "nothing queued for a repeat");
    assert_eq!(s.post_by_origin(g, origin).await.unwrap().unwrap().id, p.id);
    assert!(
        s.post_by_origin(g, "https://a.example/objects/none")
            .await
            .unwrap()
            .is_none()
    );

    // Only its author edits it, only forward in time.
    assert!(
        s.edit_remote_post(origin, BOB, None, "冒充".into(), t(20), Vec::new())
            .await
            .unwrap()
            .is_none()
    );
    let edited = s
        .edit_remote_post(
            origin,
            ALICE,
            Some("标题".into()),
            "第二版".into(),
            t(30),
            vec![entry("c.example", "u-2")],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.body, "第二版");
    assert_eq!(edited.edited_at, Some(t(30)));
    assert_eq!(pending_count(&s).await, 1);
    assert!(
        s.edit_remote_post(
            origin,
            ALICE,
            None,
            "第一版（迟到）".into(),
            t(25),
            Vec::new()
        )
        .await
        .unwrap()
        .is_none(),
        "an older edit that arrives late does not overwrite a newer one"
    );
    let post = s.post_by_origin(g, origin).await.unwrap().unwrap();
    assert_eq!(post.body, "第二版");
    let history = s.post_history(post.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "原文");

    // The author deletes it: it stays deleted, and edits no longer apply.
    let deleted = s
        .delete_remote_post(origin, ALICE, Vec::new(), t(40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.deleted_by, Some(DeletedBy::Author));
    assert!(
        s.edit_remote_post(origin, ALICE, None, "复活".into(), t(50), Vec::new())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn remote_helpful_marks_count_once(s: S) {
    let owner = user(&s, "dr.li", Role::Doctor).await;
    let g = hosted_group(&s, owner).await;
    let (p, _) = s
        .store_remote_post(
            remote_post(g, "https://a.example/objects/r1", ALICE, None),
            Vec::new(),
            QUOTA,
        )
        .await
        .unwrap();
    let after = s.set_remote_helpful(p.id, BOB, true, t(1)).await.unwrap();
    assert_eq!(after.helpful_count, 1);
    let after = s.set_remote_helpful(p.id, BOB, true, t(2)).await.unwrap();
    assert_eq!(after.helpful_count, 1, "marking twice counts once");
    let err = s
        .set_remote_helpful(p.id, ALICE, true, t(3))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("own_post"));
    s.set_helpful(p.id, owner, true, t(4)).await.unwrap();
    let after = s.set_remote_helpful(p.id, BOB, false, t(5)).await.unwrap();
    assert_eq!(after.helpful_count, 1, "the local mark stays");
    let after = s.set_remote_helpful(p.id, BOB, false, t(6)).await.unwrap();
    assert_eq!(after.helpful_count, 1);
}

pub async fn hosted_state_is_applied_and_removal_is_final(s: S) {
    let g = mirror(&s).await;
    let q_origin = "https://b.example/objects/q";
    let (q, _) = s
        .store_remote_post(remote_post(g, q_origin, ALICE, None), Vec::new(), QUOTA)
        .await
        .unwrap();
    let (r, _) = s
        .store_remote_post(
            remote_post(g, "https://b.example/objects/r", BOB, Some(q_origin)),
            Vec::new(),
            QUOTA,
        )
        .await
        .unwrap();
    let state = HostedPostState {
        pinned: true,
        helpful_count: 7,
        accepted_reply: Some(r.id),
        answered_by_doctor: true,
        removed: false,
    };
    let shown = s.apply_post_state(q.id, state.clone(), t(1)).await.unwrap();
    assert!(shown.pinned);
    assert_eq!(shown.helpful_count, 7);
    assert_eq!(
        shown.accepted_reply_public_id.as_deref(),
        Some(r.public_id.as_str())
    );
    assert!(shown.answered_by_doctor);
    // An accepted answer from another thread is refused and changes nothing.
    let (other, _) = s
        .store_remote_post(
            remote_post(g, "https://b.example/objects/q2", ALICE, None),
            Vec::new(),
            QUOTA,
        )
        .await
        .unwrap();
    let err = s
        .apply_post_state(
            other.id,
            HostedPostState {
                accepted_reply: Some(r.id),
                ..state.clone()
            },
            t(2),
        )
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_in_thread"));
    // Replies are never pinned.
    let reply = s
        .apply_post_state(
            r.id,
            HostedPostState {
                accepted_reply: None,
                ..state.clone()
            },
            t(2),
        )
        .await
        .unwrap();
    assert!(!reply.pinned);
    // Removal by a moderator is final.
    let removed = s
        .apply_post_state(
            q.id,
            HostedPostState {
                removed: true,
                ..state.clone()
            },
            t(3),
        )
        .await
        .unwrap();
    assert_eq!(removed.deleted_by, Some(DeletedBy::Moderator));
    assert!(removed.body.is_empty() && !removed.pinned);
    let still = s.apply_post_state(q.id, state, t(4)).await.unwrap();
    assert_eq!(still.deleted_by, Some(DeletedBy::Moderator));
    assert!(still.body.is_empty() && !still.pinned);
    assert!(matches!(
        s.apply_post_state(
            i64::MAX,
            HostedPostState {
                pinned: false,
                helpful_count: 0,
                accepted_reply: None,
                answered_by_doctor: false,
                removed: false,
            },
            t(5)
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn replies_wait_for_their_question(s: S) {
    let g = mirror(&s).await;
    let q = "https://a.example/objects/q";
    let err = s
        .store_remote_post(
            remote_post(g, "https://c.example/objects/r", BOB, Some(q)),
            Vec::new(),
            QUOTA,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("thread")), "{err:?}");
    s.keep_waiting(g, q, "https://b.example/a/2", r#"{"n":2}"#, t(1))
        .await
        .unwrap();
    s.keep_waiting(g, q, "https://b.example/a/1", r#"{"n":1}"#, t(2))
        .await
        .unwrap();
    s.keep_waiting(g, q, "https://b.example/a/1", r#"{"n":1}"#, t(3))
        .await
        .unwrap();
    s.keep_waiting(
        g,
        "https://a.example/objects/other",
        "https://b.example/a/3",
        "{}",
        t(3),
    )
    .await
    .unwrap();
    assert_eq!(
        s.take_waiting(g, q).await.unwrap(),
        vec![r#"{"n":2}"#.to_owned(), r#"{"n":1}"#.to_owned()],
        "kept once each, oldest first"
    );
    assert!(s.take_waiting(g, q).await.unwrap().is_empty(), "taken once");
    s.keep_waiting(g, q, "https://b.example/a/9", "{}", t(10))
        .await
        .unwrap();
    assert_eq!(
        s.purge_waiting(t(5)).await.unwrap(),
        1,
        "only what waited since before then"
    );
    assert_eq!(s.purge_waiting(t(5)).await.unwrap(), 0);
    assert!(
        s.take_waiting(g, "https://a.example/objects/other")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.take_waiting(g, q).await.unwrap().len(), 1);
}

pub async fn a_mirrored_library_is_replaced_whole(s: S) {
    let g = mirror(&s).await;
    let (q, _) = s
        .store_remote_post(
            remote_post(g, "https://b.example/objects/q", ALICE, None),
            Vec::new(),
            QUOTA,
        )
        .await
        .unwrap();
    let (r, _) = s
        .store_remote_post(
            remote_post(g, "https://b.example/objects/r", BOB, None),
            Vec::new(),
            QUOTA,
        )
        .await
        .unwrap();
    let folder = |name: &str, items: Vec<(&str, i64)>| MirrorFolder {
        name: name.to_owned(),
        items: items
            .into_iter()
            .map(|(t, id)| MirrorItem::Post {
                title: t.to_owned(),
                post_id: id,
            })
            .collect(),
    };
    s.replace_mirror_library(
        g,
        vec![
            folder("饮食", vec![("少盐", q.id), ("重复", q.id)]),
            folder("运动", vec![("散步", r.id), ("别的群的帖子", i64::MAX)]),
        ],
        t(1),
    )
    .await
    .unwrap();
    let titles = |items: Vec<crate::LibraryItem>| {
        let mut t: Vec<String> = items
            .into_iter()
            .map(|i| format!("{}/{}", i.folder_name, i.title))
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        titles(s.library_items(g, None, None, 50).await.unwrap()),
        vec!["运动/散步", "饮食/少盐"],
        "a post listed twice in a folder counts once; unknown posts are left out"
    );
    s.replace_mirror_library(g, vec![folder("运动", vec![("散步", r.id)])], t(2))
        .await
        .unwrap();
    assert_eq!(
        titles(s.library_items(g, None, None, 50).await.unwrap()),
        vec!["运动/散步"]
    );
    assert_eq!(s.list_folders(g).await.unwrap().len(), 1);
    // A file of the library, kept once however often it is listed.
    let file = crate::RemoteAttachment {
        public_id: "f1".into(),
        content_type: "application/pdf".into(),
        file_name: "饮食指南.pdf".into(),
        size_bytes: 1000,
        sha256: "ab".repeat(32),
    };
    let a = s
        .add_mirror_file(g, file.clone(), QUOTA, t(3))
        .await
        .unwrap();
    let again = s
        .add_mirror_file(
            g,
            crate::RemoteAttachment {
                public_id: "f2".into(),
                ..file.clone()
            },
            QUOTA,
            t(4),
        )
        .await
        .unwrap();
    assert_eq!(a.id, again.id);
    assert_eq!(s.group_by_id(g).await.unwrap().storage_bytes, 1000);
    let err = s
        .add_mirror_file(
            g,
            crate::RemoteAttachment {
                public_id: "f3".into(),
                sha256: "cd".repeat(32),
                ..file
            },
            1500,
            t(5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("group_storage_full"));
    s.replace_mirror_library(
        g,
        vec![MirrorFolder {
            name: "资料".into(),
            items: vec![MirrorItem::File {
                title: "指南".into(),
                attachment_id: a.id,
            }],
        }],
        t(6),
    )
    .await
    .unwrap();
    let items = s.library_items(g, None, None, 50).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].attachment.as_ref().map(|f| f.id), Some(a.id));
    // A group hosted here keeps its own library.
    let owner = user(&s, "dr.li", Role::Doctor).await;
    let hosted = hosted_group(&s, owner).await;
    let err = s
        .replace_mirror_library(hosted, Vec::new(), t(3))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("hosted_here"));
}

fn local_link(group_id: i64, by: UserId) -> crate::NewGroupInvite {
    crate::NewGroupInvite {
        group_id,
        token: "local-link".into(),
        label: None,
        created_by: by,
        created_at: T0,
        expires_at: None,
        max_uses: None,
    }
}
