//! A group's invite links (shown as QR codes): moderators create, list and withdraw them; an
//! account that follows one sees what it leads to and joins the group with it.
//!
//! One rule for every surface: a link is valid for at most [`MAX_VALID_HOURS`] (90 days) and
//! used at most [`MAX_USES`] times, or without limit when left out. The JSON API takes the
//! validity in hours, the pages in days; both come to [`create`].

use base64::Engine as _;
use caremesh_domain::{GroupRole, clean_line, group::limits};
use caremesh_store::{Group, GroupInvite, InviteState, Member, NewGroupInvite, User};

use crate::{App, AppError, AppResult, GroupAccess};

/// The longest validity of an invite link: 90 days.
pub const MAX_VALID_HOURS: i64 = 90 * 24;
/// The most uses of one invite link.
pub const MAX_USES: u32 = 10_000;

/// An invite link as a moderator asks for it.
#[derive(Default, Clone, Debug)]
pub struct NewInvite {
    /// Who the link is for (shown to moderators only).
    pub label: Option<String>,
    /// 1 to [`MAX_VALID_HOURS`]; without it the link does not expire.
    pub valid_hours: Option<i64>,
    /// 1 to [`MAX_USES`]; without it the link has no use limit.
    pub max_uses: Option<u32>,
}

impl NewInvite {
    /// A validity given in days (the pages' form), in hours.
    pub fn days_to_hours(days: i64) -> i64 {
        days.saturating_mul(24)
    }
}

/// Checks the limits of a new invite link: the one rule both the API and the pages apply.
pub fn check_limits(valid_hours: Option<i64>, max_uses: Option<u32>) -> AppResult<()> {
    if let Some(h) = valid_hours
        && !(1..=MAX_VALID_HOURS).contains(&h)
    {
        return Err(AppError::invalid(format!(
            "valid_hours: must be between 1 and {MAX_VALID_HOURS} (an invite link is valid for at most 90 days)"
        )));
    }
    if let Some(n) = max_uses
        && !(1..=MAX_USES).contains(&n)
    {
        return Err(AppError::invalid(format!(
            "max_uses: must be between 1 and {MAX_USES}"
        )));
    }
    Ok(())
}

/// A moderator creates an invite link for the group.
pub async fn create(app: &App, ctx: &GroupAccess, new: NewInvite) -> AppResult<GroupInvite> {
    ctx.moderate()?;
    if ctx.group.remote_actor_id.is_some() {
        return Err(AppError::forbidden_code(
            "hosted_elsewhere",
            "this group is hosted by another hospital: its invite links are made there",
        ));
    }
    let label = match new.label {
        None => None,
        Some(l) => Some(clean_line("label", &l, limits::INVITE_LABEL)?),
    };
    check_limits(new.valid_hours, new.max_uses)?;
    let now = app.now();
    Ok(app
        .store
        .create_group_invite(NewGroupInvite {
            group_id: ctx.group.id,
            token: new_token()?,
            label,
            created_by: ctx.user.id,
            created_at: now,
            expires_at: new.valid_hours.map(|h| now.plus_secs(h * 3600)),
            max_uses: new.max_uses,
        })
        .await?)
}

