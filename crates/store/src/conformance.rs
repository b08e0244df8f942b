//! The behaviour every [`Store`] backend must show. Each backend's test suite expands
//! [`conformance_suite!`](crate::conformance_suite) with a factory that returns a fresh, empty,
//! migrated store, or `None` when the backend cannot run here (no PostgreSQL URL): the test is then
//! recorded as skipped ([`crate::skip`]), never counted as passed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use caremesh_domain::{Credential, CredentialStatus, Role, Timestamp, UserId};

use crate::{
    DeliveryResult, IncomingActivity, IngestOutcome, InviteState, LocalKey, NewInvite,
    NewOutboxEntry, NewSession, NewUser, ObjectChange, Partner, RemoteActor, RemoteKey, Store,
    StoreError,
};

/// Expands to one `#[tokio::test]` per conformance check. `$factory` is an async closure or
/// function returning `Option<Arc<dyn Store>>`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            ready_after_migrations,
            create_and_find_user,
            duplicate_username_is_conflict_and_changes_nothing,
            missing_user_is_not_found,
            list_users_pages_in_id_order,
            password_change_ends_sessions,
            disabling_ends_sessions_and_hides_them,
            sessions_expire,
            delete_session_is_idempotent,
            purge_removes_only_expired_sessions,
            credential_round_trip_and_revocation,
            credential_only_for_doctors,
            invite_redeem_consumes_one_use,
            invite_redeem_refuses_expired_revoked_and_used_up,
            invite_redeem_with_taken_username_keeps_the_use,
            invites_list_newest_first,
            unicode_display_names_survive,
            local_keys_rotate_and_announce_atomically,
            partners_are_added_listed_and_removed,
            remote_actor_keys_are_replaced_on_refresh,
            ingest_stores_each_activity_once,
            inbox_journal_applies_each_activity_once,
            apply_failures_are_counted_and_retried_until_they_give_up,
            outbox_keeps_intents_apart_from_activities,
            delete_before_create_leaves_a_tombstone,
            older_or_foreign_updates_never_win,
            outbox_leases_one_worker_per_peer,
            outbox_delivers_in_order_with_retries_and_parking,
            a_waiting_queue_is_made_due_by_hand,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                match $factory().await {
                    Some(store) => $crate::conformance::$name(store).await,
                    // The factory says why when it can; this records the test in any case.
                    None => $crate::skip::skip("the backend's database is not available"),
                }
            }
        )*
    };
}

type S = Arc<dyn Store>;

const T0: Timestamp = Timestamp::from_millis(1_795_420_800_000); // 2026-11-23T08:00:00Z

fn new_user(name: &str, role: Role) -> NewUser {
    NewUser {
        username: name.to_owned(),
        display_name: format!("{name} display"),
        role,
        password_hash: format!("hash-of-{name}"),
    }
}

fn session(token: &str, user: UserId, ttl_secs: i64) -> NewSession {
    NewSession {
        token_hash: token.to_owned(),
        user_id: user,
        created_at: T0,
        expires_at: T0.plus_secs(ttl_secs),
    }
}

fn invite(token: &str, by: UserId, max_uses: u32) -> NewInvite {
    NewInvite {
        token_hash: token.to_owned(),
        role: Role::Patient,
        label: Some("ward 3".into()),
        created_by: by,
        created_at: T0,
        expires_at: T0.plus_secs(3600),
        max_uses,
    }
}

fn credential() -> Credential {
    Credential {
        title: "主任医师".into(),
        specialty: "心内科 Cardiology".into(),
        licence_number: "110101198001010011".into(),
        checked_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        issued_at: T0,
        valid_until: Some(T0.plus_secs(365 * 24 * 3600)),
        revoked_at: None,
    }
}

pub async fn ready_after_migrations(s: S) {
    s.ready().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&s.backend()));
}

pub async fn create_and_find_user(s: S) {
    let u = s
        .create_user(new_user("dr.wang", Role::Doctor), T0)
        .await
        .unwrap();
    assert_eq!(u.username, "dr.wang");
    assert_eq!(u.role, Role::Doctor);
    assert!(!u.disabled);
    assert_eq!(u.created_at, T0);
    assert_eq!(s.user_by_id(u.id).await.unwrap(), u);
    assert_eq!(s.user_by_username("dr.wang").await.unwrap(), u);
    assert_eq!(
        s.user_by_username("dr.wang").await.unwrap().password_hash,
        "hash-of-dr.wang"
    );
}

