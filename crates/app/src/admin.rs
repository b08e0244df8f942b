//! Administering the node: doctor, staff and admin accounts, their passwords, doctors'
//! credentials, patients' sign-up invites, partner hospitals, the node's keys and its outgoing
//! deliveries. The JSON API, the admin pages and the admin CLI call these functions, so each rule
//! is written once.

use std::fmt;

use caremesh_domain::{
    Credential, Role, Timestamp, UserId, validate_display_name, validate_password,
    validate_username,
};
use caremesh_store::{
    Group, Invite, LocalKey, NewInvite, NewUser, OutboxEntry, Partner, PeerQueue, User,
};

use crate::accounts::{Account, hash_password, hash_token, new_token};
use crate::{App, AppError, AppResult};

/// Who administers the node: a hospital administrator's account (through the API and the
/// pages), or the operator at the node's console (the admin CLI, run by whoever holds the
/// node's configuration and database).
#[derive(Clone, Debug)]
pub enum Administrator {
    Account(User),
    Console,
}

impl Administrator {
    /// An account acting as administrator: only hospital administrators may.
    pub fn account(user: &User) -> AppResult<Self> {
        if user.role.is_admin() {
            Ok(Self::Account(user.clone()))
        } else {
            Err(AppError::forbidden(
                "only hospital administrators may do this",
            ))
        }
    }

    /// The administrator account with this name (the CLI's `--by`): `NotFound("account")`, or
    /// `Forbidden` when the account is not an administrator's.
    pub async fn named(app: &App, username: &str) -> AppResult<Self> {
        Self::account(&app.store.user_by_username(username).await?)
    }

    fn account_id(&self) -> Option<UserId> {
        match self {
            Self::Account(u) => Some(u.id),
            Self::Console => None,
        }
    }
}

impl fmt::Display for Administrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(u) => write!(f, "{}", u.id),
            Self::Console => f.write_str("console"),
        }
    }
}

// ---- accounts ----

/// Creates a staff, doctor or admin account (patients sign up through an invite); returns the
/// generated password when none was given, to be shown once.
pub async fn create_staff_account(
    app: &App,
    by: &Administrator,
    username: &str,
    display_name: &str,
    role: Role,
    password: Option<String>,
) -> AppResult<(User, Option<String>)> {
    if role == Role::Patient {
        return Err(AppError::invalid_code(
            "patients_sign_up_by_invite",
            "patient accounts are created by the patients themselves through an invite",
        ));
    }
    let username = username.trim().to_owned();
    validate_username(&username)?;
    validate_display_name(display_name)?;
    let (password, generated) = password_or_generate(password)?;
    let new = NewUser {
        username,
        display_name: display_name.trim().to_owned(),
        role,
        password_hash: hash_password(app, password).await?,
    };
    let user = app.store.create_user(new, app.now()).await?;
    tracing::info!(admin = %by, user = %user.id, role = %user.role, "account created");
    Ok((user, generated))
}

/// The given password after validation, or a generated one (returned to the admin once).
fn password_or_generate(given: Option<String>) -> AppResult<(String, Option<String>)> {
    match given {
        Some(p) => {
            validate_password(&p)?;
            Ok((p, None))
        }
        None => {
            let p = new_token()?;
            Ok((p.clone(), Some(p)))
        }
    }
}

/// Accounts ordered by id, of one role or all, those after `after`, at most `limit`; doctors with
/// their credentials.
pub async fn accounts(
    app: &App,
    _by: &Administrator,
    role: Option<Role>,
    after: Option<UserId>,
    limit: u32,
) -> AppResult<Vec<Account>> {
    let users = app.store.list_users(role, after, limit).await?;
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(Account::load(app, u).await?);
    }
    Ok(out)
}

/// One account by its name (`NotFound("account")`), a doctor's with the credential.
pub async fn account(app: &App, _by: &Administrator, username: &str) -> AppResult<Account> {
    let user = app.store.user_by_username(username).await?;
    Account::load(app, user).await
}

