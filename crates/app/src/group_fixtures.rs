//! A node in memory for the group use-cases' tests: an in-memory SQLite store, the federation
//! services over it, a clock the test moves, and accounts of each role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use caremesh_domain::{Clock, Role, Timestamp};
use caremesh_federation::{Federation, FederationSettings, Urls};
use caremesh_store::{Group, NewUser, Store, User};
use caremesh_store_sqlite::SqliteStore;

use crate::groups::{NewGroupFields, create_group_as};
use crate::{App, AppSettings, GroupAccess};

/// 2026-11-23T08:00:00Z.
pub const START: Timestamp = Timestamp::from_millis(1_795_420_800_000);

/// A clock that stands still until the test moves it.
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

pub struct Node {
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<TestClock>,
    /// Keeps the media folder while the test runs.
    _media: tempfile::TempDir,
}

pub async fn node() -> Node {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(TestClock(AtomicI64::new(START.as_millis())));
    let base_url: url::Url = "http://127.0.0.1:9/".parse().unwrap();
    let federation = Federation::new(
        store.clone(),
        clock.clone(),
        Urls::new(base_url.clone()),
        FederationSettings::default(),
    )
    .unwrap();
    let media = tempfile::tempdir().unwrap();
    let settings = AppSettings {
        hospital_name: "Test hospital".into(),
        base_url,
        max_members: 500,
        session_ttl_secs: 3600,
        login_max_failures: 5,
        login_window_secs: 900,
        invite_ttl_hours: 24,
        media_dir: media.path().to_owned(),
        max_file_bytes: 1 << 20,
        group_quota_bytes: 1 << 30,
        max_image_pixels: 1_000_000,
        max_concurrent_password_hashes: 2,
        max_concurrent_decodes: 1,
    };
    let app = App::new(store.clone(), clock.clone(), federation, settings);
    Node {
        app,
        store,
        clock,
        _media: media,
    }
}

impl Node {
    pub async fn user(&self, username: &str, role: Role) -> User {
        self.store
            .create_user(
                NewUser {
                    username: username.into(),
                    display_name: format!("{username} (name)"),
                    role,
                    password_hash: "not a hash".into(),
                },
                self.clock.now(),
            )
            .await
            .unwrap()
    }

    /// A group hosted here, owned by `owner` (a doctor or an administrator).
    pub async fn group(&self, owner: &User, name: &str) -> Group {
        let fields = NewGroupFields {
            name: name.into(),
            condition: "Stroke".into(),
            city: "Guangzhou".into(),
            language: "zh-CN".into(),
            ..NewGroupFields::default()
        };
        create_group_as(&self.app, owner, &fields).await.unwrap()
    }

    /// `user`'s standing in `group`, read again (as every request does).
    pub async fn access(&self, user: &User, group: &Group) -> GroupAccess {
        GroupAccess::load(&self.app, user, &group.public_id)
            .await
            .unwrap()
    }
}
