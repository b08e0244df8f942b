//! Groups and membership: creating and changing groups, listing them, members and their roles,
//! join requests, names chosen for one group, leaving, removing and banning. Group invite links
//! are in [`crate::invites`].
//!
//! A membership change a moderator makes is told to the member's node when the member belongs to
//! another node ([`member_changed`]); leaving or renaming oneself in a group hosted elsewhere is
//! told to the group's host.

use caremesh_domain::{
    GroupRole, MemberState, Role, ValidationError, clean_line, clean_text, group::limits,
    validate_condition_code, validate_display_name,
};
use caremesh_federation::credentials::BadgeStatus;
use caremesh_store::{Group, GroupSettings, Member, NewGroup, User};

use caremesh_federation::activity::GroupActionKind;
use caremesh_store::Acting;

use crate::actions::{self, Outcome};
use crate::intents::{self, Intent};
use crate::{App, AppError, AppResult, GroupAccess, group_not_found, new_public_id};

/// Groups shown at once where a list is not paged (the home page, the announcement form).
pub const SHORT_LIST: u32 = 200;

// ---- creating and changing groups ----

/// What a group's creator fills in: the JSON API's body, and the fields of the page's form.
#[derive(Default, Clone, Debug)]
pub struct NewGroupFields {
    pub name: String,
    pub condition: String,
    pub condition_code: Option<String>,
    pub city: String,
    pub language: String,
    pub description: String,
    pub rules: String,
    /// `moderators` (default) or `members`.
    pub member_list: Option<String>,
}

impl NewGroupFields {
    /// The group's settings, cleaned; the first rule broken names its field.
    pub fn settings(&self) -> Result<GroupSettings, ValidationError> {
        Ok(GroupSettings {
            name: clean_line("name", &self.name, limits::GROUP_NAME)?,
            condition: clean_line("condition", &self.condition, limits::CONDITION)?,
            condition_code: clean_code(self.condition_code.clone())?,
            city: clean_line("city", &self.city, limits::CITY)?,
            language: self.language.parse()?,
            description: clean_text("description", &self.description, limits::DESCRIPTION, true)?,
            rules: clean_text("rules", &self.rules, limits::RULES, true)?,
            member_list: self
                .member_list
                .as_deref()
                .unwrap_or("moderators")
                .parse()?,
        })
    }
}

fn clean_code(code: Option<String>) -> Result<Option<String>, ValidationError> {
    match code.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => {
            validate_condition_code(&c)?;
            Ok(Some(c))
        }
    }
}

/// Who may create groups: doctors and hospital administrators.
pub fn may_create_groups(user: &User) -> AppResult<()> {
    if matches!(user.role, Role::Doctor | Role::Admin) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "only doctors and hospital administrators create groups",
        ))
    }
}

/// Creates a group with `user` as its owner.
pub async fn create_group_as(app: &App, user: &User, fields: &NewGroupFields) -> AppResult<Group> {
    may_create_groups(user)?;
    let settings = fields.settings()?;
    let group = app
        .store
        .create_group(
            NewGroup {
                public_id: new_public_id()?,
                settings,
                owner: user.id,
            },
            app.now(),
        )
        .await?;
    tracing::info!(user = %user.id, group = %group.public_id, "group created");
    Ok(group)
}

/// Changes to a group's settings; what is `None` stays as it is. `condition_code: Some(None)`
/// clears the code.
#[derive(Default, Clone, Debug)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub condition: Option<String>,
    pub condition_code: Option<Option<String>>,
    pub city: Option<String>,
    pub language: Option<String>,
    pub description: Option<String>,
    pub rules: Option<String>,
    pub member_list: Option<String>,
}