/// Sets a new password (the given one, or a generated one that is returned to be shown once) and
/// ends every session of the account.
pub async fn reset_password(
    app: &App,
    by: &Administrator,
    username: &str,
    password: Option<String>,
) -> AppResult<Option<String>> {
    let user = app.store.user_by_username(username).await?;
    let (password, generated) = password_or_generate(password)?;
    let hash = hash_password(app, password).await?;
    app.store.set_password(user.id, &hash, app.now()).await?;
    tracing::info!(admin = %by, user = %user.id, "password reset");
    Ok(generated)
}

/// Disables an account (ending its sessions) or enables it again. Administrators cannot disable
/// their own account.
pub async fn set_disabled(
    app: &App,
    by: &Administrator,
    username: &str,
    disabled: bool,
) -> AppResult<Account> {
    let user = app.store.user_by_username(username).await?;
    if disabled && by.account_id() == Some(user.id) {
        return Err(AppError::conflict(
            "cannot_disable_self",
            "administrators cannot disable their own account",
        ));
    }
    app.store.set_disabled(user.id, disabled, app.now()).await?;
    tracing::info!(admin = %by, user = %user.id, disabled, "account status changed");
    let user = app.store.user_by_id(user.id).await?;
    Account::load(app, user).await
}

// ---- doctors' credentials ----

/// What the hospital checked of a doctor's licence.
#[derive(Clone, Debug)]
pub struct CheckedCredential {
    pub title: String,
    pub specialty: String,
    pub licence_number: String,
    /// The day the licence was checked.
    pub checked_on: chrono::NaiveDate,
    /// When the credential stops being valid; valid until revoked when `None`.
    pub valid_until: Option<Timestamp>,
}

/// The end of a credential that is valid through `last_day` (UTC): the start of the next day.
pub fn valid_through(last_day: chrono::NaiveDate) -> Option<Timestamp> {
    let next = last_day.succ_opt()?.and_hms_opt(0, 0, 0)?;
    Some(Timestamp::from_datetime(next.and_utc()))
}

/// Records the credential the hospital checked for a doctor (replacing an earlier one), and
/// queues the `Update` of the doctor's actor for every partner in the same store call.
pub async fn record_credential(
    app: &App,
    by: &Administrator,
    username: &str,
    checked: CheckedCredential,
) -> AppResult<Credential> {
    let user = app.store.user_by_username(username).await?;
    let credential = Credential {
        title: checked.title.trim().to_owned(),
        specialty: checked.specialty.trim().to_owned(),
        licence_number: checked.licence_number.trim().to_owned(),
        checked_on: checked.checked_on,
        issued_at: app.now(),
        valid_until: checked.valid_until,
        revoked_at: None,
    };
    credential.validate()?;
    if user.role != Role::Doctor {
        return Err(AppError::conflict(
            "not_a_doctor",
            "credentials can only be recorded for doctors",
        ));
    }
    let announce = app
        .federation
        .person_update(&user, Some(&credential))
        .await?;
    app.store
        .set_credential(user.id, &credential, announce)
        .await?;
    app.federation.forget_local_badge(user.id);
    app.federation.wake();
    tracing::info!(admin = %by, doctor = %user.id, "credential recorded");
    Ok(credential)
}

/// Revokes a doctor's credential (`NotFound("credential")` without one) and queues the `Update`
/// that tells every partner. Revoking again keeps the first revocation's time.
pub async fn revoke_credential(
    app: &App,
    by: &Administrator,
    username: &str,
) -> AppResult<Credential> {
    let user = app.store.user_by_username(username).await?;
    let now = app.now();
    let current = app
        .store
        .credential(user.id)
        .await?
        .ok_or(AppError::NotFound("credential"))?;
    let revoked = Credential {
        revoked_at: current.revoked_at.or(Some(now)),
        ..current
    };
    let announce = app.federation.person_update(&user, Some(&revoked)).await?;
    let c = app.store.revoke_credential(user.id, now, announce).await?;
    app.federation.forget_local_badge(user.id);
    app.federation.wake();
    tracing::info!(admin = %by, doctor = %user.id, "credential revoked");
    Ok(c)
}

