//! Moderation: the queue of reported posts, removing a reported post or dismissing its report,
//! and the moderation log. Members report posts with [`crate::posts::report`]; banning and
//! removing members live with members ([`crate::groups`]). Every moderation action is written to
//! the log by the store in the same transaction as the action itself.

use caremesh_store::{Group, ModerationEntry, Post, Report, User};

use crate::{App, AppError, AppResult, GroupAccess};

/// Reports, oldest first, after `after`; only unresolved ones when `open_only`: the
/// moderators' queue.
pub async fn reports(
    app: &App,
    ctx: &GroupAccess,
    open_only: bool,
    after: Option<i64>,
    limit: u32,
) -> AppResult<Vec<Report>> {
    ctx.moderate()?;
    Ok(app
        .store
        .list_reports(ctx.group.id, open_only, after, limit)
        .await?)
}

/// A moderator closes a report without removing the post (logged).
pub async fn dismiss_report(app: &App, ctx: &GroupAccess, rid: i64) -> AppResult<Report> {
    ctx.moderate()?;
    Ok(app
        .store
        .dismiss_report(ctx.group.id, rid, ctx.user.id, app.now())
        .await?)
}

/// A moderator removes a (reported) post, with an optional reason for the log: the same removal
/// as [`crate::posts::delete_or_remove`], for moderators only.
pub async fn remove_post(
    app: &App,
    ctx: &GroupAccess,
    pid: &str,
    reason: Option<String>,
) -> AppResult<crate::actions::Outcome<Post>> {
    ctx.moderate()?;
    crate::posts::delete_or_remove(app, ctx, pid, reason).await
}

/// The moderation log, newest first: for the group's moderators and the hospital's admins.
pub async fn log(
    app: &App,
    ctx: &GroupAccess,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<ModerationEntry>> {
    ctx.moderate()?;
    Ok(app
        .store
        .moderation_log(ctx.group.id, before, limit)
        .await?)
}

/// Most groups, and most open reports per group, that the administrators' overview counts.
pub const OVERVIEW_LIMIT: u32 = 200;

/// For hospital administrators: every group with its number of open reports (counted up to
/// [`OVERVIEW_LIMIT`]).
pub async fn open_report_counts(app: &App, user: &User) -> AppResult<Vec<(Group, u64)>> {
    if !user.role.is_admin() {
        return Err(AppError::forbidden(
            "only hospital administrators see every group's reports",
        ));
    }
    let groups = app.store.list_groups(None, OVERVIEW_LIMIT).await?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let open = app
            .store
            .list_reports(g.id, true, None, OVERVIEW_LIMIT)
            .await?
            .len() as u64;
        out.push((g, open));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use caremesh_domain::{PostKind, Role};
    use caremesh_store::DeletedBy;

    use super::*;
    use crate::group_fixtures::node;
    use crate::posts::{self, NewThread};

    fn question(text: &str) -> NewThread {
        NewThread {
            kind: PostKind::Question,
            title: None,
            body: text.into(),
            pinned: false,
            publish_at: None,
            attachments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_reported_post_is_removed_by_a_moderator_only_and_logged() {
        let n = node().await;
        let doctor = n.user("dr.wang", Role::Doctor).await;
        let group = n.group(&doctor, "Stroke rehabilitation").await;
        let owner = n.access(&doctor, &group).await;
        let invite = crate::invites::create(&n.app, &owner, Default::default())
            .await
            .unwrap();
        let (zhao, qian) = (
            n.user("patient.zhao", Role::Patient).await,
            n.user("patient.qian", Role::Patient).await,
        );
        for u in [&zhao, &qian] {
            crate::invites::accept(&n.app, u, &invite.token)
                .await
                .unwrap();
        }
        let as_zhao = n.access(&zhao, &group).await;
        let as_qian = n.access(&qian, &group).await;
        let spam = posts::ask(&n.app, &as_zhao, question("buy pills"))
            .await
            .unwrap();
        let report = posts::report(&n.app, &as_qian, &spam.public_id, "  spam ")
            .await
            .unwrap();
        assert_eq!(report.reason, "spam");

        // The moderation page's "remove" is for moderators, even on the members' own posts.
        for who in [&as_qian, &as_zhao] {
            let e = remove_post(&n.app, who, &spam.public_id, None)
                .await
                .unwrap_err();
            assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        }
        let open = reports(&n.app, &owner, true, None, 50).await.unwrap();
        assert_eq!(open.len(), 1, "refused removals change nothing");

        let removed = remove_post(
            &n.app,
            &owner,
            &spam.public_id,
            Some("  advertising ".into()),
        )
        .await
        .unwrap();
        let removed = removed.done().unwrap();
        assert_eq!(removed.deleted_by, Some(DeletedBy::Moderator));
        assert!(
            reports(&n.app, &owner, true, None, 50)
                .await
                .unwrap()
                .is_empty()
        );
        let entries = log(&n.app, &owner, None, 50).await.unwrap();
        let entry = entries.iter().find(|e| e.action == "remove_post").unwrap();
        assert_eq!(entry.detail.as_deref(), Some("advertising"));
        assert_eq!(
            entry.target_post_public_id.as_deref(),
            Some(spam.public_id.as_str())
        );

        // Members see no queue; their own post they delete as its author.
        let e = reports(&n.app, &as_qian, true, None, 50).await.unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        let mine = posts::ask(&n.app, &as_qian, question("my question"))
            .await
            .unwrap();
        let gone = posts::delete_or_remove(&n.app, &as_qian, &mine.public_id, None)
            .await
            .unwrap();
        let gone = gone.done().unwrap();
        assert_eq!(gone.deleted_by, Some(DeletedBy::Author));
    }

    #[tokio::test]
    async fn administrators_count_open_reports_of_every_group() {
        let n = node().await;
        let admin = n.user("admin", Role::Admin).await;
        let doctor = n.user("dr.wang", Role::Doctor).await;
        let quiet = n.group(&doctor, "Quiet").await;
        let busy = n.group(&doctor, "Busy").await;
        let owner = n.access(&doctor, &busy).await;
        let post = posts::ask(&n.app, &owner, question("hello")).await.unwrap();
        let invite = crate::invites::create(&n.app, &owner, Default::default())
            .await
            .unwrap();
        let patient = n.user("patient.zhao", Role::Patient).await;
        crate::invites::accept(&n.app, &patient, &invite.token)
            .await
            .unwrap();
        let as_patient = n.access(&patient, &busy).await;
        posts::report(&n.app, &as_patient, &post.public_id, "rude")
            .await
            .unwrap();
        let counts = open_report_counts(&n.app, &admin).await.unwrap();
        let of = |g: &Group| counts.iter().find(|(c, _)| c.id == g.id).map(|(_, n)| *n);
        assert_eq!((of(&quiet), of(&busy)), (Some(0), Some(1)));
        let e = open_report_counts(&n.app, &doctor).await.unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
    }
}