pub async fn duplicate_username_is_conflict_and_changes_nothing(s: S) {
    let first = s
        .create_user(new_user("li", Role::Patient), T0)
        .await
        .unwrap();
    let mut again = new_user("li", Role::Admin);
    again.password_hash = "other".into();
    let err = s.create_user(again, T0).await.unwrap_err();
    assert_eq!(err.conflict_code(), Some("username_taken"), "{err:?}");
    let stored = s.user_by_username("li").await.unwrap();
    assert_eq!(stored, first);
    assert_eq!(s.count_users(None).await.unwrap(), 1);
}

pub async fn missing_user_is_not_found(s: S) {
    assert!(
        s.user_by_id(UserId(424242))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        s.user_by_username("nobody")
            .await
            .unwrap_err()
            .is_not_found()
    );
    let e = s.set_password(UserId(424242), "h", T0).await.unwrap_err();
    assert!(e.is_not_found());
    let e = s.set_disabled(UserId(424242), true, T0).await.unwrap_err();
    assert!(e.is_not_found());
}

pub async fn list_users_pages_in_id_order(s: S) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let role = if i % 2 == 0 {
            Role::Patient
        } else {
            Role::Doctor
        };
        ids.push(
            s.create_user(new_user(&format!("user{i}"), role), T0)
                .await
                .unwrap()
                .id,
        );
    }
    let page1 = s.list_users(None, None, 3).await.unwrap();
    let page2 = s.list_users(None, Some(page1[2].id), 3).await.unwrap();
    let page3 = s.list_users(None, Some(page2[2].id), 3).await.unwrap();
    let all: Vec<UserId> = page1
        .iter()
        .chain(&page2)
        .chain(&page3)
        .map(|u| u.id)
        .collect();
    assert_eq!(all, ids);
    assert_eq!(page3.len(), 1);
    let doctors = s.list_users(Some(Role::Doctor), None, 100).await.unwrap();
    assert_eq!(doctors.len(), 3);
    assert!(doctors.iter().all(|u| u.role == Role::Doctor));
    assert_eq!(s.count_users(Some(Role::Patient)).await.unwrap(), 4);
}

