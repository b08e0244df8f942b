//! Groups hosted by partner hospitals, from this node's side: asking to join one, and what the
//! pages show about partner hospitals on the way (which hospital a group's address belongs to,
//! its name, where a visitor of another hospital continues from an invite link).

use caremesh_domain::{
    Language, MemberListVisibility, Role, ValidationError, group::limits, validate_display_name,
};
use caremesh_federation::activity::AS;
use caremesh_federation::entries_for;
use caremesh_federation::urls::origin_of_str;
use caremesh_store::{Group, GroupInvite, GroupSettings, Member, Partner, Pseudonym, User};
use serde_json::{Value, json};

use crate::{App, AppError, AppResult};

/// The name an account shows in a group hosted elsewhere: a patient's own choice for that group
/// (only this name crosses to the other nodes about them), or a doctor's or staff member's
/// account name, under which their hospital vouches for them.
pub fn join_name(user: &User, typed: Option<&str>) -> Result<String, ValidationError> {
    if user.role != Role::Patient {
        return Ok(user.display_name.clone());
    }
    let name = typed.map(str::trim).unwrap_or("");
    validate_display_name(name)?;
    Ok(name.to_owned())
}

/// Asks to join a group hosted by a partner hospital: patients as a per-group pseudonym,
/// doctors and staff as themselves. The membership is pending until the host answers (at once
/// with a valid invite token of the host's).
pub async fn join(
    app: &App,
    user: &User,
    group_url: &str,
    display_name: Option<&str>,
    invite_token: Option<&str>,
) -> AppResult<(Group, Member)> {
    let name = join_name(user, display_name)?;
    let invite = invite_token.map(str::trim).filter(|t| !t.is_empty());
    let group_url = group_url.trim();
    let fed = &app.federation;
    let host = fed.partner_of(group_url).await?;
    let doc = fed.client.get_json(group_url).await?;
    if doc["id"].as_str() != Some(group_url) || doc["type"] != "Group" {
        return Err(AppError::invalid(format!(
            "group: {group_url} is not a group"
        )));
    }
    let (settings, count) = mirror_settings(&doc);
    let now = app.now();
    let group = app
        .store
        .upsert_mirror_group(group_url, &crate::new_public_id()?, settings.clone(), now)
        .await?;
    let group = app
        .store
        .refresh_mirror_group(group.id, settings, count, now)
        .await?;
    // Patients join as a pseudonym made for this group; doctors and staff as themselves, so
    // that their hospital's credential goes with them.
    let (actor, pseudonym) = if user.role == Role::Patient {
        let wanted = Pseudonym {
            id: 0,
            public_id: crate::new_public_id()?,
            user_id: user.id,
            group_id: group.id,
            display_name: name.clone(),
            created_at: now,
        };
        let public_id = match app.store.pseudonym_of(user.id, group.id).await? {
            Some(p) => p.public_id,
            None => wanted.public_id.clone(),
        };
        (fed.urls.pseudonym(&public_id), Some(wanted))
    } else {
        (fed.urls.person(&user.username), None)
    };
    let mut follow = json!({
        "@context": AS,
        // A random id: one made of the pseudonym and the time would tell the host when the
        // patient asked to join (and link their requests).
        "id": fed.urls.activity(&format!("follow-{}", crate::new_public_id()?)),
        "type": "Follow",
        "actor": actor,
        "object": group_url,
    });
    if let Some(t) = invite {
        follow["caremesh:inviteToken"] = json!(t);
    }
    let entries = entries_for(&follow, std::slice::from_ref(&host));
    let member = app
        .store
        .join_remote_group(user.id, group.id, pseudonym, entries, now)
        .await?;
    fed.wake();
    Ok((group, member))
}

/// A mirrored group's settings and member count, from its host's `Group` document.
pub(crate) fn mirror_settings(doc: &Value) -> (GroupSettings, Option<u32>) {
    let text = |k: &str, max: usize| -> String {
        doc[k]
            .as_str()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(max)
            .collect()
    };
    let language = match doc["caremesh:language"].as_str() {
        Some("en") => Language::En,
        _ => Language::ZhCn,
    };
    let condition_code = doc["caremesh:conditionCode"]
        .as_str()
        .filter(|c| caremesh_domain::validate_condition_code(c).is_ok())
        .map(str::to_owned);
    let count = doc["caremesh:memberCount"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok());
    (
        GroupSettings {
            name: text("name", limits::GROUP_NAME),
            condition: text("caremesh:condition", limits::CONDITION),
            condition_code,
            city: text("caremesh:city", limits::CITY),
            language,
            description: text("summary", limits::DESCRIPTION),
            rules: String::new(),
            member_list: MemberListVisibility::Moderators,
        },
        count,
    )
}

/// The partner hospital a group's address belongs to, or why there is none.
pub async fn partner_of(app: &App, group_url: &str) -> AppResult<Partner> {
    let url = url::Url::parse(group_url)
        .ok()
        .filter(|u| origin_of_str(u.as_str()).is_some())
        .ok_or_else(|| AppError::invalid("group: not a group's address"))?;
    // The partner's scheme, host and port: a partner listed as HTTPS is never reached over HTTP.
    app.federation.partners.for_url(&url).await?.ok_or_else(|| {
        let origin = origin_of_str(group_url).unwrap_or_default();
        AppError::forbidden(format!(
            "{origin} is not a partner hospital of this one; ask your hospital's administrator"
        ))
    })
}

/// A partner hospital's name, as its node actor says: from what this node knows, or (with
/// `fetch`) asked of the partner; its address when neither tells.
pub async fn hospital_name(app: &App, p: &Partner, fetch: bool) -> String {
    let actor = format!("{}actor", p.base_url);
    let doc = match app.store.remote_actor(&actor).await {
        Ok(Some(a)) => Some(a.document),
        _ if fetch => app
            .federation
            .resolver
            .fetch_actor(&actor)
            .await
            .ok()
            .map(|a| a.document),
        _ => None,
    };
    doc.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
        .and_then(|d| d["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| p.authority.clone())
}

/// What a group's invite link offers a visitor who has no account on this node: the group, its
/// address as the partner hospitals know it, and those hospitals (with their names), where the
/// visitor may have an account to join from.
pub struct InviteElsewhere {
    pub group: Group,
    pub group_url: String,
    pub partners: Vec<(Partner, String)>,
}

/// The group an invite link leads to, for visitors who are patients of a partner hospital.
pub async fn invite_elsewhere(app: &App, invite: &GroupInvite) -> AppResult<InviteElsewhere> {
    let group = crate::invites::group_of(app, invite).await?;
    let group_url = app.federation.urls.group(&group.public_id);
    let mut partners = Vec::new();
    for p in app.federation.partners.all().await? {
        let name = hospital_name(app, &p, false).await;
        partners.push((p, name));
    }
    Ok(InviteElsewhere {
        group,
        group_url,
        partners,
    })
}
