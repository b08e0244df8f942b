//! The behaviour every [`Store`] backend must show for groups. Each backend's test suite expands
//! [`group_conformance_suite!`](crate::group_conformance_suite) next to `conformance_suite!`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use caremesh_domain::{
    GroupRole, Language, MemberListVisibility, MemberState, PostKind, Role, Timestamp, UserId,
};

use crate::{
    Acting, DeletedBy, FeedPosition, FeedSort, GroupSettings, ImportedPost, InviteState,
    NewAttachment, NewGroup, NewGroupInvite, NewGroupRequest, NewLibraryItem, NewOutboxEntry,
    NewPost, NewUser, Pseudonym, ReplySort, Reporter, Store, StoreError,
};

/// Expands to one `#[tokio::test]` per group conformance check.
#[macro_export]
macro_rules! group_conformance_suite {
    ($factory:path) => {
        $crate::group_conformance_suite!(@each $factory;
            group_round_trip_and_owner_membership,
            invite_join_uses_and_refusals_change_nothing,
            size_limit_is_enforced_atomically,
            join_requests_are_decided_and_logged,
            leave_remove_ban_unban,
            roles_are_appointed_and_logged,
            feed_orders_pinned_first_and_pages_without_gaps,
            scheduled_posts_appear_on_time,
            replies_edits_and_history,
            deletes_leave_tombstones,
            helpful_marks_and_sorting,
            accepted_answers_and_the_doctor_queue,
            search_finds_chinese_and_english,
            attachments_count_against_the_quota,
            library_folders_and_items,
            reports_are_resolved_by_removal_or_dismissal,
            import_posts_in_bulk,
            groups_of_user_and_all_groups,
            post_views_are_counted_once_per_account,
            members_choose_their_name_in_each_group,
            changes_queue_what_they_tell_other_nodes_in_their_transaction,
            group_requests_are_recorded_with_their_action_and_answered_once,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                match $factory().await {
                    Some(store) => $crate::conformance_groups::$name(store).await,
                    // The factory says why when it can; this records the test in any case.
                    None => $crate::skip::skip("the backend's database is not available"),
                }
            }
        )*
    };
}

type S = Arc<dyn Store>;

const T0: Timestamp = Timestamp::from_millis(1_795_420_800_000);

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
        condition: "乳腺癌 Breast cancer".into(),
        condition_code: Some("C50".into()),
        city: "唐山".into(),
        language: Language::ZhCn,
        description: "术后康复教育".into(),
        rules: "互相尊重".into(),
        member_list: MemberListVisibility::Moderators,
    }
}

async fn group(s: &S, public_id: &str, owner: UserId) -> i64 {
    s.create_group(
        NewGroup {
            public_id: public_id.to_owned(),
            settings: settings(public_id),
            owner,
        },
        T0,
    )
    .await
    .unwrap()
    .id
}

async fn invite(s: &S, group_id: i64, token: &str, by: UserId, max_uses: Option<u32>) {
    s.create_group_invite(NewGroupInvite {
        group_id,
        token: token.to_owned(),
        label: None,
        created_by: by,
        created_at: T0,
        expires_at: Some(t(3600)),
        max_uses,
    })
    .await
    .unwrap();
}

async fn join(s: &S, group_id: i64, token: &str, who: UserId) -> i64 {
    let _ = group_id;
    s.join_by_invite(token, who, 500, t(1)).await.unwrap().1.id
}

fn post(group_id: i64, id: &str, kind: PostKind, author: UserId, at: i64) -> NewPost {
    NewPost {
        public_id: id.to_owned(),
        group_id,
        kind,
        thread_id: None,
        author,
        title: Some(format!("title {id}")),
        body: format!("body of {id}"),
        pinned: false,
        publish_at: t(at),
        created_at: t(at),
        attachments: Vec::new(),
    }
}

fn reply(group_id: i64, id: &str, thread: i64, author: UserId, at: i64) -> NewPost {
    NewPost {
        thread_id: Some(thread),
        title: None,
        ..post(group_id, id, PostKind::Reply, author, at)
    }
}

/// A group with an owner doctor, a moderator and two patients; returns their ids.
struct Cast {
    g: i64,
    owner: UserId,
    moderator: UserId,
    p1: UserId,
    p2: UserId,
}

async fn cast(s: &S) -> Cast {
    let owner = user(s, "dr.owner", Role::Doctor).await;
    let moderator = user(s, "nurse", Role::Staff).await;
    let p1 = user(s, "p1", Role::Patient).await;
    let p2 = user(s, "p2", Role::Patient).await;
    let g = group(s, "grp", owner).await;
    invite(s, g, "tok", owner, None).await;
    let m = join(s, g, "tok", moderator).await;
    s.set_member_role(g, m, GroupRole::Moderator, owner, t(2))
        .await
        .unwrap();
    join(s, g, "tok", p1).await;
    join(s, g, "tok", p2).await;
    Cast {
        g,
        owner,
        moderator,
        p1,
        p2,
    }
}