pub async fn password_change_ends_sessions(s: S) {
    let u = s
        .create_user(new_user("nurse", Role::Staff), T0)
        .await
        .unwrap();
    s.create_session(session("tok-a", u.id, 60)).await.unwrap();
    s.create_session(session("tok-b", u.id, 60)).await.unwrap();
    s.session_user("tok-a", T0).await.unwrap();
    s.set_password(u.id, "new-hash", T0.plus_secs(1))
        .await
        .unwrap();
    assert!(
        s.session_user("tok-a", T0)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        s.session_user("tok-b", T0)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let stored = s.user_by_id(u.id).await.unwrap();
    assert_eq!(stored.password_hash, "new-hash");
    assert_eq!(stored.updated_at, T0.plus_secs(1));
}

pub async fn disabling_ends_sessions_and_hides_them(s: S) {
    let u = s
        .create_user(new_user("zhang", Role::Patient), T0)
        .await
        .unwrap();
    s.create_session(session("tok", u.id, 60)).await.unwrap();
    s.set_disabled(u.id, true, T0).await.unwrap();
    assert!(s.user_by_id(u.id).await.unwrap().disabled);
    assert!(s.session_user("tok", T0).await.unwrap_err().is_not_found());
    // A session created while disabled (should not happen) is still not honoured.
    s.create_session(session("tok2", u.id, 60)).await.unwrap();
    assert!(s.session_user("tok2", T0).await.unwrap_err().is_not_found());
    s.set_disabled(u.id, false, T0).await.unwrap();
    let (sess, user) = s.session_user("tok2", T0).await.unwrap();
    assert_eq!(user.id, u.id);
    assert_eq!(sess.expires_at, T0.plus_secs(60));
}

pub async fn sessions_expire(s: S) {
    let u = s
        .create_user(new_user("chen", Role::Patient), T0)
        .await
        .unwrap();
    s.create_session(session("tok", u.id, 10)).await.unwrap();
    assert!(s.session_user("tok", T0.plus_secs(9)).await.is_ok());
    assert!(
        s.session_user("tok", T0.plus_secs(10))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        s.session_user("unknown", T0)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

pub async fn delete_session_is_idempotent(s: S) {
    let u = s
        .create_user(new_user("zhou", Role::Patient), T0)
        .await
        .unwrap();
    s.create_session(session("tok", u.id, 10)).await.unwrap();
    assert!(s.delete_session("tok").await.unwrap());
    assert!(!s.delete_session("tok").await.unwrap());
    assert!(s.session_user("tok", T0).await.unwrap_err().is_not_found());
}

pub async fn purge_removes_only_expired_sessions(s: S) {
    let u = s
        .create_user(new_user("wu", Role::Patient), T0)
        .await
        .unwrap();
    s.create_session(session("short", u.id, 10)).await.unwrap();
    s.create_session(session("long", u.id, 1000)).await.unwrap();
    assert_eq!(s.purge_expired_sessions(T0.plus_secs(11)).await.unwrap(), 1);
    assert!(s.session_user("long", T0.plus_secs(11)).await.is_ok());
}

pub async fn credential_round_trip_and_revocation(s: S) {
    let d = s
        .create_user(new_user("dr.li", Role::Doctor), T0)
        .await
        .unwrap();
    assert_eq!(s.credential(d.id).await.unwrap(), None);
    let c = credential();
    s.set_credential(d.id, &c, vec![]).await.unwrap();
    assert_eq!(s.credential(d.id).await.unwrap(), Some(c.clone()));
    // Recording again replaces the credential.
    let mut renewed = c.clone();
    renewed.title = "副主任医师".into();
    s.set_credential(d.id, &renewed, vec![]).await.unwrap();
    assert_eq!(
        s.credential(d.id).await.unwrap().unwrap().title,
        "副主任医师"
    );
    let revoked = s
        .revoke_credential(d.id, T0.plus_secs(5), vec![])
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(T0.plus_secs(5)));
    assert_eq!(revoked.status(T0.plus_secs(6)), CredentialStatus::Revoked);
    assert_eq!(s.credential(d.id).await.unwrap(), Some(revoked));
    let p = s
        .create_user(new_user("nocred", Role::Doctor), T0)
        .await
        .unwrap();
    assert!(
        s.revoke_credential(p.id, T0, vec![])
            .await
            .unwrap_err()
            .is_not_found()
    );
}

pub async fn credential_only_for_doctors(s: S) {
    let p = s
        .create_user(new_user("patient1", Role::Patient), T0)
        .await
        .unwrap();
    let err = s
        .set_credential(p.id, &credential(), vec![])
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("not_a_doctor"), "{err:?}");
    assert_eq!(s.credential(p.id).await.unwrap(), None);
    let err = s
        .set_credential(UserId(99999), &credential(), vec![])
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

pub async fn invite_redeem_consumes_one_use(s: S) {
    let admin = s
        .create_user(new_user("admin", Role::Admin), T0)
        .await
        .unwrap();
    let inv = s.create_invite(invite("inv-1", admin.id, 2)).await.unwrap();
    assert_eq!(inv.uses, 0);
    assert_eq!(inv.state(T0), InviteState::Usable);
    assert_eq!(s.invite_by_token_hash("inv-1").await.unwrap(), inv);
    assert_eq!(s.invite_by_id(inv.id).await.unwrap(), inv);
    let u = s
        .redeem_invite("inv-1", new_user("p1", Role::Admin), T0)
        .await
        .unwrap();
    // The role comes from the invite, never from the request.
    assert_eq!(u.role, Role::Patient);
    assert_eq!(s.invite_by_id(inv.id).await.unwrap().uses, 1);
    s.redeem_invite("inv-1", new_user("p2", Role::Patient), T0)
        .await
        .unwrap();
    let used = s.invite_by_id(inv.id).await.unwrap();
    assert_eq!(used.uses, 2);
    assert_eq!(used.state(T0), InviteState::UsedUp);
    let err = s
        .redeem_invite("inv-1", new_user("p3", Role::Patient), T0)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    assert!(s.user_by_username("p3").await.unwrap_err().is_not_found());
}

pub async fn invite_redeem_refuses_expired_revoked_and_used_up(s: S) {
    let admin = s
        .create_user(new_user("admin", Role::Admin), T0)
        .await
        .unwrap();
    s.create_invite(invite("expiring", admin.id, 5))
        .await
        .unwrap();
    let late = T0.plus_secs(3600);
    let err = s
        .redeem_invite("expiring", new_user("late", Role::Patient), late)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    let inv = s
        .create_invite(invite("revoked", admin.id, 5))
        .await
        .unwrap();
    let r = s.revoke_invite(inv.id, T0).await.unwrap();
    assert_eq!(r.state(T0), InviteState::Revoked);
    // Revoking again keeps the first revocation time.
    assert_eq!(
        s.revoke_invite(inv.id, T0.plus_secs(9))
            .await
            .unwrap()
            .revoked_at,
        Some(T0)
    );
    let err = s
        .redeem_invite("revoked", new_user("rev", Role::Patient), T0)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("invite_unusable"));
    let err = s
        .redeem_invite("no-such", new_user("x1", Role::Patient), T0)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(s.count_users(Some(Role::Patient)).await.unwrap(), 0);
    assert!(
        s.revoke_invite(987654, T0)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

pub async fn invite_redeem_with_taken_username_keeps_the_use(s: S) {
    let admin = s
        .create_user(new_user("admin", Role::Admin), T0)
        .await
        .unwrap();
    let inv = s.create_invite(invite("inv", admin.id, 1)).await.unwrap();
    let err = s
        .redeem_invite("inv", new_user("admin", Role::Patient), T0)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("username_taken"));
    assert_eq!(s.invite_by_id(inv.id).await.unwrap().uses, 0);
    s.redeem_invite("inv", new_user("fresh", Role::Patient), T0)
        .await
        .unwrap();
}

pub async fn invites_list_newest_first(s: S) {
    let admin = s
        .create_user(new_user("admin", Role::Admin), T0)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            s.create_invite(invite(&format!("t{i}"), admin.id, 1))
                .await
                .unwrap()
                .id,
        );
    }
    ids.reverse();
    let first = s.list_invites(None, 3).await.unwrap();
    let rest = s.list_invites(Some(first[2].id), 3).await.unwrap();
    let got: Vec<i64> = first.iter().chain(&rest).map(|i| i.id).collect();
    assert_eq!(got, ids);
    let dup = s
        .create_invite(invite("t0", admin.id, 1))
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict { .. }), "{dup:?}");
}

