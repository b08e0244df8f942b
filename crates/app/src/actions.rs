//! Acting on a group from a member's node. A group's doctors and moderators may belong to
//! another hospital than the group's host. What they decide about the group (pin, accept an
//! answer, remove a post or a member, keep the library) is the host's to apply: their node checks
//! their role as the host last said it and sends the host a group action
//! (`caremesh:Pin`, `caremesh:RemovePost`, …, see `spec/federation.md`), recording it as a
//! request; the host checks the role against its own records (and, for teaching, the doctor's
//! credential), applies it with the same use-case as for its own staff, tells every node, and
//! answers `Accept`, or `Reject` with a code and a reason that the actor's node shows them.
//! Nothing changes on the actor's node until the host's decision arrives, so nodes never
//! disagree.

use caremesh_domain::Role;
use caremesh_federation::activity::{self, ActionAnswer, GroupAction, GroupActionKind};
use caremesh_federation::entries_for;
use caremesh_store::{Acting, Group, GroupRequest, Member, NewGroupRequest, NewOutboxEntry, Post};

use crate::access::{remote_credential, rules};
use crate::inbound::{hosted_group, short_hash};
use crate::{App, AppError, AppResult, GroupAccess};

/// What a use-case did: done here, or asked of the group's host.
#[derive(Clone, Debug)]
pub enum Outcome<T> {
    Done(T),
    /// The group is hosted elsewhere: the host was asked, and answers later.
    SentToHost(GroupRequest),
}

impl<T> Outcome<T> {
    pub fn done(self) -> Option<T> {
        match self {
            Self::Done(t) => Some(t),
            Self::SentToHost(_) => None,
        }
    }
}

/// The action's name as requests list it.
fn action_name(a: &GroupActionKind) -> &'static str {
    match a {
        GroupActionKind::Pin { pinned: true, .. } => "pin",
        GroupActionKind::Pin { pinned: false, .. } => "unpin",
        GroupActionKind::AcceptAnswer { reply: Some(_), .. } => "accept_answer",
        GroupActionKind::AcceptAnswer { reply: None, .. } => "clear_answer",
        GroupActionKind::RemovePost { .. } => "remove_post",
        GroupActionKind::RemoveMember { ban: false, .. } => "remove_member",
        GroupActionKind::RemoveMember { ban: true, .. } => "ban_member",
        GroupActionKind::Unban { .. } => "unban_member",
        GroupActionKind::CreateFolder { .. } => "create_folder",
        GroupActionKind::DeleteFolder { .. } => "delete_folder",
        GroupActionKind::SaveToLibrary { .. } => "save_to_library",
        GroupActionKind::RemoveFromLibrary { .. } => "remove_from_library",
    }
}

fn action_object(a: &GroupActionKind) -> Option<String> {
    match a {
        GroupActionKind::Pin { post, .. }
        | GroupActionKind::RemovePost { post, .. }
        | GroupActionKind::SaveToLibrary { post, .. }
        | GroupActionKind::RemoveFromLibrary { post, .. } => Some(post.clone()),
        GroupActionKind::AcceptAnswer { question, .. } => Some(question.clone()),
        GroupActionKind::RemoveMember { member, .. } | GroupActionKind::Unban { member } => {
            Some(member.clone())
        }
        GroupActionKind::CreateFolder { name } | GroupActionKind::DeleteFolder { name } => {
            Some(name.clone())
        }
    }
}

/// Asks the host of a group mirrored here to do something: the request is recorded and the
/// action queued for the host in one transaction. The caller has checked the role as this node
/// knows it.
pub(crate) async fn send(
    app: &App,
    ctx: &GroupAccess,
    action: GroupActionKind,
) -> AppResult<GroupRequest> {
    let fed = &app.federation;
    let Some(group_url) = &ctx.group.remote_actor_id else {
        return Err(AppError::internal("a group action for a group hosted here"));
    };
    // Doctors and staff act as themselves (only they moderate or teach across nodes).
    if ctx.user.role == Role::Patient {
        return Err(AppError::forbidden(
            "patients do not act for a group hosted by another hospital",
        ));
    }
    let actor = fed.urls.person(&ctx.user.username);
    let id = fed
        .urls
        .activity(&format!("action-{}", crate::new_public_id()?));
    let doc = activity::group_action(&id, &actor, group_url, &action);
    let host = fed.partner_of(group_url).await?;
    let request = app
        .store
        .add_group_request(
            NewGroupRequest {
                group_id: ctx.group.id,
                user: ctx.user.id,
                activity_id: id,
                action: action_name(&action).to_owned(),
                object: action_object(&action),
                created_at: app.now(),
            },
            entries_for(&doc, &[host]),
        )
        .await?;
    fed.wake();
    Ok(request)
}

/// The requests an account sent about a group hosted elsewhere, newest first, with the host's
/// answers.
pub async fn requests(app: &App, ctx: &GroupAccess, limit: u32) -> AppResult<Vec<GroupRequest>> {
    ctx.read()?;
    Ok(app
        .store
        .group_requests(ctx.group.id, ctx.user.id, None, limit)
        .await?)
}