pub async fn group_round_trip_and_owner_membership(s: S) {
    let owner = user(&s, "dr.wang", Role::Doctor).await;
    let g = s
        .create_group(
            NewGroup {
                public_id: "abc123".into(),
                settings: settings("乳腺癌康复群"),
                owner,
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(g.member_count, 1);
    assert_eq!(g.settings, settings("乳腺癌康复群"));
    assert_eq!(s.group_by_public_id("abc123").await.unwrap(), g);
    assert_eq!(s.group_by_id(g.id).await.unwrap(), g);
    let m = s.membership(g.id, owner).await.unwrap().unwrap();
    assert_eq!((m.role, m.state), (GroupRole::Owner, MemberState::Active));
    assert_eq!(
        s.group_access("abc123", owner).await.unwrap(),
        (g.clone(), Some(m.clone()))
    );
    let stranger = user(&s, "stranger", Role::Patient).await;
    assert_eq!(
        s.group_access("abc123", stranger).await.unwrap(),
        (g.clone(), None)
    );
    assert!(
        s.group_access("nope", owner)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(m.account_role, Some(Role::Doctor));
    let dup = s
        .create_group(
            NewGroup {
                public_id: "abc123".into(),
                settings: settings("other"),
                owner,
            },
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(dup.conflict_code(), Some("group_exists"));
    assert!(
        s.group_by_public_id("nope")
            .await
            .unwrap_err()
            .is_not_found()
    );
    let mut changed = settings("新名字");
    changed.condition_code = None;
    changed.language = Language::En;
    let updated = s
        .update_group(g.id, changed.clone(), owner, t(5))
        .await
        .unwrap();
    assert_eq!(updated.settings, changed);
    assert_eq!(updated.updated_at, t(5));
    let log = s.moderation_log(g.id, None, 10).await.unwrap();
    assert_eq!(log[0].action, "update_settings");
}

pub async fn invite_join_uses_and_refusals_change_nothing(s: S) {
    let owner = user(&s, "dr.li", Role::Doctor).await;
    let p = user(&s, "patient", Role::Patient).await;
    let q = user(&s, "patient2", Role::Patient).await;
    let g = group(&s, "g1", owner).await;
    invite(&s, g, "one-use", owner, Some(1)).await;
    let inv = s.group_invite_by_token("one-use").await.unwrap();
    assert_eq!(inv.state(T0), InviteState::Usable);
    let (grp, m) = s.join_by_invite("one-use", p, 500, t(1)).await.unwrap();
    assert_eq!(grp.member_count, 2);
    assert_eq!((m.role, m.state), (GroupRole::Member, MemberState::Active));
    let used = s.group_invite_by_id(g, inv.id).await.unwrap();
    assert_eq!((used.uses, used.state(t(1))), (1, InviteState::UsedUp));
    // Every admission is in the moderation log, with the link it came by.
    let log = s.moderation_log(g, None, 10).await.unwrap();
    assert_eq!(log[0].action, "join_by_invite");
    assert_eq!(log[0].moderator, Some(p));
    assert_eq!(log[0].target_member_id, Some(m.id));
    assert_eq!(
        log[0].detail.as_deref(),
        Some(format!("invite {}", inv.id).as_str())
    );
    let err = s.join_by_invite("one-use", q, 500, t(2)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    assert_eq!(s.membership(g, q).await.unwrap(), None);
    // Joining twice is refused and does not use the invite.
    invite(&s, g, "multi", owner, None).await;
    let err = s.join_by_invite("multi", p, 500, t(2)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("already_member"));
    assert_eq!(s.group_invite_by_token("multi").await.unwrap().uses, 0);
    // Expired and revoked invites.
    let err = s
        .join_by_invite("multi", q, 500, t(7200))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    let multi = s.group_invite_by_token("multi").await.unwrap();
    let r = s.revoke_group_invite(g, multi.id, t(3)).await.unwrap();
    assert_eq!(r.state(t(3)), InviteState::Revoked);
    assert_eq!(
        s.revoke_group_invite(g, multi.id, t(9))
            .await
            .unwrap()
            .revoked_at,
        Some(t(3))
    );
    let err = s.join_by_invite("multi", q, 500, t(4)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    assert!(
        s.join_by_invite("unknown", q, 500, t(4))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(s.group_by_id(g).await.unwrap().member_count, 2);
    let listed = s.list_group_invites(g, None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.token.as_str()).collect::<Vec<_>>(),
        ["multi", "one-use"]
    );
    let other = group(&s, "g2", owner).await;
    assert!(
        s.revoke_group_invite(other, multi.id, t(3))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

pub async fn size_limit_is_enforced_atomically(s: S) {
    let owner = user(&s, "dr.zhao", Role::Doctor).await;
    let g = group(&s, "small", owner).await;
    invite(&s, g, "inv", owner, None).await;
    let mut joiners = Vec::new();
    for i in 0..6 {
        joiners.push(user(&s, &format!("pt{i}"), Role::Patient).await);
    }
    let mut tasks = Vec::new();
    for u in joiners.clone() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.join_by_invite("inv", u, 3, t(1)).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.conflict_code(), Some("group_full"), "{e:?}"),
        }
    }
    assert_eq!(ok, 2, "owner plus two joiners fill a group of three");
    let g = s.group_by_id(g).await.unwrap();
    assert_eq!(g.member_count, 3);
    assert_eq!(
        s.list_members(g.id, MemberState::Active, None, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(s.group_invite_by_token("inv").await.unwrap().uses, 2);
}

pub async fn join_requests_are_decided_and_logged(s: S) {
    let c = cast(&s).await;
    let r = user(&s, "requester", Role::Patient).await;
    let m = s
        .request_join(c.g, r, Some("我是新确诊的".into()), t(10))
        .await
        .unwrap();
    assert_eq!(m.state, MemberState::Pending);
    assert_eq!(m.request_message.as_deref(), Some("我是新确诊的"));
    let err = s.request_join(c.g, r, None, t(11)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("already_requested"));
    let err = s.request_join(c.g, c.p1, None, t(11)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("already_member"));
    let pending = s
        .list_members(c.g, MemberState::Pending, None, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    // Full group: approval is refused and the request stays pending.
    let err = s
        .decide_join(c.g, m.id, true, c.moderator, 4, t(12))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("group_full"));
    assert_eq!(
        s.member_by_id(c.g, m.id).await.unwrap().state,
        MemberState::Pending
    );
    let approved = s
        .decide_join(c.g, m.id, true, c.moderator, 500, t(12))
        .await
        .unwrap();
    assert_eq!(approved.state, MemberState::Active);
    assert_eq!(s.group_by_id(c.g).await.unwrap().member_count, 5);
    let err = s
        .decide_join(c.g, m.id, false, c.moderator, 500, t(13))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("no_pending_request"));
    let r2 = user(&s, "requester2", Role::Patient).await;
    let m2 = s.request_join(c.g, r2, None, t(14)).await.unwrap();
    let rejected = s
        .decide_join(c.g, m2.id, false, c.moderator, 500, t(15))
        .await
        .unwrap();
    assert_eq!(rejected.state, MemberState::Rejected);
    // A rejected requester may ask again.
    assert_eq!(
        s.request_join(c.g, r2, None, t(16)).await.unwrap().state,
        MemberState::Pending
    );
    let log = s.moderation_log(c.g, None, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[..2], ["reject_join", "approve_join"]);
    assert_eq!(log[1].target_member_id, Some(m.id));
    assert_eq!(log[1].moderator, Some(c.moderator));
    assert_eq!(log[1].target_name.as_deref(), Some("requester 显示"));
    assert!(
        s.decide_join(c.g, 99999, true, c.moderator, 500, t(1))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

pub async fn leave_remove_ban_unban(s: S) {
    let c = cast(&s).await;
    assert_eq!(s.group_by_id(c.g).await.unwrap().member_count, 4);
    let err = s.leave_group(c.g, c.owner, t(5)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("owner_cannot_leave"));
    let left = s.leave_group(c.g, c.p1, t(5)).await.unwrap();
    assert_eq!(left.state, MemberState::Left);
    assert_eq!(
        s.leave_group(c.g, c.p1, t(6))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("not_a_member")
    );
    assert_eq!(s.group_by_id(c.g).await.unwrap().member_count, 3);
    // Who left may come back by invite.
    join(&s, c.g, "tok", c.p1).await;
    let p2 = s.membership(c.g, c.p2).await.unwrap().unwrap();
    let removed = s
        .remove_member(c.g, p2.id, false, Some("spam".into()), c.moderator, t(7))
        .await
        .unwrap();
    assert_eq!(removed.state, MemberState::Removed);
    let banned = s
        .remove_member(c.g, p2.id, true, Some("again".into()), c.moderator, t(8))
        .await
        .unwrap();
    assert_eq!(banned.state, MemberState::Banned);
    assert_eq!(s.group_by_id(c.g).await.unwrap().member_count, 3);
    let err = s.join_by_invite("tok", c.p2, 500, t(9)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("banned"));
    let err = s.request_join(c.g, c.p2, None, t(9)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("banned"));
    assert_eq!(
        s.remove_member(c.g, p2.id, true, None, c.moderator, t(9))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("already_banned")
    );
    let owner_m = s.membership(c.g, c.owner).await.unwrap().unwrap();
    assert_eq!(
        s.remove_member(c.g, owner_m.id, true, None, c.moderator, t(9))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("cannot_remove_owner")
    );
    let unbanned = s
        .unban_member(c.g, p2.id, c.moderator, t(10))
        .await
        .unwrap();
    assert_eq!(unbanned.state, MemberState::Removed);
    assert_eq!(
        s.unban_member(c.g, p2.id, c.moderator, t(10))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("not_banned")
    );
    join(&s, c.g, "tok", c.p2).await;
    let log = s.moderation_log(c.g, None, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions[..4],
        ["join_by_invite", "unban", "ban", "remove_member"],
        "coming back by the link is logged too"
    );
    assert_eq!(log[2].detail.as_deref(), Some("again"));
}

pub async fn roles_are_appointed_and_logged(s: S) {
    let c = cast(&s).await;
    let dr = user(&s, "dr.second", Role::Doctor).await;
    let dm = join(&s, c.g, "tok", dr).await;
    let appointed = s
        .set_member_role(c.g, dm, GroupRole::Doctor, c.owner, t(5))
        .await
        .unwrap();
    assert_eq!(appointed.role, GroupRole::Doctor);
    let p1 = s.membership(c.g, c.p1).await.unwrap().unwrap();
    assert_eq!(
        s.set_member_role(c.g, p1.id, GroupRole::Doctor, c.owner, t(6))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("not_a_doctor")
    );
    assert_eq!(
        s.set_member_role(c.g, p1.id, GroupRole::Owner, c.owner, t(6))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("cannot_change_owner")
    );
    let modm = s.membership(c.g, c.moderator).await.unwrap().unwrap();
    s.set_member_role(c.g, modm.id, GroupRole::Member, c.owner, t(7))
        .await
        .unwrap();
    let log = s.moderation_log(c.g, None, 10).await.unwrap();
    let actions: Vec<&str> = log
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| *a != "join_by_invite")
        .collect();
    assert_eq!(
        actions,
        ["dismiss_moderator", "appoint_doctor", "appoint_moderator"]
    );
    assert_eq!(
        log.iter().filter(|e| e.action == "join_by_invite").count(),
        4,
        "each of the four who joined by the link"
    );
    assert_eq!(log[0].detail.as_deref(), Some("moderator -> member"));
    // Paging the log: ids below the cursor.
    let rest = s.moderation_log(c.g, Some(log[0].id), 10).await.unwrap();
    assert_eq!(rest.len(), log.len() - 1);
    assert_eq!(rest[0].id, log[1].id);
    let page = s.moderation_log(c.g, Some(log[0].id), 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        [log[1].id, log[2].id]
    );
}

pub async fn feed_orders_pinned_first_and_pages_without_gaps(s: S) {
    let c = cast(&s).await;
    for i in 0..7 {
        s.create_post(post(
            c.g,
            &format!("q{i}"),
            PostKind::Question,
            c.p1,
            10 + i,
        ))
        .await
        .unwrap();
    }
    let mut pinned = post(c.g, "ann", PostKind::Announcement, c.owner, 5);
    pinned.pinned = true;
    s.create_post(pinned).await.unwrap();
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .feed(c.g, Some(c.p2), FeedSort::Newest, after, 3, t(100))
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some(FeedPosition {
            pinned: last.pinned,
            key: last.publish_at.as_millis(),
            id: last.id,
        });
        ids.extend(page.into_iter().map(|p| p.public_id));
    }
    assert_eq!(
        ids,
        ["ann", "q6", "q5", "q4", "q3", "q2", "q1", "q0"],
        "pinned first, then newest, no gaps or repeats"
    );
    // Non-members cannot post; replies do not show in the feed.
    let outsider = user(&s, "outsider", Role::Patient).await;
    let err = s
        .create_post(post(c.g, "x", PostKind::Question, outsider, 1))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_a_member"));
    let q0 = s.post_by_public_id(c.g, "q0", None).await.unwrap();
    s.create_post(reply(c.g, "r", q0.id, c.p2, 50))
        .await
        .unwrap();
    let all = s
        .feed(c.g, None, FeedSort::Newest, None, 50, t(100))
        .await
        .unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(all.last().unwrap().reply_count, 1);
}

pub async fn scheduled_posts_appear_on_time(s: S) {
    let c = cast(&s).await;
    let mut ann = post(c.g, "later", PostKind::Announcement, c.owner, 10);
    ann.publish_at = t(3600);
    s.create_post(ann).await.unwrap();
    s.create_post(post(c.g, "now", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    let before = s
        .feed(c.g, None, FeedSort::Newest, None, 50, t(60))
        .await
        .unwrap();
    assert_eq!(before.len(), 1);
    let scheduled = s.scheduled_posts(c.g, None, 10, t(60)).await.unwrap();
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].public_id, "later");
    let after = s
        .feed(c.g, None, FeedSort::Newest, None, 50, t(3600))
        .await
        .unwrap();
    assert_eq!(after[0].public_id, "later");
    assert!(
        s.scheduled_posts(c.g, None, 10, t(3600))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn replies_edits_and_history(s: S) {
    let c = cast(&s).await;
    let q = s
        .create_post(post(c.g, "q", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    for i in 0..5 {
        s.create_post(reply(c.g, &format!("r{i}"), q.id, c.p2, 20 + i))
            .await
            .unwrap();
    }
    let page1 = s
        .replies(q.id, None, ReplySort::Oldest, None, 3)
        .await
        .unwrap();
    let last = page1.last().unwrap();
    let page2 = s
        .replies(q.id, None, ReplySort::Oldest, Some((last.id, last.id)), 3)
        .await
        .unwrap();
    let ids: Vec<String> = page1
        .iter()
        .chain(&page2)
        .map(|p| p.public_id.clone())
        .collect();
    assert_eq!(ids, ["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(page1[0].thread_public_id.as_deref(), Some("q"));
    // A reply to a reply, or to another group's post, is refused.
    let err = s
        .create_post(reply(c.g, "rr", page1[0].id, c.p1, 30))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    // Edits keep the history; only the author edits.
    let err = s
        .edit_post(q.id, c.p2, None, "hijack".into(), t(40))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_author"));
    let edited = s
        .edit_post(q.id, c.p1, Some("新标题".into()), "新内容".into(), t(41))
        .await
        .unwrap();
    assert_eq!(edited.body, "新内容");
    assert_eq!(edited.edited_at, Some(t(41)));
    let history = s.post_history(q.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "body of q");
    assert_eq!(history[0].reason, "edit");
}

pub async fn deletes_leave_tombstones(s: S) {
    let c = cast(&s).await;
    let q = s
        .create_post(post(c.g, "q", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    let r = s
        .create_post(reply(c.g, "r", q.id, c.p2, 11))
        .await
        .unwrap();
    s.edit_post(q.id, c.p1, None, "second".into(), t(12))
        .await
        .unwrap();
    let err = s.delete_post(q.id, c.p2, None, t(13)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_author"));
    let gone = s.delete_post(q.id, c.p1, None, t(13)).await.unwrap();
    assert_eq!(gone.deleted_by, Some(DeletedBy::Author));
    assert_eq!(gone.body, "");
    assert!(s.post_history(q.id).await.unwrap().is_empty());
    // The thread stays readable: the tombstone is in the feed, the reply in the thread.
    let feed = s
        .feed(c.g, None, FeedSort::Newest, None, 50, t(20))
        .await
        .unwrap();
    assert_eq!(feed.len(), 1);
    assert!(feed[0].deleted_at.is_some());
    let replies = s
        .replies(q.id, None, ReplySort::Oldest, None, 10)
        .await
        .unwrap();
    assert_eq!(replies[0].body, "body of r");
    let err = s
        .create_post(reply(c.g, "r2", q.id, c.p2, 14))
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("thread_deleted"));
    assert_eq!(
        s.delete_post(q.id, c.p1, None, t(15))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("post_deleted")
    );
    // A moderator's removal keeps the text for moderators and is logged.
    let removed = s
        .delete_post(r.id, c.moderator, Some(Some("off topic".into())), t(16))
        .await
        .unwrap();
    assert_eq!(removed.deleted_by, Some(DeletedBy::Moderator));
    let history = s.post_history(r.id).await.unwrap();
    assert_eq!(
        (history[0].body.as_str(), history[0].reason.as_str()),
        ("body of r", "removed")
    );
    let log = s.moderation_log(c.g, None, 1).await.unwrap();
    assert_eq!(log[0].action, "remove_post");
    assert_eq!(log[0].target_post_public_id.as_deref(), Some("r"));
    assert_eq!(log[0].detail.as_deref(), Some("off topic"));
    // A deleted post without replies leaves the feed.
    let lone = s
        .create_post(post(c.g, "lone", PostKind::Question, c.p1, 17))
        .await
        .unwrap();
    s.delete_post(lone.id, c.p1, None, t(18)).await.unwrap();
    assert_eq!(
        s.feed(c.g, None, FeedSort::Newest, None, 50, t(20))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn helpful_marks_and_sorting(s: S) {
    let c = cast(&s).await;
    let q = s
        .create_post(post(c.g, "q", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    let a = s
        .create_post(reply(c.g, "a", q.id, c.p2, 11))
        .await
        .unwrap();
    let b = s
        .create_post(reply(c.g, "b", q.id, c.owner, 12))
        .await
        .unwrap();
    assert_eq!(
        s.set_helpful(a.id, c.p2, true, t(13))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("own_post")
    );
    s.set_helpful(b.id, c.p1, true, t(13)).await.unwrap();
    let twice = s.set_helpful(b.id, c.p1, true, t(14)).await.unwrap();
    assert_eq!(twice.helpful_count, 1, "marking twice counts once");
    assert!(twice.marked_helpful);
    s.set_helpful(b.id, c.p2, true, t(14)).await.unwrap();
    s.set_helpful(a.id, c.p1, true, t(14)).await.unwrap();
    let sorted = s
        .replies(q.id, Some(c.p1), ReplySort::Helpful, None, 1)
        .await
        .unwrap();
    assert_eq!(sorted[0].public_id, "b");
    assert_eq!(sorted[0].helpful_count, 2);
    let next = s
        .replies(q.id, None, ReplySort::Helpful, Some((2, b.id)), 5)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].public_id, "a");
    let un = s.set_helpful(b.id, c.p1, false, t(15)).await.unwrap();
    assert_eq!(un.helpful_count, 1);
    assert!(!un.marked_helpful);
    // Feed sorted by helpful marks.
    let q2 = s
        .create_post(post(c.g, "q2", PostKind::Question, c.p2, 20))
        .await
        .unwrap();
    s.set_helpful(q.id, c.p2, true, t(21)).await.unwrap();
    let feed = s
        .feed(c.g, None, FeedSort::Helpful, None, 10, t(30))
        .await
        .unwrap();
    assert_eq!(feed[0].public_id, "q");
    assert_eq!(feed[1].id, q2.id);
}

pub async fn accepted_answers_and_the_doctor_queue(s: S) {
    let c = cast(&s).await;
    let q1 = s
        .create_post(post(c.g, "q1", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    let q2 = s
        .create_post(post(c.g, "q2", PostKind::Question, c.p2, 20))
        .await
        .unwrap();
    let q3 = s
        .create_post(post(c.g, "q3", PostKind::Question, c.p2, 30))
        .await
        .unwrap();
    s.create_post(post(c.g, "ann", PostKind::Announcement, c.owner, 5))
        .await
        .unwrap();
    // Another group the doctor does not serve.
    let other_owner = user(&s, "dr.other", Role::Doctor).await;
    let g2 = group(&s, "g2", other_owner).await;
    s.create_post(post(g2, "elsewhere", PostKind::Question, other_owner, 1))
        .await
        .unwrap();
    let queue = s.doctor_queue(c.owner, None, 10, t(100)).await.unwrap();
    let ids: Vec<&str> = queue.iter().map(|i| i.post.public_id.as_str()).collect();
    assert_eq!(ids, ["q1", "q2", "q3"], "oldest first, only served groups");
    assert_eq!(queue[0].group_public_id, "grp");
    let page2 = s
        .doctor_queue(
            c.owner,
            Some((queue[0].post.publish_at.as_millis(), queue[0].post.id)),
            10,
            t(100),
        )
        .await
        .unwrap();
    assert_eq!(page2.len(), 2);
    // A patient's reply does not answer; a doctor's does.
    s.create_post(reply(c.g, "p-reply", q1.id, c.p2, 40))
        .await
        .unwrap();
    assert_eq!(
        s.doctor_queue(c.owner, None, 10, t(100))
            .await
            .unwrap()
            .len(),
        3
    );
    s.create_post(reply(c.g, "dr-reply", q1.id, c.owner, 41))
        .await
        .unwrap();
    // An accepted answer closes a question too.
    let r = s
        .create_post(reply(c.g, "r2", q2.id, c.p1, 42))
        .await
        .unwrap();
    let accepted = s.accept_answer(q2.id, Some(r.id)).await.unwrap();
    assert_eq!(accepted.accepted_reply_public_id.as_deref(), Some("r2"));
    let left: Vec<String> = s
        .doctor_queue(c.owner, None, 10, t(100))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.post.public_id)
        .collect();
    assert_eq!(left, ["q3"]);
    let err = s.accept_answer(q3.id, Some(r.id)).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_in_thread"));
    let err = s.accept_answer(r.id, None).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_a_question"));
    assert_eq!(
        s.set_pinned(r.id, true).await.unwrap_err().conflict_code(),
        Some("not_top_level")
    );
    assert!(s.set_pinned(q3.id, true).await.unwrap().pinned);
    // A patient serves no queue.
    assert!(
        s.doctor_queue(c.p1, None, 10, t(100))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn search_finds_chinese_and_english(s: S) {
    let c = cast(&s).await;
    let mut p = post(c.g, "zh", PostKind::Question, c.p1, 10);
    p.body = "化疗后白细胞低怎么办？".into();
    s.create_post(p).await.unwrap();
    let mut p = post(c.g, "en", PostKind::Question, c.p2, 11);
    p.body = "Is Tamoxifen safe with 50% less dose_x?".into();
    s.create_post(p).await.unwrap();
    let hits = |q: &'static str| {
        let s = s.clone();
        async move {
            s.search_posts(c.g, None, q, None, 10, t(100))
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.public_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(hits("白细胞").await, ["zh"]);
    assert_eq!(hits("tamoxifen").await, ["en"]);
    assert_eq!(hits("50%").await, ["en"]);
    assert!(hits("5_%").await.is_empty(), "wildcards are literal");
    assert_eq!(hits("%").await, ["en"]);
    assert_eq!(hits("title").await.len(), 2, "titles are searched");
    // Another group's posts are never found.
    let g2 = group(&s, "g2", c.owner).await;
    let mut p = post(g2, "other", PostKind::Announcement, c.owner, 12);
    p.body = "白细胞".into();
    s.create_post(p).await.unwrap();
    assert_eq!(hits("白细胞").await, ["zh"]);
}

pub async fn attachments_count_against_the_quota(s: S) {
    let c = cast(&s).await;
    let new = |id: &str, size: i64, by: UserId| NewAttachment {
        public_id: id.to_owned(),
        group_id: c.g,
        uploaded_by: by,
        content_type: "image/png".into(),
        file_name: "scan.png".into(),
        size_bytes: size,
        sha256: "ab".repeat(32),
        width: Some(10),
        height: Some(20),
        created_at: t(1),
    };
    let a = s.add_attachment(new("a1", 600, c.p1), 1000).await.unwrap();
    assert_eq!(a.width, Some(10));
    let err = s
        .add_attachment(new("a2", 500, c.p1), 1000)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("group_storage_full"));
    assert_eq!(s.group_by_id(c.g).await.unwrap().storage_bytes, 600);
    s.add_attachment(new("a3", 400, c.p2), 1000).await.unwrap();
    assert_eq!(s.attachment_by_public_id(c.g, "a1").await.unwrap(), a);
    // Attach to a post: only one's own, unused upload.
    let mut p = post(c.g, "with-file", PostKind::Question, c.p1, 5);
    p.attachments = vec!["a3".into()];
    let err = s.create_post(p).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("attachment_unusable"));
    assert!(
        s.post_by_public_id(c.g, "with-file", None)
            .await
            .unwrap_err()
            .is_not_found(),
        "a refused post is not written"
    );
    let mut p = post(c.g, "with-file", PostKind::Question, c.p1, 5);
    p.attachments = vec!["a1".into()];
    let created = s.create_post(p).await.unwrap();
    assert_eq!(created.attachments.len(), 1);
    assert_eq!(created.attachments[0].public_id, "a1");
    let feed = s
        .feed(c.g, None, FeedSort::Newest, None, 10, t(10))
        .await
        .unwrap();
    assert_eq!(feed[0].attachments[0].public_id, "a1");
    let mut p = post(c.g, "again", PostKind::Question, c.p1, 6);
    p.attachments = vec!["a1".into()];
    assert_eq!(
        s.create_post(p).await.unwrap_err().conflict_code(),
        Some("attachment_unusable")
    );
}

pub async fn library_folders_and_items(s: S) {
    let c = cast(&s).await;
    let f = s
        .create_folder(c.g, "术后护理".into(), c.owner, t(1))
        .await
        .unwrap();
    assert_eq!(f.item_count, 0);
    assert_eq!(
        s.create_folder(c.g, "术后护理".into(), c.owner, t(1))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("folder_exists")
    );
    let p = s
        .create_post(post(c.g, "guide", PostKind::Announcement, c.owner, 2))
        .await
        .unwrap();
    let a = s
        .add_attachment(
            NewAttachment {
                public_id: "pdf1".into(),
                group_id: c.g,
                uploaded_by: c.owner,
                content_type: "application/pdf".into(),
                file_name: "Diet guide.pdf".into(),
                size_bytes: 10,
                sha256: "cd".repeat(32),
                width: None,
                height: None,
                created_at: t(3),
            },
            1 << 30,
        )
        .await
        .unwrap();
    let item = s
        .add_library_item(NewLibraryItem {
            group_id: c.g,
            folder_id: f.id,
            post_id: Some(p.id),
            attachment_id: None,
            title: "出院指导".into(),
            added_by: c.moderator,
            added_at: t(4),
        })
        .await
        .unwrap();
    assert_eq!(item.post_public_id.as_deref(), Some("guide"));
    let file_item = s
        .add_library_item(NewLibraryItem {
            group_id: c.g,
            folder_id: f.id,
            post_id: None,
            attachment_id: Some(a.id),
            title: "饮食".into(),
            added_by: c.moderator,
            added_at: t(5),
        })
        .await
        .unwrap();
    assert_eq!(file_item.attachment.as_ref().unwrap().public_id, "pdf1");
    let dup = s
        .add_library_item(NewLibraryItem {
            group_id: c.g,
            folder_id: f.id,
            post_id: Some(p.id),
            attachment_id: None,
            title: "again".into(),
            added_by: c.moderator,
            added_at: t(6),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.conflict_code(), Some("already_in_folder"));
    // A post of another group cannot be filed here.
    let g2 = group(&s, "g2", c.owner).await;
    let foreign = s
        .create_post(post(g2, "foreign", PostKind::Announcement, c.owner, 2))
        .await
        .unwrap();
    assert!(
        s.add_library_item(NewLibraryItem {
            group_id: c.g,
            folder_id: f.id,
            post_id: Some(foreign.id),
            attachment_id: None,
            title: "x".into(),
            added_by: c.owner,
            added_at: t(7),
        })
        .await
        .unwrap_err()
        .is_not_found()
    );
    let folders = s.list_folders(c.g).await.unwrap();
    assert_eq!(folders[0].item_count, 2);
    let items = s.library_items(c.g, Some(f.id), None, 1).await.unwrap();
    assert_eq!(items[0].title, "饮食", "newest first");
    let rest = s
        .library_items(c.g, None, Some(items[0].id), 10)
        .await
        .unwrap();
    assert_eq!(rest[0].title, "出院指导");
    let found = s.search_library(c.g, "diet", None, 10).await.unwrap();
    assert_eq!(found.len(), 1, "file names are searched");
    assert_eq!(
        s.search_library(c.g, "术后", None, 10).await.unwrap().len(),
        2,
        "folder names are searched"
    );
    s.remove_library_item(c.g, item.id).await.unwrap();
    assert!(
        s.remove_library_item(c.g, item.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    s.delete_folder(c.g, f.id).await.unwrap();
    assert!(s.list_folders(c.g).await.unwrap().is_empty());
    // The file itself stays with the group.
    assert!(s.attachment_by_public_id(c.g, "pdf1").await.is_ok());
}

pub async fn reports_are_resolved_by_removal_or_dismissal(s: S) {
    let c = cast(&s).await;
    let bad = s
        .create_post(post(c.g, "bad", PostKind::Question, c.p1, 1))
        .await
        .unwrap();
    let meh = s
        .create_post(post(c.g, "meh", PostKind::Question, c.p1, 2))
        .await
        .unwrap();
    let r1 = s
        .report_post(c.g, bad.id, c.p2, "广告".into(), t(3))
        .await
        .unwrap();
    assert_eq!(r1.post_public_id, "bad");
    assert_eq!(
        s.report_post(c.g, bad.id, c.p2, "again".into(), t(4))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("already_reported")
    );
    let r2 = s
        .report_post(c.g, meh.id, c.p2, "not sure".into(), t(5))
        .await
        .unwrap();
    assert_eq!(s.list_reports(c.g, true, None, 10).await.unwrap().len(), 2);
    s.delete_post(bad.id, c.moderator, Some(None), t(6))
        .await
        .unwrap();
    let dismissed = s
        .dismiss_report(c.g, r2.id, c.moderator, t(7))
        .await
        .unwrap();
    assert_eq!(dismissed.resolution.as_deref(), Some("dismissed"));
    assert_eq!(
        s.dismiss_report(c.g, r2.id, c.moderator, t(8))
            .await
            .unwrap_err()
            .conflict_code(),
        Some("report_resolved")
    );
    assert!(
        s.list_reports(c.g, true, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let all = s.list_reports(c.g, false, None, 10).await.unwrap();
    assert_eq!(all[0].resolution.as_deref(), Some("removed"));
    let log = s.moderation_log(c.g, None, 2).await.unwrap();
    assert_eq!(log[0].action, "dismiss_report");
    assert_eq!(log[1].action, "remove_post");
    let other = group(&s, "g2", c.owner).await;
    assert!(
        s.dismiss_report(other, r1.id, c.owner, t(9))
            .await
            .unwrap_err()
            .is_not_found()
    );
}

pub async fn import_posts_in_bulk(s: S) {
    let c = cast(&s).await;
    let posts: Vec<ImportedPost> = (0..2500)
        .map(|i| ImportedPost {
            public_id: format!("bulk-{i}"),
            kind: PostKind::Question,
            title: None,
            body: format!("问题 {i}"),
            publish_at: t(i),
            helpful_count: u32::try_from(i % 7).unwrap(),
        })
        .collect();
    assert_eq!(s.import_posts(c.g, c.p1, posts).await.unwrap(), 2500);
    let feed = s
        .feed(c.g, None, FeedSort::Newest, None, 50, t(10_000))
        .await
        .unwrap();
    assert_eq!(feed.len(), 50);
    assert_eq!(feed[0].public_id, "bulk-2499");
    assert_eq!(feed[0].author.name, "p1 显示");
    assert_eq!(feed[0].author.role, Some(GroupRole::Member));
}

pub async fn groups_of_user_and_all_groups(s: S) {
    let c = cast(&s).await;
    let g2 = group(&s, "g2", c.owner).await;
    let mine = s.groups_of_user(c.owner, None, 10).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[1].1.role, GroupRole::Owner);
    let p1 = s.groups_of_user(c.p1, None, 10).await.unwrap();
    assert_eq!(p1.len(), 1);
    assert_eq!(p1[0].0.id, c.g);
    s.leave_group(c.g, c.p1, t(5)).await.unwrap();
    assert!(s.groups_of_user(c.p1, None, 10).await.unwrap().is_empty());
    let all = s.list_groups(None, 1).await.unwrap();
    assert_eq!(all[0].id, c.g);
    assert_eq!(s.list_groups(Some(c.g), 10).await.unwrap()[0].id, g2);
    let _ = StoreError::NotFound("x");
}

pub async fn post_views_are_counted_once_per_account(s: S) {
    let c = cast(&s).await;
    let a = s
        .create_post(post(c.g, "ann", PostKind::Announcement, c.owner, 5))
        .await
        .unwrap();
    let b = s
        .create_post(post(c.g, "ann2", PostKind::Announcement, c.owner, 6))
        .await
        .unwrap();
    assert_eq!(s.post_view_counts(&[a.id, b.id]).await.unwrap(), vec![]);
    s.record_post_views(&[a.id, b.id], c.p1, t(10))
        .await
        .unwrap();
    // Seeing it again does not count twice.
    s.record_post_views(&[a.id], c.p1, t(20)).await.unwrap();
    s.record_post_views(&[a.id], c.p2, t(30)).await.unwrap();
    s.record_post_views(&[], c.p2, t(30)).await.unwrap();
    assert_eq!(
        s.post_view_counts(&[a.id, b.id]).await.unwrap(),
        vec![(a.id, 2), (b.id, 1)]
    );
    assert_eq!(s.post_view_counts(&[]).await.unwrap(), vec![]);
}

pub async fn members_choose_their_name_in_each_group(s: S) {
    let c = cast(&s).await;
    let other = group(&s, "other", c.owner).await;
    invite(&s, other, "tok2", c.owner, None).await;
    join(&s, other, "tok2", c.p1).await;
    let q = s
        .create_post(post(c.g, "q1", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    s.create_post(reply(c.g, "r1", q.id, c.p1, 11))
        .await
        .unwrap();
    s.create_post(post(other, "q2", PostKind::Question, c.p1, 12))
        .await
        .unwrap();

    let m = s
        .set_member_name(c.g, c.p1, "康复中的小王".into())
        .await
        .unwrap();
    assert_eq!(m.display_name, "康复中的小王");
    assert_eq!(m.state, MemberState::Active);
    assert_eq!(
        m.updated_at,
        t(1),
        "a new name is not a change of membership state"
    );
    let again = s.membership(c.g, c.p1).await.unwrap().unwrap();
    assert_eq!(again.display_name, "康复中的小王");
    assert_eq!(
        s.group_access("grp", c.p1)
            .await
            .unwrap()
            .1
            .unwrap()
            .display_name,
        "康复中的小王"
    );
    let listed = s
        .list_members(c.g, MemberState::Active, None, 10)
        .await
        .unwrap();
    assert!(listed.iter().any(|m| m.display_name == "康复中的小王"));
    // Posts show the name of the group they are in: the feed (read as one JSON row), a single
    // post, a thread's replies and search.
    let feed = s
        .feed(c.g, Some(c.p2), FeedSort::Newest, None, 10, t(100))
        .await
        .unwrap();
    assert_eq!(feed[0].author.name, "康复中的小王");
    assert_eq!(
        s.post_by_public_id(c.g, "q1", None)
            .await
            .unwrap()
            .author
            .name,
        "康复中的小王"
    );
    let replies = s
        .replies(q.id, None, ReplySort::Oldest, None, 10)
        .await
        .unwrap();
    assert_eq!(replies[0].author.name, "康复中的小王");
    let found = s
        .search_posts(c.g, None, "q1", None, 10, t(100))
        .await
        .unwrap();
    assert_eq!(found[0].author.name, "康复中的小王");
    // The other group still shows the account's name.
    let other_feed = s
        .feed(other, None, FeedSort::Newest, None, 10, t(100))
        .await
        .unwrap();
    assert_eq!(other_feed[0].author.name, "p1 显示");
    assert_eq!(
        s.membership(other, c.p1)
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "p1 显示"
    );
    // The moderation log names the member as the group knows them.
    s.remove_member(c.g, m.id, false, None, c.moderator, t(20))
        .await
        .unwrap();
    let log = s.moderation_log(c.g, None, 1).await.unwrap();
    assert_eq!(log[0].target_name.as_deref(), Some("康复中的小王"));
    // Who is no longer a member (or never was) cannot choose a name there; nothing changes.
    let err = s.set_member_name(c.g, c.p1, "x".into()).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_a_member"));
    let stranger = user(&s, "stranger", Role::Patient).await;
    let err = s
        .set_member_name(c.g, stranger, "x".into())
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_a_member"));
    assert_eq!(
        s.membership(c.g, c.p1).await.unwrap().unwrap().display_name,
        "康复中的小王"
    );

    // In a group mirrored from another node the name is the pseudonym's, changed together; a
    // member still waiting for the host's answer may already change it.
    let mirror = s
        .upsert_mirror_group(
            "https://b.example/groups/g1",
            "mirror1",
            settings("远方的群"),
            t(30),
        )
        .await
        .unwrap();
    let pending = s
        .join_remote_group(
            c.p2,
            mirror.id,
            Some(Pseudonym {
                id: 0,
                public_id: "pseudo1".into(),
                user_id: c.p2,
                group_id: mirror.id,
                display_name: "旧名字".into(),
                created_at: t(30),
            }),
            Vec::new(),
            t(30),
        )
        .await
        .unwrap();
    assert_eq!(pending.state, MemberState::Pending);
    assert_eq!(pending.display_name, "旧名字");
    let renamed = s
        .set_member_name(mirror.id, c.p2, "新名字".into())
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "新名字");
    let p = s.pseudonym_of(c.p2, mirror.id).await.unwrap().unwrap();
    assert_eq!(
        (p.public_id.as_str(), p.display_name.as_str()),
        ("pseudo1", "新名字")
    );
    // Other pseudonyms of the account keep their names.
    assert_eq!(
        s.membership(c.g, c.p2).await.unwrap().unwrap().display_name,
        "p2 显示"
    );
}

fn queued(peer: &str, what: &str) -> Vec<NewOutboxEntry> {
    vec![NewOutboxEntry {
        peer: peer.to_owned(),
        inbox_url: format!("https://{peer}/inbox"),
        activity_id: format!("https://grp.example/activities/{what}"),
        payload: format!(r#"{{"intent":"{what}"}}"#),
        intent: true,
    }]
}

/// What is pending for `peer`, by activity id.
async fn pending(s: &S, peer: &str) -> Vec<String> {
    s.pending_entries(peer, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.activity_id.rsplit('/').next().unwrap().to_owned())
        .collect()
}

/// Every change that other nodes must hear about takes its outbox rows with it: queued when the
/// change is made, and not at all when the store refuses the change.
pub async fn changes_queue_what_they_tell_other_nodes_in_their_transaction(s: S) {
    let c = cast(&s).await;
    let peer = "member.example";
    let q = s
        .create_post(post(c.g, "q", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    let r = s
        .create_post(reply(c.g, "r", q.id, c.p2, 11))
        .await
        .unwrap();
    let reply_id = s.post_by_public_id(c.g, "r", None).await.unwrap().id;
    assert_eq!(r.id, reply_id);

    // Each change, then a refused one that must queue nothing.
    s.set_pinned_with(q.id, true, t(20), queued(peer, "pin"))
        .await
        .unwrap();
    assert!(
        s.set_pinned_with(r.id, true, t(20), queued(peer, "pin-reply"))
            .await
            .is_err()
    );
    s.accept_answer_with(q.id, Some(r.id), t(21), queued(peer, "accept"))
        .await
        .unwrap();
    assert!(
        s.accept_answer_with(r.id, None, t(21), queued(peer, "accept-reply"))
            .await
            .is_err()
    );
    let folder = s
        .create_folder_with(
            c.g,
            "康复".into(),
            Acting::Account(c.owner),
            t(22),
            queued(peer, "folder"),
        )
        .await
        .unwrap();
    assert!(
        s.create_folder_with(
            c.g,
            "康复".into(),
            Acting::Account(c.owner),
            t(22),
            queued(peer, "folder-again")
        )
        .await
        .is_err()
    );
    let item = s
        .add_library_item_with(
            NewLibraryItem {
                group_id: c.g,
                folder_id: folder.id,
                post_id: Some(q.id),
                attachment_id: None,
                title: "腿肿".into(),
                added_by: c.owner,
                added_at: t(23),
            },
            Acting::Account(c.owner),
            queued(peer, "item"),
        )
        .await
        .unwrap();
    s.remove_library_item_with(c.g, item.id, t(24), queued(peer, "item-removed"))
        .await
        .unwrap();
    assert!(
        s.remove_library_item_with(c.g, item.id, t(24), queued(peer, "item-gone"))
            .await
            .is_err()
    );
    s.delete_folder_with(c.g, folder.id, t(25), queued(peer, "folder-deleted"))
        .await
        .unwrap();
    let m1 = s.membership(c.g, c.p1).await.unwrap().unwrap();
    s.remove_member_with(
        c.g,
        m1.id,
        true,
        Some("广告".into()),
        Acting::Account(c.moderator),
        t(26),
        queued(peer, "ban"),
    )
    .await
    .unwrap();
    assert!(
        s.remove_member_with(
            c.g,
            m1.id,
            true,
            None,
            Acting::Account(c.moderator),
            t(26),
            queued(peer, "ban-again")
        )
        .await
        .is_err()
    );
    s.unban_member_with(
        c.g,
        m1.id,
        Acting::Account(c.moderator),
        t(27),
        queued(peer, "unban"),
    )
    .await
    .unwrap();
    s.leave_group_with(c.g, c.p2, t(28), queued(peer, "left"))
        .await
        .unwrap();
    assert!(
        s.leave_group_with(c.g, c.p2, t(28), queued(peer, "left-again"))
            .await
            .is_err()
    );
    let removed = s
        .remove_post_with(
            q.id,
            Acting::Account(c.moderator),
            Some("spam".into()),
            t(29),
            queued(peer, "removed"),
        )
        .await
        .unwrap();
    assert_eq!(removed.deleted_by, Some(DeletedBy::Moderator));
    assert!(
        s.remove_post_with(
            q.id,
            Acting::Account(c.moderator),
            None,
            t(29),
            queued(peer, "removed-again")
        )
        .await
        .is_err()
    );
    assert_eq!(
        pending(&s, peer).await,
        [
            "pin",
            "accept",
            "folder",
            "item",
            "item-removed",
            "folder-deleted",
            "ban",
            "unban",
            "left",
            "removed"
        ],
        "every change queued its rows, in order, and no refused change queued any"
    );
}

/// A moderator of another node is logged by their membership; a report from another node is by
/// its actor; a request sent to a host is answered once, by that group only.
pub async fn group_requests_are_recorded_with_their_action_and_answered_once(s: S) {
    let c = cast(&s).await;
    let other = group(&s, "other", c.owner).await;
    let q = s
        .create_post(post(c.g, "q", PostKind::Question, c.p1, 10))
        .await
        .unwrap();
    let moderator = s.membership(c.g, c.moderator).await.unwrap().unwrap();
    s.remove_post_with(q.id, Acting::Member(moderator.id), None, t(11), Vec::new())
        .await
        .unwrap();
    let log = s.moderation_log(c.g, None, 10).await.unwrap();
    let entry = log.iter().find(|e| e.action == "remove_post").unwrap();
    assert_eq!(entry.moderator, None, "no account of this node");
    assert_eq!(
        entry.moderator_name.as_deref(),
        Some("nurse 显示"),
        "named by the membership"
    );

    let r = s
        .create_post(post(c.g, "r", PostKind::Question, c.p1, 12))
        .await
        .unwrap();
    let remote = "https://a.example/pseudonyms/x";
    let report = s
        .report_post_with(
            c.g,
            r.id,
            Reporter::Remote(remote.into()),
            "广告".into(),
            t(13),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.reporter, report.reporter_actor.as_deref()),
        (None, Some(remote))
    );
    assert_eq!(report.forwarded_at, None);
    assert!(
        s.report_post_with(
            c.g,
            r.id,
            Reporter::Remote(remote.into()),
            "again".into(),
            t(14),
            Vec::new()
        )
        .await
        .is_err(),
        "one open report per reporter"
    );
    let sent = s
        .report_post_with(
            c.g,
            r.id,
            Reporter::Account(c.p2),
            "广告".into(),
            t(15),
            queued("host.example", "flag"),
        )
        .await
        .unwrap();
    assert_eq!(
        sent.forwarded_at,
        Some(t(15)),
        "sent to the host with the report"
    );
    assert_eq!(pending(&s, "host.example").await, ["flag"]);

    let request = s
        .add_group_request(
            NewGroupRequest {
                group_id: c.g,
                user: c.owner,
                activity_id: "https://grp.example/activities/action-1".into(),
                action: "pin".into(),
                object: Some("https://a.example/objects/1".into()),
                created_at: t(16),
            },
            queued("host.example", "action-1"),
        )
        .await
        .unwrap();
    assert_eq!(request.state, "pending");
    assert_eq!(pending(&s, "host.example").await, ["flag", "action-1"]);
    // Another group's answer changes nothing.
    assert!(
        s.answer_group_request(other, &request.activity_id, true, None, None, t(17))
            .await
            .unwrap()
            .is_none()
    );
    let refused = s
        .answer_group_request(
            c.g,
            &request.activity_id,
            false,
            Some("forbidden".into()),
            Some("no".into()),
            t(18),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (refused.state.as_str(), refused.code.as_deref()),
        ("refused", Some("forbidden"))
    );
    assert!(
        s.answer_group_request(c.g, &request.activity_id, true, None, None, t(19))
            .await
            .unwrap()
            .is_none(),
        "answered once"
    );
    let listed = s.group_requests(c.g, c.owner, None, 10).await.unwrap();
    assert_eq!(listed, vec![refused]);
}