pub async fn unicode_display_names_survive(s: S) {
    let mut n = new_user("dr.zhao", Role::Doctor);
    n.display_name = "赵医生 (心血管) 👩‍⚕️".into();
    let u = s.create_user(n, T0).await.unwrap();
    assert_eq!(
        s.user_by_id(u.id).await.unwrap().display_name,
        "赵医生 (心血管) 👩‍⚕️"
    );
}

fn local_key(actor: &str, key_id: &str, at: Timestamp) -> LocalKey {
    LocalKey {
        key_id: key_id.into(),
        actor_id: actor.into(),
        private_key_pem: format!("private {key_id}"),
        public_key_pem: format!("public {key_id}"),
        created_at: at,
        retired_at: None,
    }
}

fn entry(peer: &str, n: u32) -> NewOutboxEntry {
    NewOutboxEntry {
        peer: peer.into(),
        inbox_url: format!("https://{peer}/inbox"),
        activity_id: format!("https://a.example/activities/{n}"),
        payload: format!("{{\"n\":{n}}}"),
        intent: false,
    }
}

pub async fn local_keys_rotate_and_announce_atomically(s: S) {
    let actor = "https://a.example/actor";
    let first = s
        .ensure_local_key(local_key(actor, "https://a.example/actor#main-key", T0))
        .await
        .unwrap();
    // A second ensure keeps the first key.
    let again = s
        .ensure_local_key(local_key(actor, "https://a.example/actor#other", T0))
        .await
        .unwrap();
    assert_eq!(again, first);
    let later = T0.plus_secs(60);
    s.add_local_key(
        local_key(actor, "https://a.example/actor#key-2", later),
        vec![entry("b.example", 1)],
    )
    .await
    .unwrap();
    let keys = s.local_keys(actor).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].key_id, "https://a.example/actor#key-2");
    assert_eq!(keys[0].retired_at, None);
    assert_eq!(keys[1].retired_at, Some(later));
    assert_eq!(s.pending_entries("b.example", 10).await.unwrap().len(), 1);
    // A duplicate key id is refused and its announcement is not queued.
    let dup = s
        .add_local_key(
            local_key(actor, "https://a.example/actor#key-2", later),
            vec![entry("b.example", 2)],
        )
        .await
        .unwrap_err();
    assert_eq!(dup.conflict_code(), Some("key_exists"));
    assert_eq!(s.pending_entries("b.example", 10).await.unwrap().len(), 1);
    assert_eq!(s.local_keys(actor).await.unwrap()[0].retired_at, None);
}

