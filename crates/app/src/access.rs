//! Who is acting, and what they may do in a group.
//!
//! Access policy (every group use-case): an account that is not an active member of the group
//! gets `NotFound`, exactly as for a group that does not exist, so group ids reveal nothing to
//! outsiders. Hospital administrators are the exception: they may see every group's settings,
//! reports and moderation log and act as moderators, but they read no group content unless they
//! are members, and get `Forbidden` (not `NotFound`) where they may not act. Members whose role
//! does not allow an action get `Forbidden`.

use caremesh_domain::{GroupRole, MemberListVisibility, MemberState};
use caremesh_store::{Group, Member, User};

use crate::App;
use crate::error::{AppError, AppResult};

/// A local account acting through the API, the pages or the CLI.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
}

impl Caller {
    pub fn new(user: User) -> Self {
        Self { user }
    }
}

/// An account's standing in one group: the group, and its membership when it is active.
#[derive(Clone, Debug)]
pub struct GroupAccess {
    pub group: Group,
    /// The asker's membership when it is active.
    pub member: Option<Member>,
    pub user: User,
}

pub fn group_not_found() -> AppError {
    AppError::NotFound("group")
}

impl GroupAccess {
    /// Checks an account's access to the group with this public id: members and hospital
    /// administrators pass; everyone else gets the same `NotFound` as for no group at all.
    pub async fn load(app: &App, user: &User, public_id: &str) -> AppResult<Self> {
        let group = match app.store.group_by_public_id(public_id).await {
            Ok(g) => g,
            Err(e) if e.is_not_found() => return Err(group_not_found()),
            Err(e) => return Err(e.into()),
        };
        let member = app
            .store
            .membership(group.id, user.id)
            .await?
            .filter(Member::is_active);
        Self::check(group, member, user.clone())
    }

    /// The same decision for the account of a session (by the hash of its token), reading
    /// session, group and membership in one round trip (the API's extractor). An unknown or
    /// expired session is `Unauthenticated`.
    pub async fn for_session(app: &App, token_hash: &str, public_id: &str) -> AppResult<Self> {
        let (_, user, found) = match app
            .store
            .session_group_access(token_hash, public_id, app.now())
            .await
        {
            Ok(found) => found,
            Err(e) if e.is_not_found() => return Err(AppError::Unauthenticated),
            Err(e) => return Err(e.into()),
        };
        let (group, member) = found.ok_or_else(group_not_found)?;
        Self::check(group, member, user)
    }

    /// The same decision from a group and membership already read.
    pub fn check(group: Group, member: Option<Member>, user: User) -> AppResult<Self> {
        let member = member.filter(Member::is_active);
        if member.is_none() && !user.role.is_admin() {
            return Err(group_not_found());
        }
        Ok(Self {
            group,
            member,
            user,
        })
    }

    pub fn role(&self) -> Option<GroupRole> {
        self.member.as_ref().map(|m| m.role)
    }

    pub fn is_admin(&self) -> bool {
        self.user.role.is_admin()
    }

    /// Whether the group is hosted by another node (this node keeps a mirror of it).
    pub fn hosted_elsewhere(&self) -> bool {
        self.group.remote_actor_id.is_some()
    }

    /// Reading the group's content: members only.
    pub fn read(&self) -> AppResult<GroupRole> {
        self.role().ok_or_else(|| {
            AppError::forbidden("only members of the group read its posts, files and library")
        })
    }

    /// Moderating: the group's moderators, doctors and owner, and hospital administrators.
    pub fn moderate(&self) -> AppResult<()> {
        rules::moderate(self.role(), self.is_admin())
    }

    /// Teaching (announcements, pins, accepted answers): the group's doctors and owner. Whether a
    /// doctor's credential is valid now is checked by [`teaching`].
    pub fn teach(&self) -> AppResult<()> {
        rules::teach(self.role())
    }

    /// Changing the library: curators. (In a group hosted elsewhere the host keeps the library;
    /// this node asks it, see `library`.)
    pub fn keep_library(&self) -> AppResult<()> {
        self.curate()
    }

    /// Keeping the library: the group's moderators, doctors and owner.
    pub fn curate(&self) -> AppResult<()> {
        rules::curate(self.role())
    }

    /// Governing (settings, roles): the owner.
    pub fn govern(&self) -> AppResult<()> {
        rules::govern(self.role())
    }

    /// The rank the asker acts with against other members: their role's, or just below the
    /// owner's for hospital administrators who are not members.
    pub fn acting_rank(&self) -> u8 {
        rules::acting_rank(self.role(), self.is_admin())
    }

    /// Moderators act only on members ranked below them.
    pub fn check_outranks(&self, target: &Member) -> AppResult<()> {
        rules::outranks(self.acting_rank(), target)
    }

