//! Actors of other nodes: their names, their `Update`s, and the local accounts behind this
//! node's own actors in groups hosted elsewhere.

use caremesh_domain::UserId;
use caremesh_store::{Group, StoreError};
use serde_json::Value;

use crate::{App, AppResult};

/// The name a remote actor shows, from its stored or freshly fetched actor document.
pub(crate) async fn remote_actor_name(app: &App, actor: &str) -> String {
    let doc = match app.store.remote_actor(actor).await {
        Ok(Some(a)) => Some(a.document),
        _ => app
            .federation
            .resolver
            .fetch_actor(actor)
            .await
            .ok()
            .map(|a| a.document),
    };
    doc.and_then(|d| serde_json::from_str::<Value>(&d).ok())
        .and_then(|d| d["name"].as_str().map(|s| s.chars().take(64).collect()))
        .unwrap_or_else(|| "—".to_owned())
}

/// The local account behind an actor that is a member of a mirrored group: a pseudonym of that
/// group, or a person of this node.
pub(crate) async fn local_member_account(
    app: &App,
    actor: &str,
    group: &Group,
) -> AppResult<Option<UserId>> {
    let urls = &app.federation.urls;
    if let Some(pid) = actor.strip_prefix(&urls.pseudonym("")) {
        return Ok(app
            .store
            .pseudonym(pid)
            .await?
            .filter(|p| p.group_id == group.id)
            .map(|p| p.user_id));
    }
    if let Some(username) = actor.strip_prefix(&urls.person("")) {
        return match app.store.user_by_username(username).await {
            Ok(u) => Ok(Some(u.id)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    Ok(None)
}

/// An actor of another node updated itself: its keys and credential are fetched again, its new
/// name is shown in the groups here it is a member of, and a host passes the `Update` on to its
/// groups' other members' nodes (`forward`).
pub(super) async fn updated(
    app: &App,
    activity: &Value,
    actor: &str,
    from: &str,
    forward: bool,
) -> AppResult<()> {
    let fed = &app.federation;
    fed.inbox.refresh_actor(actor).await;
    fed.forget_badge(actor);
    let Some(doc) = app.store.remote_actor(actor).await? else {
        return Ok(());
    };
    if let Some(group) = app.store.group_by_remote_actor(actor).await? {
        // The host of a group mirrored here: show it as the host has it.
        if let Ok(d) = serde_json::from_str::<Value>(&doc.document) {
            let (settings, count) = crate::remote::mirror_settings(&d);
            app.store
                .refresh_mirror_group(group.id, settings, count, app.now())
                .await?;
        }
        return Ok(());
    }
    let Some(name) = serde_json::from_str::<Value>(&doc.document)
        .ok()
        .and_then(|d| {
            d["name"]
                .as_str()
                .map(|n| n.chars().take(64).collect::<String>())
        })
    else {
        return Ok(());
    };
    app.store.rename_remote_actor(actor, &name).await?;
    if forward {
        let mut entries = Vec::new();
        for group in app.store.groups_with_remote_member(actor).await? {
            entries.extend(
                crate::outbound::announce_entries(app, &group, activity, Some(from)).await?,
            );
        }
        app.store.enqueue(entries, app.now()).await?;
        fed.wake();
    }
    Ok(())
}