pub async fn partners_are_added_listed_and_removed(s: S) {
    let p = |a: &str| Partner {
        authority: a.into(),
        base_url: format!("https://{a}/"),
        added_at: T0,
        source: "cli".into(),
    };
    assert!(s.add_partner(p("b.example")).await.unwrap());
    assert!(s.add_partner(p("a.example:8443")).await.unwrap());
    assert!(!s.add_partner(p("b.example")).await.unwrap());
    let list: Vec<String> = s
        .list_partners()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.authority)
        .collect();
    assert_eq!(list, ["a.example:8443", "b.example"]);
    s.remove_partner("b.example").await.unwrap();
    assert!(
        s.remove_partner("b.example")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(s.list_partners().await.unwrap().len(), 1);
}

pub async fn remote_actor_keys_are_replaced_on_refresh(s: S) {
    let actor = RemoteActor {
        actor_id: "https://b.example/actor".into(),
        actor_type: "Application".into(),
        inbox: Some("https://b.example/actor/inbox".into()),
        shared_inbox: Some("https://b.example/inbox".into()),
        document: "{}".into(),
        fetched_at: T0,
    };
    let key = |id: &str| RemoteKey {
        key_id: id.into(),
        actor_id: "https://b.example/actor".into(),
        public_key_pem: format!("pem {id}"),
        fetched_at: T0,
    };
    s.save_remote_actor(actor.clone(), vec![key("https://b.example/actor#main-key")])
        .await
        .unwrap();
    assert!(
        s.remote_key("https://b.example/actor#main-key")
            .await
            .unwrap()
            .is_some()
    );
    s.save_remote_actor(actor.clone(), vec![key("https://b.example/actor#key-2")])
        .await
        .unwrap();
    assert!(
        s.remote_key("https://b.example/actor#main-key")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.remote_key("https://b.example/actor#key-2")
            .await
            .unwrap()
            .unwrap()
            .public_key_pem,
        "pem https://b.example/actor#key-2"
    );
    assert_eq!(
        s.remote_actor("https://b.example/actor").await.unwrap(),
        Some(actor)
    );
}

fn incoming(id: &str, kind: &str, object: Option<ObjectChange>) -> IncomingActivity {
    IncomingActivity {
        activity_id: format!("https://b.example/activities/{id}"),
        activity_type: kind.into(),
        actor_id: "https://b.example/users/dr.li".into(),
        peer: "b.example".into(),
        payload: format!("{{\"id\":\"{id}\"}}"),
        received_at: T0,
        object,
    }
}

fn upsert(
    published: i64,
    updated: Option<i64>,
    content: &str,
    author: &str,
) -> Option<ObjectChange> {
    Some(ObjectChange::Upsert {
        object_id: "https://b.example/objects/1".into(),
        object_type: "Note".into(),
        attributed_to: author.into(),
        document: format!("{{\"content\":\"{content}\"}}"),
        published_at: Some(Timestamp::from_millis(published)),
        updated_at: updated.map(Timestamp::from_millis),
    })
}

const DR_LI: &str = "https://b.example/users/dr.li";