/// The owner changes the group's settings, by the same rules as when it was created.
pub async fn update_group(app: &App, ctx: &GroupAccess, c: GroupChanges) -> AppResult<Group> {
    ctx.govern()?;
    let mut s = ctx.group.settings.clone();
    if let Some(v) = c.name {
        s.name = clean_line("name", &v, limits::GROUP_NAME)?;
    }
    if let Some(v) = c.condition {
        s.condition = clean_line("condition", &v, limits::CONDITION)?;
    }
    if let Some(v) = c.condition_code {
        s.condition_code = clean_code(v)?;
    }
    if let Some(v) = c.city {
        s.city = clean_line("city", &v, limits::CITY)?;
    }
    if let Some(v) = c.language {
        s.language = v.parse()?;
    }
    if let Some(v) = c.description {
        s.description = clean_text("description", &v, limits::DESCRIPTION, true)?;
    }
    if let Some(v) = c.rules {
        s.rules = clean_text("rules", &v, limits::RULES, true)?;
    }
    if let Some(v) = c.member_list {
        s.member_list = v.parse()?;
    }
    Ok(app
        .store
        .update_group_with(
            ctx.group.id,
            s,
            ctx.user.id.into(),
            app.now(),
            intents::for_members(
                app,
                &ctx.group,
                Intent::Group {
                    group: ctx.group.id,
                },
            )
            .await?,
        )
        .await?)
}

// ---- listing groups ----

/// The groups the account is an active member of, with its membership.
pub async fn my_groups(
    app: &App,
    user: &User,
    after: Option<i64>,
    limit: u32,
) -> AppResult<Vec<(Group, Member)>> {
    Ok(app.store.groups_of_user(user.id, after, limit).await?)
}

/// Every group of the node, with the administrator's own role where they are a member: for
/// hospital administrators.
pub async fn all_groups(
    app: &App,
    user: &User,
    after: Option<i64>,
    limit: u32,
) -> AppResult<Vec<(Group, Option<GroupRole>)>> {
    if !user.role.is_admin() {
        return Err(AppError::forbidden(
            "only hospital administrators list every group",
        ));
    }
    let groups = app.store.list_groups(after, limit).await?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let role = app
            .store
            .membership(g.id, user.id)
            .await?
            .filter(Member::is_active)
            .map(|m| m.role);
        out.push((g, role));
    }
    Ok(out)
}

/// The groups where a doctor may teach (post announcements), for the announcement form.
pub async fn teaching_groups(app: &App, user: &User) -> AppResult<Vec<Group>> {
    let groups = my_groups(app, user, None, SHORT_LIST).await?;
    Ok(groups
        .into_iter()
        .filter(|(_, m)| m.role.can_teach())
        .map(|(g, _)| g)
        .collect())
}

// ---- members ----

/// The group's members in one state, by id: moderators see every state, members the active ones
/// when the owner opened the list to them.
pub async fn members(
    app: &App,
    ctx: &GroupAccess,
    state: MemberState,
    after: Option<i64>,
    limit: u32,
) -> AppResult<Vec<Member>> {
    ctx.may_list_members(state)?;
    Ok(app
        .store
        .list_members(ctx.group.id, state, after, limit)
        .await?)
}

/// Requests to join, oldest first: for moderators.
pub async fn join_requests(
    app: &App,
    ctx: &GroupAccess,
    after: Option<i64>,
    limit: u32,
) -> AppResult<Vec<Member>> {
    ctx.moderate()?;
    Ok(app
        .store
        .list_members(ctx.group.id, MemberState::Pending, after, limit)
        .await?)
}

/// A moderator's reason for removing or banning someone: optional, as typed.
pub fn clean_reason(r: Option<String>) -> AppResult<Option<String>> {
    Ok(match r {
        None => None,
        Some(r) => {
            Some(clean_text("reason", &r, limits::BAN_REASON, true)?).filter(|r| !r.is_empty())
        }
    })
}