/// The group's invite links, newest first: for moderators.
pub async fn list(
    app: &App,
    ctx: &GroupAccess,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<GroupInvite>> {
    ctx.moderate()?;
    Ok(app
        .store
        .list_group_invites(ctx.group.id, before, limit)
        .await?)
}

/// One of the group's invite links: for moderators.
pub async fn get(app: &App, ctx: &GroupAccess, iid: i64) -> AppResult<GroupInvite> {
    ctx.moderate()?;
    Ok(app.store.group_invite_by_id(ctx.group.id, iid).await?)
}

/// A moderator withdraws an invite link.
pub async fn revoke(app: &App, ctx: &GroupAccess, iid: i64) -> AppResult<GroupInvite> {
    ctx.moderate()?;
    Ok(app
        .store
        .revoke_group_invite(ctx.group.id, iid, app.now())
        .await?)
}

/// The address an invite link (and its QR code) carries.
pub fn url(app: &App, token: &str) -> String {
    format!("{}group-invite/{token}", app.settings.base_url)
}

/// What an invite link leads to, for an account deciding whether to join.
pub struct Preview {
    pub invite: GroupInvite,
    pub group: Group,
    /// The account's role when it is an active member already.
    pub role: Option<GroupRole>,
    pub state: InviteState,
}

/// The invite link `token` (any state), or `NotFound`.
pub async fn by_token(app: &App, token: &str) -> AppResult<GroupInvite> {
    Ok(app.store.group_invite_by_token(token).await?)
}

/// What the invite link `token` leads to, as `user` sees it.
pub async fn preview(app: &App, user: &User, token: &str) -> AppResult<Preview> {
    let invite = by_token(app, token).await?;
    let group = app.store.group_by_id(invite.group_id).await?;
    let role = app
        .store
        .membership(group.id, user.id)
        .await?
        .filter(Member::is_active)
        .map(|m| m.role);
    Ok(Preview {
        state: invite.state(app.now()),
        invite,
        group,
        role,
    })
}

/// The group an invite link leads to, for a visitor who is not logged in.
pub async fn group_of(app: &App, invite: &GroupInvite) -> AppResult<Group> {
    Ok(app.store.group_by_id(invite.group_id).await?)
}

/// An invite link that is not usable any more is gone, saying why.
pub fn check_usable(state: InviteState) -> AppResult<()> {
    match state {
        InviteState::Usable => Ok(()),
        InviteState::Expired => Err(AppError::gone(
            "invite_expired",
            "this invite link has expired; ask the group for a new one",
        )),
        InviteState::UsedUp => Err(AppError::gone(
            "invite_used",
            "this invite link has been used up; ask the group for a new one",
        )),
        InviteState::Revoked => Err(AppError::gone(
            "invite_revoked",
            "this invite link has been withdrawn",
        )),
    }
}

/// `user` joins the group with the invite link `token`: expired, used-up and withdrawn links are
/// gone; the group's member limit holds.
pub async fn accept(app: &App, user: &User, token: &str) -> AppResult<(Group, Member)> {
    let now = app.now();
    let invite = by_token(app, token).await?;
    check_usable(invite.state(now))?;
    Ok(app
        .store
        .join_by_invite(token, user.id, app.settings.max_members, now)
        .await?)
}

/// A random, URL-safe token for an invite link (256 bits).
fn new_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use caremesh_domain::{MemberState, Role};

    use super::*;
    use crate::group_fixtures::{Node, node};

    /// A group with its owner (a doctor), a moderator and a member.
    async fn group_with_staff(n: &Node) -> (Group, User, User, User) {
        let doctor = n.user("dr.wang", Role::Doctor).await;
        let group = n.group(&doctor, "Stroke rehabilitation").await;
        let owner = n.access(&doctor, &group).await;
        let invite = create(&n.app, &owner, NewInvite::default()).await.unwrap();
        let moderator = n.user("nurse.li", Role::Staff).await;
        let member = n.user("patient.zhao", Role::Patient).await;
        for u in [&moderator, &member] {
            accept(&n.app, u, &invite.token).await.unwrap();
        }
        let m = n.access(&moderator, &group).await.member.unwrap();
        crate::groups::change_role(&n.app, &owner, m.id, GroupRole::Moderator)
            .await
            .unwrap();
        (group, doctor, moderator, member)
    }

    #[test]
    fn the_pages_days_and_the_apis_hours_meet_the_same_limit() {
        // The API's hours.
        assert!(check_limits(Some(1), None).is_ok());
        assert!(check_limits(Some(2160), None).is_ok());
        // The pages' days, as they pass them.
        assert!(check_limits(Some(NewInvite::days_to_hours(1)), None).is_ok());
        assert!(check_limits(Some(NewInvite::days_to_hours(90)), None).is_ok());
        let api = check_limits(Some(2161), None).unwrap_err();
        let page = check_limits(Some(NewInvite::days_to_hours(91)), None).unwrap_err();
        assert_eq!(api.code(), "invalid_field");
        assert_eq!(api.to_string(), page.to_string(), "one rule, one message");
        for hours in [
            0,
            -1,
            NewInvite::days_to_hours(0),
            NewInvite::days_to_hours(-3),
        ] {
            assert!(check_limits(Some(hours), None).is_err(), "{hours} hours");
        }
        // A number of days that overflows when turned into hours is refused, not wrapped.
        assert!(check_limits(Some(NewInvite::days_to_hours(i64::MAX)), None).is_err());
        assert!(check_limits(None, Some(1)).is_ok());
        assert!(check_limits(None, Some(10_000)).is_ok());
        for uses in [0, 10_001] {
            let e = check_limits(None, Some(uses)).unwrap_err();
            assert!(e.to_string().starts_with("max_uses:"), "{e}");
        }
        assert!(check_limits(None, None).is_ok(), "no expiry and no limit");
    }

    #[tokio::test]
    async fn a_moderator_creates_a_link_valid_for_ninety_days_and_no_more() {
        let n = node().await;
        let (group, _doctor, moderator, _member) = group_with_staff(&n).await;
        let ctx = n.access(&moderator, &group).await;
        let before = list(&n.app, &ctx, None, 50).await.unwrap().len();
        let ninety_days = NewInvite {
            label: Some(" 门诊 ".into()),
            valid_hours: Some(NewInvite::days_to_hours(90)),
            max_uses: Some(10_000),
        };
        let made = create(&n.app, &ctx, ninety_days).await.unwrap();
        let stored = get(&n.app, &ctx, made.id).await.unwrap();
        assert_eq!(stored.label.as_deref(), Some("门诊"));
        assert_eq!(stored.max_uses, Some(10_000));
        assert_eq!(
            stored.expires_at,
            Some(n.app.now().plus_secs(90 * 24 * 3600))
        );
        for refused in [
            NewInvite {
                valid_hours: Some(NewInvite::days_to_hours(91)),
                ..NewInvite::default()
            },
            NewInvite {
                valid_hours: Some(2161),
                ..NewInvite::default()
            },
            NewInvite {
                max_uses: Some(10_001),
                ..NewInvite::default()
            },
        ] {
            let e = create(&n.app, &ctx, refused).await.unwrap_err();
            assert!(matches!(e, AppError::Invalid { .. }), "{e:?}");
        }
        let after = list(&n.app, &ctx, None, 50).await.unwrap();
        assert_eq!(after.len(), before + 1, "refused links are not stored");
    }

    #[tokio::test]
    async fn the_copy_of_a_group_hosted_elsewhere_has_no_links_of_this_node() {
        let n = node().await;
        let admin = n.user("admin", Role::Admin).await;
        let mirror = n
            .app
            .store
            .upsert_mirror_group(
                "http://127.0.0.2:9/groups/g1",
                "m1",
                caremesh_store::GroupSettings {
                    name: "Heart failure".into(),
                    condition: "Heart failure".into(),
                    condition_code: None,
                    city: "Tangshan".into(),
                    language: caremesh_domain::Language::ZhCn,
                    description: String::new(),
                    rules: String::new(),
                    member_list: caremesh_domain::MemberListVisibility::Moderators,
                },
                n.app.now(),
            )
            .await
            .unwrap();
        // An administrator may manage any group of this node, but not admit members to one
        // hosted elsewhere: only its host does.
        let ctx = n.access(&admin, &mirror).await;
        let e = create(&n.app, &ctx, NewInvite::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "hosted_elsewhere");
        assert!(list(&n.app, &ctx, None, 50).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn members_cannot_make_links_and_gone_links_admit_nobody() {
        let n = node().await;
        let (group, doctor, moderator, member) = group_with_staff(&n).await;
        let as_member = n.access(&member, &group).await;
        let e = create(&n.app, &as_member, NewInvite::default())
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");

        let ctx = n.access(&moderator, &group).await;
        let expiring = create(
            &n.app,
            &ctx,
            NewInvite {
                valid_hours: Some(1),
                ..NewInvite::default()
            },
        )
        .await
        .unwrap();
        let once = create(
            &n.app,
            &ctx,
            NewInvite {
                max_uses: Some(1),
                ..NewInvite::default()
            },
        )
        .await
        .unwrap();
        let withdrawn = create(&n.app, &ctx, NewInvite::default()).await.unwrap();
        revoke(&n.app, &ctx, withdrawn.id).await.unwrap();
        let first = n.user("patient.qian", Role::Patient).await;
        accept(&n.app, &first, &once.token).await.unwrap();
        n.clock.advance_secs(3601);

        let late = n.user("patient.sun", Role::Patient).await;
        for (token, code) in [
            (&expiring.token, "invite_expired"),
            (&once.token, "invite_used"),
            (&withdrawn.token, "invite_revoked"),
        ] {
            let e = accept(&n.app, &late, token).await.unwrap_err();
            assert!(matches!(e, AppError::Gone { .. }), "{e:?}");
            assert_eq!(e.code(), code);
        }
        let owner = n.access(&doctor, &group).await;
        let active = crate::groups::members(&n.app, &owner, MemberState::Active, None, 50)
            .await
            .unwrap();
        assert!(active.iter().any(|m| m.user_id == Some(first.id)));
        assert!(
            !active.iter().any(|m| m.user_id == Some(late.id)),
            "no membership from a gone link"
        );
        let p = preview(&n.app, &late, &once.token).await.unwrap();
        assert_eq!((p.state, p.role), (InviteState::UsedUp, None));
        assert_eq!(url(&n.app, "abc"), "http://127.0.0.1:9/group-invite/abc");
    }
}