/// Recorded is not applied: an activity whose application never finished (the node stopped in
/// between) is reported as not applied on redelivery and listed for replay, until it is marked.
pub async fn inbox_journal_applies_each_activity_once(s: S) {
    let a = incoming("j1", "Create", upsert(1000, None, "hello", DR_LI));
    let b = incoming("j2", "Follow", None);
    let out = s.ingest(vec![a.clone(), b.clone()]).await.unwrap();
    let (sa, sb) = (out[0].seq(), out[1].seq());
    assert!(out.iter().all(|o| o.needs_applying()));
    let later = Timestamp::from_millis(T0.as_millis() + 60_000);
    let waiting = s.unapplied_activities(later, 5, 10).await.unwrap();
    assert_eq!(
        waiting.iter().map(|w| w.seq).collect::<Vec<_>>(),
        [sa, sb],
        "both wait, in arrival order"
    );
    assert!(waiting.iter().all(|w| w.applied_at.is_none()));
    // Only what arrived before the cut-off (the live path applies newer ones itself).
    assert!(s.unapplied_activities(T0, 5, 10).await.unwrap().is_empty());

    s.mark_applied(sa, later).await.unwrap();
    // Marking twice keeps the first time.
    s.mark_applied(sa, Timestamp::from_millis(later.as_millis() + 5))
        .await
        .unwrap();
    let waiting = s.unapplied_activities(later, 5, 10).await.unwrap();
    assert_eq!(waiting.iter().map(|w| w.seq).collect::<Vec<_>>(), [sb]);
    assert_eq!(
        s.ingest(vec![a.clone()]).await.unwrap(),
        [IngestOutcome::Duplicate {
            seq: sa,
            applied: true
        }]
    );
    assert!(!s.ingest(vec![a]).await.unwrap()[0].needs_applying());
    assert_eq!(
        s.ingest(vec![b]).await.unwrap(),
        [IngestOutcome::Duplicate {
            seq: sb,
            applied: false
        }]
    );
    let stored = s.received_activities(0, 10).await.unwrap();
    assert_eq!(stored.len(), 2, "redelivery records nothing new");
    assert_eq!(stored[0].applied_at, Some(later));
}

pub async fn apply_failures_are_counted_and_retried_until_they_give_up(s: S) {
    let a = incoming("f1", "Create", upsert(1000, None, "hello", DR_LI));
    let seq = s.ingest(vec![a]).await.unwrap()[0].seq();
    let later = Timestamp::from_millis(T0.as_millis() + 60_000);
    assert_eq!(
        s.record_apply_failure(seq, "database is locked", later)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.record_apply_failure(seq, "disk full", later)
            .await
            .unwrap(),
        2
    );
    let waiting = s.unapplied_activities(later, 3, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].apply_attempts, 2);
    assert_eq!(waiting[0].apply_error.as_deref(), Some("disk full"));
    assert!(s.failed_activities(3, 10).await.unwrap().is_empty());
    s.record_apply_failure(seq, "still failing", later)
        .await
        .unwrap();
    // Three attempts: no more retries, listed for the admin instead.
    assert!(
        s.unapplied_activities(later, 3, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let failed = s.failed_activities(3, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].apply_error.as_deref(), Some("still failing"));
    // An applied activity counts no failures.
    s.mark_applied(seq, later).await.unwrap();
    assert_eq!(s.record_apply_failure(seq, "late", later).await.unwrap(), 0);
    assert!(s.failed_activities(3, 10).await.unwrap().is_empty());
}