// ---- patients' sign-up invites ----

/// Longest validity of an invite: 90 days.
pub const MAX_INVITE_HOURS: i64 = 90 * 24;
/// Most sign-ups one invite allows.
pub const MAX_INVITE_USES: u32 = 1000;

/// An invite just made: its secret token (shown once; only its hash is stored) and the link
/// `{base_url}join/{token}` to hand to the patient (also what its QR code encodes).
#[derive(Clone, Debug)]
pub struct CreatedInvite {
    pub invite: Invite,
    pub token: String,
    pub url: String,
}

/// Creates a patient sign-up invite in an administrator's name, valid for `valid_hours` (the
/// node's default when `None`) and `max_uses` sign-ups (1 when `None`).
pub async fn create_patient_invite(
    app: &App,
    by: &Administrator,
    label: Option<String>,
    valid_hours: Option<i64>,
    max_uses: Option<u32>,
) -> AppResult<CreatedInvite> {
    let Some(created_by) = by.account_id() else {
        return Err(AppError::forbidden(
            "an invite is made in the name of an administrator's account",
        ));
    };
    let hours = valid_hours.unwrap_or(app.settings.invite_ttl_hours);
    if !(1..=MAX_INVITE_HOURS).contains(&hours) {
        return Err(AppError::invalid(format!(
            "valid_hours: must be between 1 and {MAX_INVITE_HOURS}"
        )));
    }
    let max_uses = max_uses.unwrap_or(1);
    if !(1..=MAX_INVITE_USES).contains(&max_uses) {
        return Err(AppError::invalid(format!(
            "max_uses: must be between 1 and {MAX_INVITE_USES}"
        )));
    }
    let label = label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > 200) {
        return Err(AppError::invalid(
            "label: must be at most 200 characters long",
        ));
    }
    let token = new_token()?;
    let now = app.now();
    let invite = app
        .store
        .create_invite(NewInvite {
            token_hash: hash_token(&token),
            role: Role::Patient,
            label,
            created_by,
            created_at: now,
            expires_at: now.plus_secs(hours * 3600),
            max_uses,
        })
        .await?;
    tracing::info!(admin = %by, invite = invite.id, "invite created");
    let url = app
        .settings
        .base_url
        .join(&format!("join/{token}"))
        .map_err(AppError::internal)?
        .to_string();
    Ok(CreatedInvite { invite, token, url })
}

/// Invites, newest first: those with an id below `before`, at most `limit`.
pub async fn invites(
    app: &App,
    _by: &Administrator,
    before: Option<i64>,
    limit: u32,
) -> AppResult<Vec<Invite>> {
    Ok(app.store.list_invites(before, limit).await?)
}

/// Withdraws an invite so that nobody can sign up with it any more; withdrawing twice is harmless.
pub async fn revoke_invite(app: &App, by: &Administrator, id: i64) -> AppResult<Invite> {
    let invite = app.store.revoke_invite(id, app.now()).await?;
    tracing::info!(admin = %by, invite = id, "invite revoked");
    Ok(invite)
}

// ---- partner hospitals ----

/// Where a partner added at run time (API, pages, CLI) comes from, as opposed to `config`.
const RUNTIME_PARTNER: &str = "cli";

pub async fn partners(app: &App, _by: &Administrator) -> AppResult<Vec<Partner>> {
    Ok(app.store.list_partners().await?)
}

fn parse_partner(input: &str) -> AppResult<(String, String)> {
    caremesh_federation::parse_partner(input)
        .map_err(|e| AppError::invalid_code("invalid_partner", e.to_string()))
}