/// On the host: a doctor or moderator of another node acts on a group hosted here. The role is
/// checked against the host's records, the action applied with the same use-case as for the
/// host's own staff (its effects and the `Accept` in one transaction), or refused with a
/// `Reject` saying why. A failure of this node's store is returned (the sender retries).
pub(super) async fn apply(app: &App, action: &GroupAction) -> AppResult<()> {
    let fed = &app.federation;
    let peer = fed.partner_of(&action.actor).await?;
    let answer_id = fed
        .urls
        .activity(&format!("answer-{}", short_hash(&action.id)));
    let Some(group) = hosted_group(app, &action.group).await? else {
        return Ok(());
    };
    let group_url = fed.urls.group(&group.public_id);
    let accept = activity::action_answer(&answer_id, &group_url, &action.id, None);
    let accepted = entries_for(&accept, std::slice::from_ref(&peer));
    match perform(app, &group, action, accepted).await {
        Ok(()) => {}
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            tracing::info!(action = %action.id, error = %e, "a group action is refused");
            let reject = activity::action_answer(
                &answer_id,
                &group_url,
                &action.id,
                Some((e.code(), &e.to_string())),
            );
            app.store
                .enqueue(entries_for(&reject, &[peer]), app.now())
                .await?;
        }
    }
    fed.wake();
    Ok(())
}

async fn perform(
    app: &App,
    group: &Group,
    action: &GroupAction,
    accepted: Vec<NewOutboxEntry>,
) -> AppResult<()> {
    // The member of another node acts with the role the host's records give them.
    let member = app
        .store
        .remote_member(group.id, &action.actor)
        .await?
        .filter(Member::is_active)
        .ok_or_else(|| AppError::forbidden("only members of the group act on it"))?;
    let role = Some(member.role);
    let by = Acting::Member(member.id);
    match &action.action {
        GroupActionKind::Pin { post, pinned } => {
            rules::teach(role)?;
            remote_credential(app, &action.actor).await?;
            let post = post_here(app, group, post).await?;
            crate::posts::apply_pin(app, group, &post, *pinned, accepted).await?;
        }
        GroupActionKind::AcceptAnswer { question, reply } => {
            rules::teach(role)?;
            remote_credential(app, &action.actor).await?;
            let question = post_here(app, group, question).await?;
            let reply = match reply {
                Some(r) => Some(post_here(app, group, r).await?),
                None => None,
            };
            crate::posts::apply_accept(app, group, &question, reply.as_ref(), accepted).await?;
        }
        GroupActionKind::RemovePost { post, reason } => {
            rules::moderate(role, false)?;
            let post = post_here(app, group, post).await?;
            let reason = crate::posts::clean_reason(reason.clone())?;
            crate::posts::apply_removal(app, group, &post, by, reason, accepted).await?;
        }
        GroupActionKind::RemoveMember {
            member,
            ban,
            reason,
        } => {
            rules::moderate(role, false)?;
            let target = crate::groups::member_by_actor(app, group, member).await?;
            rules::outranks(rules::acting_rank(role, false), &target)?;
            let reason = crate::groups::clean_reason(reason.clone())?;
            crate::groups::apply_removal(app, group, &target, *ban, reason, by, accepted).await?;
        }
        GroupActionKind::Unban { member } => {
            rules::moderate(role, false)?;
            let target = crate::groups::member_by_actor(app, group, member).await?;
            crate::groups::apply_unban(app, group, &target, by, accepted).await?;
        }
        GroupActionKind::CreateFolder { name } => {
            rules::curate(role)?;
            crate::library::apply_create_folder(app, group, name, by, accepted).await?;
        }
        GroupActionKind::DeleteFolder { name } => {
            rules::curate(role)?;
            let folder = crate::library::folder_named(app, group, name).await?;
            crate::library::apply_delete_folder(app, group, folder.id, accepted).await?;
        }
        GroupActionKind::SaveToLibrary { folder, post } => {
            rules::curate(role)?;
            let folder = crate::library::folder_named(app, group, folder).await?;
            let post = post_here(app, group, post).await?;
            crate::library::apply_add_post(app, group, folder.id, &post, None, by, accepted)
                .await?;
        }
        GroupActionKind::RemoveFromLibrary { folder, post } => {
            rules::curate(role)?;
            let folder = crate::library::folder_named(app, group, folder).await?;
            let post = post_here(app, group, post).await?;
            let item = crate::library::item_of_post(app, group, folder.id, &post).await?;
            crate::library::apply_remove_item(app, group, item, accepted).await?;
        }
    }
    Ok(())
}

/// A post of a group hosted here, by the id every node knows it by.
async fn post_here(app: &App, group: &Group, post_ref: &str) -> AppResult<Post> {
    crate::outbound::post_by_ref(app, group, post_ref)
        .await?
        .ok_or(AppError::NotFound("post"))
}

/// On the actor's node: the host answered a request.
pub(super) async fn answered(app: &App, a: &ActionAnswer) -> AppResult<()> {
    let Some(group) = app.store.group_by_remote_actor(&a.group).await? else {
        return Ok(());
    };
    app.store
        .answer_group_request(
            group.id,
            &a.action,
            a.accepted,
            a.code.clone(),
            a.reason.clone(),
            app.now(),
        )
        .await?;
    Ok(())
}
