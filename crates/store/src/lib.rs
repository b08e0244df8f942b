//! The storage boundary of Caremesh: the [`Store`] trait, the models it reads and writes, its typed
//! [`StoreError`], and a [`conformance`] suite that every backend must pass.
//!
//! This crate knows nothing of SQL or of any particular database; `caremesh-store-sqlite` and
//! `caremesh-store-postgres` implement it. Handlers only ever see `Arc<dyn Store>`.

mod accounts;
pub mod conformance;
pub mod conformance_groups;
pub mod conformance_remote_groups;
mod error;
mod federation;
mod group_models;
mod groups;
mod health;
mod models;
mod remote_groups;
pub mod skip;

use async_trait::async_trait;

pub use accounts::AccountStore;
pub use error::StoreError;
pub use federation::{
    DeliveryResult, FederatedObject, FederationStore, IncomingActivity, IngestOutcome, LocalKey,
    NewOutboxEntry, ObjectChange, OutboxEntry, Partner, PeerQueue, RemoteActor, RemoteKey,
    StoredActivity,
};
pub use group_models::{
    Acting, Attachment, DeletedBy, FeedPosition, FeedSort, Group, GroupInvite, GroupRequest,
    GroupSettings, ImportedPost, LibraryFolder, LibraryItem, Member, ModerationEntry,
    NewAttachment, NewGroup, NewGroupInvite, NewGroupRequest, NewLibraryItem, NewPost, Post,
    PostAuthor, PostEdit, QueueItem, ReplySort, Report, Reporter,
};
pub use groups::GroupStore;
pub use health::{DatabaseState, WriteHealth};
pub use models::{Invite, InviteState, NewInvite, NewSession, NewUser, Session, User};
pub use remote_groups::{
    HostedPostState, MirrorFolder, MirrorItem, Pseudonym, RemoteAttachment, RemoteFollow,
    RemoteGroupStore, RemotePost,
};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the node keeps, one supertrait per area. Each method that changes state runs in one
/// transaction: it either happens completely or not at all.
///
/// Through `dyn Store` the methods of every area are callable directly; generic code can import
/// the area traits with `use caremesh_store::prelude::*`.
#[async_trait]
pub trait Store:
    AccountStore + FederationStore + GroupStore + RemoteGroupStore + Send + Sync + 'static
{
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers, that every migration embedded in this binary has been
    /// applied and that writes work. Errors with [`StoreError::NotReady`] otherwise.
    ///
    /// Writes are judged at no cost to them ([`WriteHealth`]): until a write transaction fails
    /// (or ends without its commit, as a change refused half-way does), the store is taken to
    /// write. After one, `ready` tries a probe write (the `node_health` row) and is ready once
    /// one commits. So readiness fails while writes fail and comes back, without any other write,
    /// once the database takes them again. A node that has not tried to write since its database
    /// stopped taking writes still says ready.
    async fn ready(&self) -> Result<()>;
}

/// The store traits, for `use caremesh_store::prelude::*`.
pub mod prelude {
    pub use crate::{AccountStore, FederationStore, GroupStore, RemoteGroupStore, Store};
}