/// Adds a partner by base URL or domain (or updates its base URL); returns it and whether it was
/// new. This process's partner list sees it at once.
pub async fn add_partner(
    app: &App,
    by: &Administrator,
    partner: &str,
) -> AppResult<(Partner, bool)> {
    let (authority, base_url) = parse_partner(partner)?;
    let partner = Partner {
        authority,
        base_url,
        added_at: app.now(),
        source: RUNTIME_PARTNER.into(),
    };
    let new = app.store.add_partner(partner.clone()).await?;
    app.federation.partners.invalidate().await;
    tracing::info!(admin = %by, authority = %partner.authority, new, "partner added");
    Ok((partner, new))
}

/// Removes a partner added at run time, given by its authority (as listed), base URL or domain;
/// returns its authority. One listed in the configuration file is removed there.
pub async fn remove_partner(app: &App, by: &Administrator, partner: &str) -> AppResult<String> {
    let known = app.store.list_partners().await?;
    let given = partner.trim();
    let found = match known.iter().find(|p| p.authority == given) {
        Some(p) => Some(p),
        None => {
            let (authority, _) = parse_partner(given)?;
            known.iter().find(|p| p.authority == authority)
        }
    };
    let authority = match found {
        None => return Err(AppError::NotFound("partner")),
        Some(p) if p.source == "config" => {
            return Err(AppError::conflict(
                "partner_in_config",
                "this partner is listed in federation.partners in the configuration; remove it there",
            ));
        }
        Some(p) => p.authority.clone(),
    };
    app.store.remove_partner(&authority).await?;
    app.federation.partners.invalidate().await;
    tracing::info!(admin = %by, %authority, "partner removed");
    Ok(authority)
}

// ---- the node's keys ----

/// A key rotation: the new key's id and how many partners its announcement was queued for.
#[derive(Clone, Debug)]
pub struct KeyRotation {
    pub key_id: String,
    pub partners: usize,
}

/// Replaces the node's signing key and queues its announcement to every partner; the old key
/// stays published and verifying for the grace period.
pub async fn rotate_key(app: &App, by: &Administrator) -> AppResult<KeyRotation> {
    let key_id = app.federation.rotate_instance_key().await?;
    let partners = app.federation.partners.all().await?.len();
    tracing::info!(admin = %by, %key_id, partners, "node key rotated");
    Ok(KeyRotation { key_id, partners })
}

/// The node's keys, the current one and those retired.
pub async fn node_keys(app: &App, _by: &Administrator) -> AppResult<Vec<LocalKey>> {
    Ok(app
        .store
        .local_keys(&app.federation.urls.instance_actor())
        .await?)
}

// ---- outgoing deliveries ----

/// One partner's queue, and whether its breaker is open (too many failures in a row).
#[derive(Clone, Debug)]
pub struct QueueStatus {
    pub queue: PeerQueue,
    pub breaker_open: bool,
}

pub async fn outbox_queues(app: &App, _by: &Administrator) -> AppResult<Vec<QueueStatus>> {
    let threshold = app.federation.settings.delivery.breaker_threshold;
    Ok(app
        .store
        .peer_queues()
        .await?
        .into_iter()
        .map(|queue| QueueStatus {
            breaker_open: queue.consecutive_failures >= threshold,
            queue,
        })
        .collect())
}

/// Deliveries given up on, kept for the admin.
pub async fn parked_deliveries(
    app: &App,
    _by: &Administrator,
    limit: u32,
) -> AppResult<Vec<OutboxEntry>> {
    Ok(app.store.parked_entries(limit).await?)
}

/// Puts parked deliveries back in their queues (every one when `ids` is empty); returns how many.
pub async fn retry_parked(app: &App, by: &Administrator, ids: &[i64]) -> AppResult<u64> {
    let n = app.store.retry_parked(ids, app.now()).await?;
    app.federation.wake();
    tracing::info!(admin = %by, deliveries = n, "parked deliveries queued again");
    Ok(n)
}