/// Removes (or bans) the member `mid`, a moderator's action logged with its reason. In a group
/// hosted elsewhere the host is asked (for a member of this node, by their actor there).
pub async fn remove_or_ban(
    app: &App,
    ctx: &GroupAccess,
    mid: i64,
    ban: bool,
    reason: Option<String>,
) -> AppResult<Outcome<Member>> {
    ctx.moderate()?;
    let t = app.store.member_by_id(ctx.group.id, mid).await?;
    ctx.check_outranks(&t)?;
    let reason = clean_reason(reason)?;
    if ctx.hosted_elsewhere() {
        let member = mirror_member_actor(app, ctx, &t).await?;
        let action = GroupActionKind::RemoveMember {
            member,
            ban,
            reason,
        };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    let m = apply_removal(
        app,
        &ctx.group,
        &t,
        ban,
        reason,
        ctx.user.id.into(),
        Vec::new(),
    )
    .await?;
    Ok(Outcome::Done(m))
}

/// Removes (or bans) the author of the post `pid`: the way a moderator acts on a member of
/// another node, whom this node knows by their posts.
pub async fn remove_author(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    ban: bool,
    reason: Option<String>,
) -> AppResult<Outcome<Member>> {
    ctx.moderate()?;
    let post = app.store.post_by_public_id(ctx.group.id, pid, None).await?;
    let reason = clean_reason(reason)?;
    let author = match (&post.author.actor_id, post.author.user_id) {
        (Some(actor), _) => actor.clone(),
        (None, Some(u)) => {
            let user = app.store.user_by_id(u).await?;
            crate::outbound::member_actor(app, &user, &ctx.group).await?
        }
        (None, None) => return Err(AppError::NotFound("member")),
    };
    if ctx.hosted_elsewhere() {
        let action = GroupActionKind::RemoveMember {
            member: author,
            ban,
            reason,
        };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    let t = member_by_actor(app, &ctx.group, &author).await?;
    ctx.check_outranks(&t)?;
    let m = apply_removal(
        app,
        &ctx.group,
        &t,
        ban,
        reason,
        ctx.user.id.into(),
        Vec::new(),
    )
    .await?;
    Ok(Outcome::Done(m))
}

/// Lifts the ban of the member `mid` (moderators).
pub async fn unban(app: &App, ctx: &GroupAccess, mid: i64) -> AppResult<Outcome<Member>> {
    ctx.moderate()?;
    let t = app.store.member_by_id(ctx.group.id, mid).await?;
    if ctx.hosted_elsewhere() {
        let member = mirror_member_actor(app, ctx, &t).await?;
        let action = GroupActionKind::Unban { member };
        return Ok(Outcome::SentToHost(actions::send(app, ctx, action).await?));
    }
    let m = apply_unban(app, &ctx.group, &t, ctx.user.id.into(), Vec::new()).await?;
    Ok(Outcome::Done(m))
}

/// The actor a member of a group mirrored here is known by at its host.
async fn mirror_member_actor(app: &App, ctx: &GroupAccess, m: &Member) -> AppResult<String> {
    if let Some(actor) = &m.actor_id {
        return Ok(actor.clone());
    }
    let Some(u) = m.user_id else {
        return Err(AppError::NotFound("member"));
    };
    let user = app.store.user_by_id(u).await?;
    crate::outbound::member_actor(app, &user, &ctx.group).await
}

/// The member of a group hosted here whom `actor` names: a member of another node by their
/// actor, or an account of this node by its actor (a person or a pseudonym).
pub(crate) async fn member_by_actor(app: &App, group: &Group, actor: &str) -> AppResult<Member> {
    if let Some(m) = app.store.remote_member(group.id, actor).await? {
        return Ok(m);
    }
    let local = crate::inbound::local_member_account(app, actor, group).await?;
    match local {
        Some(user) => app
            .store
            .membership(group.id, user)
            .await?
            .ok_or(AppError::NotFound("member")),
        None => Err(AppError::NotFound("member")),
    }
}

/// What a membership change tells the member's node (when the member belongs to another node)
/// and every member's node (the member count), to queue with the change.
async fn membership_intents(
    app: &App,
    group: &Group,
    m: &Member,
) -> AppResult<Vec<caremesh_store::NewOutboxEntry>> {
    if group.remote_actor_id.is_some() {
        return Ok(Vec::new());
    }
    let count = Intent::Group { group: group.id };
    let mut out = match &m.actor_id {
        Some(actor) => intents::for_members_but(app, group, count, actor).await?,
        None => intents::for_members(app, group, count).await?,
    };
    if let Some(actor) = &m.actor_id
        && m.state != MemberState::Pending
    {
        let peer = app.federation.partner_of(actor).await?;
        out.extend(
            Intent::Membership {
                group: group.id,
                member: m.id,
            }
            .entries(app, &[peer])?,
        );
    }
    Ok(out)
}

/// A moderator of a group hosted here (of this node, or of another: `by`) removes or bans a
/// member; the member's node is told with it.
pub(crate) async fn apply_removal(
    app: &App,
    group: &Group,
    target: &Member,
    ban: bool,
    reason: Option<String>,
    by: Acting,
    extra: Vec<caremesh_store::NewOutboxEntry>,
) -> AppResult<Member> {
    let mut outbox = membership_intents(app, group, target).await?;
    outbox.extend(extra);
    let m = app
        .store
        .remove_member_with(group.id, target.id, ban, reason, by, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(m)
}

/// A moderator of a group hosted here lifts a ban; the member's node is told with it.
pub(crate) async fn apply_unban(
    app: &App,
    group: &Group,
    target: &Member,
    by: Acting,
    extra: Vec<caremesh_store::NewOutboxEntry>,
) -> AppResult<Member> {
    let mut outbox = membership_intents(app, group, target).await?;
    outbox.extend(extra);
    let m = app
        .store
        .unban_member_with(group.id, target.id, by, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(m)
}

/// Appoints or dismisses a doctor or moderator (the owner).
pub async fn change_role(
    app: &App,
    ctx: &GroupAccess,
    mid: i64,
    role: GroupRole,
) -> AppResult<Member> {
    ctx.govern()?;
    if role == GroupRole::Owner {
        return Err(AppError::invalid(
            "role: must be doctor, moderator or member",
        ));
    }
    check_remote_role(app, &ctx.group, mid, role).await?;
    let t = app.store.member_by_id(ctx.group.id, mid).await?;
    let outbox = membership_intents(app, &ctx.group, &t).await?;
    let m = app
        .store
        .set_member_role_with(
            ctx.group.id,
            mid,
            role,
            ctx.user.id.into(),
            app.now(),
            outbox,
        )
        .await?;
    app.federation.wake();
    Ok(m)
}

/// A member of another node teaches in a group hosted here only with a credential that their
/// own hospital signed and that is valid now.
pub(crate) async fn check_remote_role(
    app: &App,
    group: &Group,
    member_id: i64,
    role: GroupRole,
) -> AppResult<()> {
    if !role.can_teach() {
        return Ok(());
    }
    let m = app.store.member_by_id(group.id, member_id).await?;
    let Some(actor) = &m.actor_id else {
        return Ok(());
    };
    let badge = app
        .federation
        .fresh_remote_badge(actor)
        .await
        .map_err(|e| {
            AppError::conflict(
                "credential_unverified",
                format!("the member's node did not answer: {e}"),
            )
        })?;
    if badge.status != BadgeStatus::Verified {
        return Err(AppError::conflict(
            "credential_unverified",
            format!(
                "only a doctor with a valid credential signed by their own hospital may teach here ({})",
                badge
                    .reason
                    .unwrap_or_else(|| format!("{:?}", badge.status).to_lowercase())
            ),
        ));
    }
    Ok(())
}

/// A member leaves the group; the host of a group hosted elsewhere is told.
pub async fn leave_as(app: &App, ctx: &GroupAccess) -> AppResult<()> {
    ctx.read()?;
    let outbox = if ctx.hosted_elsewhere() {
        crate::outbound::leave_entries(app, &ctx.group, &ctx.user).await?
    } else {
        intents::for_members(
            app,
            &ctx.group,
            Intent::Group {
                group: ctx.group.id,
            },
        )
        .await?
    };
    app.store
        .leave_group_with(ctx.group.id, ctx.user.id, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(())
}

// ---- names for one group ----

/// Whether the asker may choose a name in this group: active members who are patients (doctors
/// and staff are known by their account's name, under which the hospital vouches for them).
pub fn may_choose_name(ctx: &GroupAccess) -> AppResult<()> {
    ctx.read()?;
    if ctx.user.role != Role::Patient {
        return Err(AppError::forbidden(
            "doctors and staff are shown by their account's name in every group",
        ));
    }
    Ok(())
}

/// A name for one group, by the rules of account display names, with control characters and
/// direction overrides removed.
pub fn clean_member_name(name: &str) -> Result<String, ValidationError> {
    let name = clean_line(
        "display_name",
        name,
        caremesh_domain::account::DISPLAY_NAME_MAX,
    )?;
    validate_display_name(&name)?;
    Ok(name)
}

/// Checks and stores a member's name for one group. In a group mirrored from another node the
/// name is the member's pseudonym there, changed together.
pub async fn set_member_name(app: &App, ctx: &GroupAccess, name: &str) -> AppResult<Member> {
    may_choose_name(ctx)?;
    let name = clean_member_name(name)?;
    // In a group hosted elsewhere the host is told (an `Update` of the pseudonym) with it.
    let outbox = crate::outbound::rename_entries(app, &ctx.group, &ctx.user).await?;
    let m = app
        .store
        .set_member_name_with(ctx.group.id, ctx.user.id, name, app.now(), outbox)
        .await?;
    app.federation.wake();
    Ok(m)
}

// ---- joining ----

/// Asks to join the group `gid`, with an optional message to its moderators. Asking needs the
/// group's id, which only its members and invite links give out; the group's content stays
/// hidden until a moderator approves.
pub async fn request_join(
    app: &App,
    user: &User,
    gid: &str,
    message: Option<String>,
) -> AppResult<Member> {
    let group = app.store.group_by_public_id(gid).await.map_err(|e| {
        if e.is_not_found() {
            group_not_found()
        } else {
            e.into()
        }
    })?;
    let message = match message {
        None => None,
        Some(m) => {
            Some(clean_text("message", &m, limits::JOIN_MESSAGE, true)?).filter(|m| !m.is_empty())
        }
    };
    Ok(app
        .store
        .request_join(group.id, user.id, message, app.now())
        .await?)
}

/// Approves or rejects the join request of the member `mid` (moderators); a remote member's node
/// is told the answer.
pub async fn decide_join(
    app: &App,
    ctx: &GroupAccess,
    mid: i64,
    approve: bool,
) -> AppResult<Member> {
    ctx.moderate()?;
    let t = app.store.member_by_id(ctx.group.id, mid).await?;
    // The answer to a member of another node, and the new member count for every member's
    // node, go with the decision.
    let mut outbox = Vec::new();
    if let Some(actor) = &t.actor_id {
        outbox.extend(
            app.federation
                .answer_entries(&ctx.group, actor, approve)
                .await?,
        );
    }
    if approve {
        outbox.extend(
            intents::for_members(
                app,
                &ctx.group,
                Intent::Group {
                    group: ctx.group.id,
                },
            )
            .await?,
        );
    }
    let m = app
        .store
        .decide_join_with(
            ctx.group.id,
            mid,
            approve,
            ctx.user.id.into(),
            app.settings.max_members,
            app.now(),
            outbox,
        )
        .await?;
    app.federation.wake();
    if approve
        && let Some(actor) = &m.actor_id
        && let Err(e) = crate::outbound::backfill_node(app, &ctx.group, actor).await
    {
        // The node's first member sees the group's recent threads from here on; what could
        // not be queued now reaches it with the next posts.
        tracing::warn!(error = %e, %actor, "cannot queue the group's recent threads");
    }
    Ok(m)
}

// ---- what partner nodes fetch ----

/// A group hosted here as partner nodes fetch it (its actor document); mirrors of other nodes'
/// groups are not served. The caller has checked the request's signature.
pub async fn actor_document(app: &App, gid: &str) -> AppResult<serde_json::Value> {
    let group = app.store.group_by_public_id(gid).await?;
    if group.remote_actor_id.is_some() {
        return Err(group_not_found());
    }
    Ok(app.federation.group_document(&group).await?)
}

/// A patient's per-group pseudonym as partner nodes fetch it (its actor document). The caller
/// has checked the request's signature.
pub async fn pseudonym_document(app: &App, id: &str) -> AppResult<serde_json::Value> {
    let p = app
        .store
        .pseudonym(id)
        .await?
        .ok_or(AppError::NotFound("actor"))?;
    Ok(app.federation.pseudonym_document(&p).await?)
}