    /// Who may list the group's members in a state: moderators any, members the active ones when
    /// the owner opened the list to them.
    pub fn may_list_members(&self, wanted: MemberState) -> AppResult<()> {
        let open_list = self.group.settings.member_list == MemberListVisibility::Members
            && wanted == MemberState::Active
            && self.member.is_some();
        if open_list { Ok(()) } else { self.moderate() }
    }
}

/// The rules of who may do what in a group, by role, written once: for accounts of this node
/// ([`GroupAccess`]) and for members of other nodes acting on a group hosted here
/// (`crate::actions`).
pub(crate) mod rules {
    use caremesh_domain::GroupRole;
    use caremesh_store::Member;

    use crate::{AppError, AppResult};

    pub fn moderate(role: Option<GroupRole>, admin: bool) -> AppResult<()> {
        if role.is_some_and(GroupRole::can_moderate) || admin {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only the group's moderators, doctors and owner may do this",
            ))
        }
    }

    pub fn teach(role: Option<GroupRole>) -> AppResult<()> {
        if role.is_some_and(GroupRole::can_teach) {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only the group's doctors and owner may do this",
            ))
        }
    }

    pub fn curate(role: Option<GroupRole>) -> AppResult<()> {
        if role.is_some_and(GroupRole::can_curate) {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "only the group's moderators, doctors and owner keep the library",
            ))
        }
    }

    pub fn govern(role: Option<GroupRole>) -> AppResult<()> {
        if role.is_some_and(GroupRole::can_govern) {
            Ok(())
        } else {
            Err(AppError::forbidden("only the group's owner may do this"))
        }
    }

    pub fn acting_rank(role: Option<GroupRole>, admin: bool) -> u8 {
        let own = role.map_or(0, GroupRole::rank);
        if admin {
            own.max(GroupRole::Owner.rank())
        } else {
            own
        }
    }

    pub fn outranks(rank: u8, target: &Member) -> AppResult<()> {
        if rank > target.role.rank() || target.role == GroupRole::Owner {
            // The store refuses the owner with its own clear conflict.
            Ok(())
        } else {
            Err(AppError::forbidden(
                "you may act only on members whose role is below yours",
            ))
        }
    }
}

/// The code of a refusal because a doctor's credential is not valid now.
pub const CREDENTIAL_INACTIVE: &str = "credential_inactive";

/// Teaching, with the doctor's credential checked: the group's doctors and owner, and a doctor
/// only while the credential their hospital recorded is valid (a revoked or expired one
/// suspends announcements, pins, accepted answers and the queue until it is valid again).
pub async fn teaching(app: &App, ctx: &GroupAccess) -> AppResult<()> {
    ctx.teach()?;
    account_credential(app, &ctx.user).await
}

/// A doctor of this node whose credential the hospital revoked, or which expired, may not teach
/// until it is valid again; other accounts (an administrator who owns a group) carry none.
pub async fn account_credential(app: &App, user: &User) -> AppResult<()> {
    use caremesh_domain::CredentialStatus;
    if user.role != caremesh_domain::Role::Doctor {
        return Ok(());
    }
    let status = app
        .store
        .credential(user.id)
        .await?
        .map(|c| c.status(app.now()));
    match status {
        None | Some(CredentialStatus::Valid) => Ok(()),
        Some(CredentialStatus::Revoked) => Err(AppError::forbidden_code(
            CREDENTIAL_INACTIVE,
            "your credential has been revoked by your hospital: teaching in groups is suspended until it is restored",
        )),
        Some(CredentialStatus::Expired) => Err(AppError::forbidden_code(
            CREDENTIAL_INACTIVE,
            "your credential has expired: teaching in groups is suspended until your hospital renews it",
        )),
    }
}

/// A member of another node may teach in a group hosted here only while the credential their
/// own hospital signed is valid (checked against that hospital's key; a revocation reaches this
/// node as an `Update` of the doctor's actor).
pub async fn remote_credential(app: &App, actor: &str) -> AppResult<()> {
    use caremesh_federation::credentials::BadgeStatus;
    let badge = app.federation.remote_badge(actor).await;
    match badge.map(|b| b.status) {
        Some(BadgeStatus::Verified) => Ok(()),
        Some(BadgeStatus::Revoked) => Err(AppError::forbidden_code(
            CREDENTIAL_INACTIVE,
            "the doctor's credential has been revoked by their hospital: teaching here is suspended",
        )),
        Some(BadgeStatus::Expired) => Err(AppError::forbidden_code(
            CREDENTIAL_INACTIVE,
            "the doctor's credential has expired: teaching here is suspended",
        )),
        _ => Err(AppError::forbidden_code(
            CREDENTIAL_INACTIVE,
            "the doctor carries no credential signed by their own hospital that this node can verify",
        )),
    }
}