/// Makes a partner's waiting queue due now (its next attempt was scheduled later by the backoff),
/// given by its authority (as listed) or base URL; returns the partner's authority and how many
/// deliveries are pending in its queue.
pub async fn retry_queue_now(
    app: &App,
    by: &Administrator,
    partner: &str,
) -> AppResult<(String, u64)> {
    let given = partner.trim();
    let authority = match app.store.retry_peer_now(given, app.now()).await? {
        Some(n) => {
            app.federation.wake();
            tracing::info!(admin = %by, peer = %given, pending = n, "queue made due now");
            return Ok((given.to_owned(), n));
        }
        None => parse_partner(given)?.0,
    };
    let n = app
        .store
        .retry_peer_now(&authority, app.now())
        .await?
        .ok_or(AppError::NotFound("queue"))?;
    app.federation.wake();
    tracing::info!(admin = %by, peer = %authority, pending = n, "queue made due now");
    Ok((authority, n))
}

// ---- moderation overview ----

/// The node's groups (the first 200) with how many open reports each has.
pub async fn open_reports_by_group(app: &App, _by: &Administrator) -> AppResult<Vec<(Group, u64)>> {
    let groups = app.store.list_groups(None, 200).await?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let open = app.store.list_reports(g.id, true, None, 200).await?.len() as u64;
        out.push((g, open));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use caremesh_domain::{CredentialStatus, Role};
    use caremesh_store::Partner;

    use super::*;
    use crate::accounts::tests::{Fixture, T0, fixture, user};
    use crate::accounts::{check_login, new_session, session_user, signup_invite};

    async fn admin_of(f: &Fixture) -> Administrator {
        let u = user(f, Role::Admin, "admin", "the admin password").await;
        Administrator::account(&u).unwrap()
    }

    fn checked(valid_until: Option<Timestamp>) -> CheckedCredential {
        CheckedCredential {
            title: " 主任医师 ".into(),
            specialty: "心内科".into(),
            licence_number: "110108".into(),
            checked_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            valid_until,
        }
    }

    async fn with_partner(f: &Fixture) {
        add_partner(
            &f.app,
            &Administrator::Console,
            "https://caremesh.hospital-b.example",
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn only_administrators_administer() {
        let f = fixture().await;
        let d = user(&f, Role::Doctor, "dr.wang", "doctor password").await;
        let e = Administrator::account(&d).unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        let e = Administrator::named(&f.app, "dr.wang").await.unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }), "{e:?}");
        assert!(
            Administrator::named(&f.app, "nobody")
                .await
                .unwrap_err()
                .is_not_found()
        );
        admin_of(&f).await;
        assert!(matches!(
            Administrator::named(&f.app, "admin").await.unwrap(),
            Administrator::Account(_)
        ));
    }

    #[tokio::test]
    async fn staff_accounts_log_in_with_the_password_given_or_generated() {
        let f = fixture().await;
        let by = Administrator::Console;
        let (u, generated) =
            create_staff_account(&f.app, &by, " dr.li ", " 李医生 ", Role::Doctor, None)
                .await
                .unwrap();
        assert_eq!(
            (u.username.as_str(), u.display_name.as_str()),
            ("dr.li", "李医生")
        );
        let generated = generated.unwrap();
        check_login(&f.app, None, "dr.li", generated).await.unwrap();

        let (_, none) = create_staff_account(
            &f.app,
            &by,
            "nurse.zhang",
            "Zhang",
            Role::Staff,
            Some("a staff password".into()),
        )
        .await
        .unwrap();
        assert!(none.is_none());
        check_login(&f.app, None, "nurse.zhang", "a staff password".into())
            .await
            .unwrap();

        for (name, role, password, code) in [
            (
                "patient1",
                Role::Patient,
                None,
                "patients_sign_up_by_invite",
            ),
            ("x", Role::Staff, None, "invalid_field"),
            ("short.pw", Role::Staff, Some("short"), "invalid_field"),
            ("dr.li", Role::Doctor, None, "username_taken"),
        ] {
            let e = create_staff_account(&f.app, &by, name, "Name", role, password.map(Into::into))
                .await
                .unwrap_err();
            assert_eq!(e.code(), code, "{name}: {e:?}");
        }
        let all = accounts(&f.app, &by, None, None, 10).await.unwrap();
        assert_eq!(all.len(), 2, "refused accounts are not created");
    }

    #[tokio::test]
    async fn a_reset_password_replaces_the_old_one_and_ends_sessions() {
        let f = fixture().await;
        let by = admin_of(&f).await;
        let d = user(&f, Role::Doctor, "dr.wang", "the old password").await;
        let session = new_session(&f.app, &d).await.unwrap();
        let generated = reset_password(&f.app, &by, "dr.wang", Some("the new password".into()))
            .await
            .unwrap();
        assert!(generated.is_none());
        assert!(session_user(&f.app, &session.token).await.is_err());
        check_login(&f.app, None, "dr.wang", "the new password".into())
            .await
            .unwrap();
        let e = check_login(&f.app, None, "dr.wang", "the old password".into())
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::InvalidCredentials));
        let generated = reset_password(&f.app, &by, "dr.wang", None)
            .await
            .unwrap()
            .unwrap();
        check_login(&f.app, None, "dr.wang", generated)
            .await
            .unwrap();
        let e = reset_password(&f.app, &by, "dr.wang", Some("short".into()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        assert!(
            reset_password(&f.app, &by, "nobody", None)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }

    #[tokio::test]
    async fn disabling_ends_sessions_but_never_ones_own_account() {
        let f = fixture().await;
        let by = admin_of(&f).await;
        let d = user(&f, Role::Doctor, "dr.wang", "doctor password").await;
        let session = new_session(&f.app, &d).await.unwrap();
        let a = set_disabled(&f.app, &by, "dr.wang", true).await.unwrap();
        assert!(a.user.disabled);
        assert!(session_user(&f.app, &session.token).await.is_err());
        assert!(matches!(
            check_login(&f.app, None, "dr.wang", "doctor password".into()).await,
            Err(AppError::InvalidCredentials)
        ));
        let a = set_disabled(&f.app, &by, "dr.wang", false).await.unwrap();
        assert!(!a.user.disabled);
        check_login(&f.app, None, "dr.wang", "doctor password".into())
            .await
            .unwrap();

        let e = set_disabled(&f.app, &by, "admin", true).await.unwrap_err();
        assert_eq!(e.code(), "cannot_disable_self");
        // At the console nobody is disabling themselves.
        let a = set_disabled(&f.app, &Administrator::Console, "admin", true)
            .await
            .unwrap();
        assert!(a.user.disabled);
    }

    #[tokio::test]
    async fn a_credential_is_recorded_for_doctors_and_announced_to_partners() {
        let f = fixture().await;
        with_partner(&f).await;
        let by = admin_of(&f).await;
        let d = user(&f, Role::Doctor, "dr.wang", "doctor password").await;
        user(&f, Role::Staff, "nurse", "staff password").await;

        let e = record_credential(&f.app, &by, "nurse", checked(None))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "not_a_doctor");
        let mut empty = checked(None);
        empty.title = "  ".into();
        let e = record_credential(&f.app, &by, "dr.wang", empty)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_field");
        assert!(
            record_credential(&f.app, &by, "nobody", checked(None))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(
            f.store.peer_queues().await.unwrap().is_empty(),
            "nothing sent"
        );

        let until = T0.plus_secs(365 * 86400);
        let c = record_credential(&f.app, &by, "dr.wang", checked(Some(until)))
            .await
            .unwrap();
        assert_eq!(c.title, "主任医师");
        assert_eq!(c.issued_at, T0);
        let stored = f.store.credential(d.id).await.unwrap().unwrap();
        assert_eq!(stored, c);
        assert_eq!(stored.status(T0), CredentialStatus::Valid);
        let queues = f.store.peer_queues().await.unwrap();
        assert_eq!(queues.len(), 1);
        assert_eq!(
            (queues[0].peer.as_str(), queues[0].pending),
            ("caremesh.hospital-b.example", 1),
            "one Update of the doctor's actor for the partner"
        );
        let a = account(&f.app, &by, "dr.wang").await.unwrap();
        assert_eq!(a.credential.unwrap().licence_number, "110108");
    }

    #[test]
    fn a_credential_valid_through_a_day_ends_when_the_next_begins() {
        let d = chrono::NaiveDate::from_ymd_opt(2027, 11, 19).unwrap();
        assert_eq!(
            valid_through(d).unwrap().to_rfc3339(),
            "2027-11-20T00:00:00.000Z"
        );
        assert_eq!(valid_through(chrono::NaiveDate::MAX), None);
    }

    #[tokio::test]
    async fn revoking_a_credential_keeps_the_first_revocation_time() {
        let f = fixture().await;
        with_partner(&f).await;
        let by = admin_of(&f).await;
        let d = user(&f, Role::Doctor, "dr.wang", "doctor password").await;
        let e = revoke_credential(&f.app, &by, "dr.wang").await.unwrap_err();
        assert!(matches!(e, AppError::NotFound("credential")), "{e:?}");
        record_credential(&f.app, &by, "dr.wang", checked(None))
            .await
            .unwrap();
        f.clock.advance_secs(60);
        let c = revoke_credential(&f.app, &by, "dr.wang").await.unwrap();
        assert_eq!(c.revoked_at, Some(T0.plus_secs(60)));
        assert_eq!(c.status(f.app.now()), CredentialStatus::Revoked);
        f.clock.advance_secs(60);
        let again = revoke_credential(&f.app, &by, "dr.wang").await.unwrap();
        assert_eq!(again.revoked_at, Some(T0.plus_secs(60)));
        assert_eq!(f.store.credential(d.id).await.unwrap().unwrap(), again);
        assert_eq!(f.store.peer_queues().await.unwrap()[0].pending, 3);
    }

    #[tokio::test]
    async fn invites_are_made_in_an_admins_name_within_their_bounds() {
        let f = fixture().await;
        let by = admin_of(&f).await;
        let e = create_patient_invite(&f.app, &Administrator::Console, None, None, None)
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::Forbidden { .. }));
        for (label, hours, uses) in [
            (None, Some(0), None),
            (None, Some(MAX_INVITE_HOURS + 1), None),
            (None, None, Some(0)),
            (None, None, Some(MAX_INVITE_USES + 1)),
            (Some("x".repeat(201)), None, None),
        ] {
            let e = create_patient_invite(&f.app, &by, label, hours, uses)
                .await
                .unwrap_err();
            assert_eq!(e.code(), "invalid_field");
        }
        assert!(invites(&f.app, &by, None, 10).await.unwrap().is_empty());

        let made = create_patient_invite(&f.app, &by, Some("  ward 3 ".into()), None, Some(20))
            .await
            .unwrap();
        assert_eq!(
            made.url,
            format!("https://caremesh.hospital-a.example/join/{}", made.token)
        );
        let i = &made.invite;
        assert_eq!(i.label.as_deref(), Some("ward 3"));
        assert_eq!((i.max_uses, i.role), (20, Role::Patient));
        assert_eq!(i.expires_at, T0.plus_secs(24 * 3600), "the node's default");
        assert_eq!(signup_invite(&f.app, &made.token).await.unwrap().id, i.id);

        let blank = create_patient_invite(&f.app, &by, Some(" ".into()), Some(1), None)
            .await
            .unwrap();
        assert_eq!(blank.invite.label, None);
        assert_eq!(blank.invite.max_uses, 1);
        let listed = invites(&f.app, &by, None, 10).await.unwrap();
        assert_eq!(listed.len(), 2);

        revoke_invite(&f.app, &by, i.id).await.unwrap();
        assert_eq!(
            signup_invite(&f.app, &made.token).await.unwrap_err().code(),
            "invite_revoked"
        );
    }

    #[tokio::test]
    async fn partners_added_at_run_time_are_removed_but_not_configured_ones() {
        let f = fixture().await;
        let by = admin_of(&f).await;
        let e = add_partner(&f.app, &by, "ftp://x.example")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_partner");
        assert!(e.to_string().contains("http"), "{e}");

        let (p, new) = add_partner(&f.app, &by, "hospital-c.example")
            .await
            .unwrap();
        assert!(new);
        assert_eq!(
            (p.authority.as_str(), p.base_url.as_str(), p.source.as_str()),
            ("hospital-c.example", "https://hospital-c.example/", "cli")
        );
        assert!(
            f.app
                .federation
                .partners
                .is_partner("hospital-c.example")
                .await
                .unwrap(),
            "this process sees the new partner at once"
        );
        let (_, new) = add_partner(&f.app, &by, "http://hospital-c.example:8080")
            .await
            .unwrap();
        assert!(new, "another port is another node");
        let (_, new) = add_partner(&f.app, &by, "https://hospital-c.example/")
            .await
            .unwrap();
        assert!(!new);

        f.store
            .add_partner(Partner {
                authority: "hospital-d.example".into(),
                base_url: "https://hospital-d.example/".into(),
                added_at: T0,
                source: "config".into(),
            })
            .await
            .unwrap();
        let e = remove_partner(&f.app, &by, "hospital-d.example")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "partner_in_config");
        assert!(
            remove_partner(&f.app, &by, "hospital-e.example")
                .await
                .unwrap_err()
                .is_not_found()
        );
        // By authority as listed, or by URL.
        assert_eq!(
            remove_partner(&f.app, &by, "hospital-c.example:8080")
                .await
                .unwrap(),
            "hospital-c.example:8080"
        );
        assert_eq!(
            remove_partner(&f.app, &by, "https://hospital-c.example")
                .await
                .unwrap(),
            "hospital-c.example"
        );
        assert!(
            !f.app
                .federation
                .partners
                .is_partner("hospital-c.example")
                .await
                .unwrap()
        );
        let left: Vec<_> = partners(&f.app, &by)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.authority)
            .collect();
        assert_eq!(left, ["hospital-d.example"]);
    }

    #[tokio::test]
    async fn a_rotated_key_is_announced_and_the_old_one_retired() {
        let f = fixture().await;
        with_partner(&f).await;
        let by = Administrator::Console;
        f.app.federation.keys.instance_key().await.unwrap();
        let before = node_keys(&f.app, &by).await.unwrap();
        assert_eq!(before.len(), 1);
        f.clock.advance_secs(1);
        let r = rotate_key(&f.app, &by).await.unwrap();
        assert_eq!(r.partners, 1);
        assert_ne!(r.key_id, before[0].key_id);
        let keys = node_keys(&f.app, &by).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(
            keys.iter()
                .any(|k| k.key_id == r.key_id && k.retired_at.is_none())
        );
        assert!(
            keys.iter()
                .any(|k| k.key_id == before[0].key_id && k.retired_at.is_some())
        );
        let queues = outbox_queues(&f.app, &by).await.unwrap();
        assert_eq!(queues.len(), 1);
        assert_eq!(queues[0].queue.pending, 1);
        assert!(!queues[0].breaker_open);
        assert!(parked_deliveries(&f.app, &by, 10).await.unwrap().is_empty());
        assert_eq!(retry_parked(&f.app, &by, &[]).await.unwrap(), 0);
    }
}