pub async fn outbox_keeps_intents_apart_from_activities(s: S) {
    let mut intent = entry("b.example", 7);
    intent.intent = true;
    intent.payload = r#"{"intent":"post_state","post":1}"#.into();
    s.enqueue(vec![entry("b.example", 6), intent.clone()], T0)
        .await
        .unwrap();
    let pending = s.pending_entries("b.example", 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(!pending[0].intent);
    assert!(pending[1].intent, "in order, and marked as an intent");
    assert_eq!(pending[1].payload, intent.payload);
}

pub async fn ingest_stores_each_activity_once(s: S) {
    let a = incoming("1", "Create", upsert(1000, None, "hello", DR_LI));
    let b = incoming("2", "Follow", None);
    let out = s
        .ingest(vec![a.clone(), b.clone(), a.clone()])
        .await
        .unwrap();
    let (sa, sb) = (out[0].seq(), out[1].seq());
    assert_eq!(
        out,
        [
            IngestOutcome::Stored { seq: sa },
            IngestOutcome::Stored { seq: sb },
            IngestOutcome::Duplicate {
                seq: sa,
                applied: false
            }
        ]
    );
    assert!(sa < sb);
    assert_eq!(
        s.ingest(vec![b]).await.unwrap(),
        [IngestOutcome::Duplicate {
            seq: sb,
            applied: false
        }]
    );
    let got = s.received_activities(0, 10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[0].seq < got[1].seq);
    assert_eq!(got[0].activity_type, "Create");
    let obj = s
        .federated_object("https://b.example/objects/1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(obj.document.as_deref(), Some("{\"content\":\"hello\"}"));
    assert_eq!(
        s.received_activities(got[1].seq, 10).await.unwrap().len(),
        0
    );
}

pub async fn delete_before_create_leaves_a_tombstone(s: S) {
    let del = incoming(
        "del",
        "Delete",
        Some(ObjectChange::Delete {
            object_id: "https://b.example/objects/1".into(),
            attributed_to: DR_LI.into(),
        }),
    );
    s.ingest(vec![del]).await.unwrap();
    s.ingest(vec![incoming(
        "create",
        "Create",
        upsert(1000, None, "late", DR_LI),
    )])
    .await
    .unwrap();
    let obj = s
        .federated_object("https://b.example/objects/1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(obj.object_type, "Tombstone");
    assert_eq!(obj.document, None);
    assert!(obj.deleted_at.is_some());
}

pub async fn older_or_foreign_updates_never_win(s: S) {
    s.ingest(vec![incoming(
        "u2",
        "Update",
        upsert(1000, Some(3000), "newest", DR_LI),
    )])
    .await
    .unwrap();
    s.ingest(vec![incoming(
        "u1",
        "Update",
        upsert(1000, Some(2000), "older", DR_LI),
    )])
    .await
    .unwrap();
    s.ingest(vec![incoming(
        "c",
        "Create",
        upsert(1000, None, "original", DR_LI),
    )])
    .await
    .unwrap();
    s.ingest(vec![incoming(
        "x",
        "Update",
        upsert(1000, Some(9000), "forged", "https://b.example/users/eve"),
    )])
    .await
    .unwrap();
    let foreign_delete = incoming(
        "xd",
        "Delete",
        Some(ObjectChange::Delete {
            object_id: "https://b.example/objects/1".into(),
            attributed_to: "https://b.example/users/eve".into(),
        }),
    );
    s.ingest(vec![foreign_delete]).await.unwrap();
    let obj = s
        .federated_object("https://b.example/objects/1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(obj.document.as_deref(), Some("{\"content\":\"newest\"}"));
    assert_eq!(obj.deleted_at, None);
    assert_eq!(obj.attributed_to, DR_LI);
}

pub async fn outbox_leases_one_worker_per_peer(s: S) {
    s.enqueue(vec![entry("b.example", 1), entry("c.example", 2)], T0)
        .await
        .unwrap();
    let until = T0.plus_secs(30);
    let mut first = s.lease_due_peers("w1", T0, until, 10).await.unwrap();
    first.sort();
    assert_eq!(first, ["b.example", "c.example"]);
    assert!(
        s.lease_due_peers("w2", T0, until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Only the holder may record results or renew.
    let e = s.pending_entries("b.example", 10).await.unwrap()[0].clone();
    let err = s
        .record_delivery(e.id, "w2", DeliveryResult::Delivered, T0)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("lease_lost"));
    assert!(!s.renew_peer_lease("b.example", "w2", until).await.unwrap());
    assert!(s.renew_peer_lease("b.example", "w1", until).await.unwrap());
    // An expired lease is taken over by another worker; a released one too.
    let after = T0.plus_secs(31);
    s.release_peer("c.example", "w1").await.unwrap();
    let mut taken = s
        .lease_due_peers("w2", after, after.plus_secs(30), 10)
        .await
        .unwrap();
    taken.sort();
    assert_eq!(taken, ["b.example", "c.example"]);
    let err = s
        .record_delivery(e.id, "w1", DeliveryResult::Delivered, after)
        .await
        .unwrap_err();
    assert_eq!(err.conflict_code(), Some("lease_lost"));
    s.record_delivery(e.id, "w2", DeliveryResult::Delivered, after)
        .await
        .unwrap();
    assert!(s.pending_entries("b.example", 10).await.unwrap().is_empty());
}

pub async fn outbox_delivers_in_order_with_retries_and_parking(s: S) {
    s.enqueue((1..=3).map(|n| entry("b.example", n)).collect(), T0)
        .await
        .unwrap();
    let lease = |at: Timestamp| {
        let s = s.clone();
        async move {
            s.lease_due_peers("w", at, at.plus_secs(30), 10)
                .await
                .unwrap()
        }
    };
    assert_eq!(lease(T0).await, ["b.example"]);
    let pending = s.pending_entries("b.example", 10).await.unwrap();
    let ids: Vec<String> = pending.iter().map(|e| e.activity_id.clone()).collect();
    assert_eq!(
        ids,
        (1..=3)
            .map(|n| format!("https://a.example/activities/{n}"))
            .collect::<Vec<_>>()
    );
    // A failure makes the whole queue wait until the retry time.
    let retry_at = T0.plus_secs(60);
    s.record_delivery(
        pending[0].id,
        "w",
        DeliveryResult::Retry {
            error: "connection refused".into(),
            retry_at,
        },
        T0,
    )
    .await
    .unwrap();
    s.release_peer("b.example", "w").await.unwrap();
    assert!(lease(T0.plus_secs(59)).await.is_empty());
    let q = &s.peer_queues().await.unwrap()[0];
    assert_eq!((q.pending, q.parked, q.consecutive_failures), (3, 0, 1));
    assert_eq!(q.last_error.as_deref(), Some("connection refused"));
    assert_eq!(lease(retry_at).await, ["b.example"]);
    let head = &s.pending_entries("b.example", 1).await.unwrap()[0];
    assert_eq!(head.id, pending[0].id);
    assert_eq!(head.attempts, 1);
    // Parking moves the queue on; the parked entry is kept and can be retried by hand.
    s.record_delivery(
        head.id,
        "w",
        DeliveryResult::Park {
            error: "403 not a partner".into(),
        },
        retry_at,
    )
    .await
    .unwrap();
    s.record_delivery(pending[1].id, "w", DeliveryResult::Delivered, retry_at)
        .await
        .unwrap();
    let q = &s.peer_queues().await.unwrap()[0];
    assert_eq!((q.pending, q.parked, q.consecutive_failures), (1, 1, 0));
    let parked = s.parked_entries(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].last_error.as_deref(), Some("403 not a partner"));
    assert_eq!(s.retry_parked(&[], retry_at).await.unwrap(), 1);
    assert!(s.parked_entries(10).await.unwrap().is_empty());
    let again: Vec<i64> = s
        .pending_entries("b.example", 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(again, [pending[0].id, pending[2].id]);
    assert_eq!(s.retry_parked(&[pending[0].id], retry_at).await.unwrap(), 0);
}

pub async fn a_waiting_queue_is_made_due_by_hand(s: S) {
    s.enqueue((1..=2).map(|n| entry("b.example", n)).collect(), T0)
        .await
        .unwrap();
    assert_eq!(
        s.lease_due_peers("w", T0, T0.plus_secs(30), 10)
            .await
            .unwrap(),
        ["b.example"]
    );
    let head = s.pending_entries("b.example", 1).await.unwrap()[0].id;
    let retry_at = T0.plus_secs(3600);
    s.record_delivery(
        head,
        "w",
        DeliveryResult::Retry {
            error: "connection refused".into(),
            retry_at,
        },
        T0,
    )
    .await
    .unwrap();
    s.release_peer("b.example", "w").await.unwrap();
    let now = T0.plus_secs(10);
    assert!(
        s.lease_due_peers("w", now, now.plus_secs(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.retry_peer_now("b.example", now).await.unwrap(), Some(2));
    let q = &s.peer_queues().await.unwrap()[0];
    assert_eq!(q.next_attempt_at, now);
    // The failures stay on record; the queue is due.
    assert_eq!((q.pending, q.consecutive_failures), (2, 1));
    assert_eq!(
        s.lease_due_peers("w", now, now.plus_secs(30), 10)
            .await
            .unwrap(),
        ["b.example"]
    );
    assert_eq!(s.retry_peer_now("c.example", now).await.unwrap(), None);
}
