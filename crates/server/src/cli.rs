//! The command line: `caremesh serve`, `caremesh migrate`, and the admin commands hospital IT uses
//! to set up accounts. Passwords are never taken as arguments (they would land in shell history
//! and `ps`): `--password-stdin` reads one line, otherwise a password is generated and printed once.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use caremesh_domain::{
    Clock, Credential, Role, SystemClock, Timestamp, validate_display_name, validate_password,
    validate_username,
};
use caremesh_store::{NewInvite, NewUser, Store, StoreError};
use caremesh_web::auth::{hash_password_blocking, hash_token, new_token};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "caremesh",
    version,
    about = "A Caremesh hospital node and its admin commands"
)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables CAREMESH_* override it.
    #[arg(long, global = true, env = "CAREMESH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the node: open (or create) the database, apply migrations, serve HTTP.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and print it as TOML.
    Config,
    /// Create the first (or another) hospital administrator.
    CreateAdmin(NewAccountArgs),
    /// Manage accounts of this hospital.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Record or revoke a doctor's credential.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Create a sign-up invite for patients and print its link.
    Invite(InviteArgs),
    /// Manage partner hospitals: the only nodes this node talks to.
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// The node's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Outgoing deliveries to partner nodes.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Write a consistent copy of the SQLite database to a new file while the node runs
    /// (PostgreSQL: use pg_dump).
    Backup {
        /// The file to create; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct NewAccountArgs {
    #[arg(long)]
    pub username: String,
    /// Name shown to others; defaults to the username.
    #[arg(long)]
    pub display_name: Option<String>,
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create a doctor, staff or admin account (patients sign up by invite).
    Create {
        #[arg(long, value_parser = ["admin", "staff", "doctor"])]
        role: String,
        #[command(flatten)]
        account: NewAccountArgs,
    },
    /// List accounts, optionally of one role.
    List {
        #[arg(long, value_parser = ["admin", "staff", "doctor", "patient"])]
        role: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password and end every session of the account.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and end its sessions.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Re-enable a disabled account.
    Enable {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Record the credential the hospital checked (replaces an earlier one).
    Set {
        #[arg(long)]
        username: String,
        /// Professional title, e.g. "主任医师".
        #[arg(long)]
        title: String,
        #[arg(long)]
        specialty: String,
        #[arg(long)]
        licence_number: String,
        /// The day the licence was checked, YYYY-MM-DD.
        #[arg(long)]
        checked_on: chrono::NaiveDate,
        /// Last day the credential is valid, YYYY-MM-DD (valid until revoked when absent).
        #[arg(long)]
        valid_until: Option<chrono::NaiveDate>,
    },
    /// Revoke the doctor's credential.
    Revoke {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PartnerCommand {
    /// Add a partner by base URL (https://caremesh.hospital-b.example) or domain.
    Add { partner: String },
    /// Remove a partner added with `partner add`.
    Remove { partner: String },
    /// List partners.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Replace the node's signing key and announce the new one to every partner. The old key stays
    /// published and verifying for `federation.key_grace_hours`.
    Rotate,
    /// List the node's keys.
    List,
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Each partner's queue: pending and parked deliveries, failures, breaker state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Deliveries that were given up on, kept for the admin.
    Parked {
        #[arg(long)]
        json: bool,
    },
    /// Put parked deliveries back in their queues.
    Retry {
        /// Entry ids from `outbox parked`.
        #[arg(long = "id", required_unless_present = "all")]
        ids: Vec<i64>,
        /// Every parked delivery.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

#[derive(Args, Debug)]
pub struct InviteArgs {
    /// The administrator creating the invite.
    #[arg(long)]
    pub by: String,
    #[arg(long)]
    pub label: Option<String>,
    /// Hours the invite stays valid (default: auth.invite_ttl_hours).
    #[arg(long)]
    pub valid_hours: Option<u32>,
    #[arg(long, default_value_t = 1)]
    pub max_uses: u32,
}

/// Runs an admin command against the store, writing its result to `out`.
pub async fn run_admin(
    command: Command,
    config: &Config,
    store: Arc<dyn Store>,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match command {
        Command::Serve | Command::Migrate | Command::Config | Command::Backup { .. } => {
            bail!("not an admin command")
        }
        Command::CreateAdmin(a) => create_account(&*store, Role::Admin, a, stdin, out, now).await,
        Command::Account(AccountCommand::Create { role, account }) => {
            let role: Role = role.parse()?;
            create_account(&*store, role, account, stdin, out, now).await
        }
        Command::Account(AccountCommand::List { role, json }) => {
            let role = role.map(|r| r.parse::<Role>()).transpose()?;
            list_accounts(&*store, role, json, out).await
        }
        Command::Account(AccountCommand::ResetPassword {
            username,
            password_stdin,
        }) => {
            let user = find(&*store, &username).await?;
            let (password, generated) = read_or_generate(password_stdin, stdin)?;
            let hash = hash_password_blocking(&password)?;
            store.set_password(user.id, &hash, now).await?;
            writeln!(out, "password of {username} reset; all its sessions ended")?;
            if let Some(p) = generated {
                writeln!(out, "new password (shown once): {p}")?;
            }
            Ok(())
        }
        Command::Account(AccountCommand::Disable { username }) => {
            let user = find(&*store, &username).await?;
            store.set_disabled(user.id, true, now).await?;
            writeln!(out, "{username} disabled; all its sessions ended")?;
            Ok(())
        }
        Command::Account(AccountCommand::Enable { username }) => {
            let user = find(&*store, &username).await?;
            store.set_disabled(user.id, false, now).await?;
            writeln!(out, "{username} enabled")?;
            Ok(())
        }
        Command::Credential(CredentialCommand::Set {
            username,
            title,
            specialty,
            licence_number,
            checked_on,
            valid_until,
        }) => {
            let user = find(&*store, &username).await?;
            let valid_until = valid_until
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|dt| Timestamp::from_datetime(dt.and_utc()));
            let credential = Credential {
                title: title.trim().to_owned(),
                specialty: specialty.trim().to_owned(),
                licence_number: licence_number.trim().to_owned(),
                checked_on,
                issued_at: now,
                valid_until,
                revoked_at: None,
            };
            credential.validate()?;
            if user.role != Role::Doctor {
                bail!("credentials can only be recorded for doctors");
            }
            let federation =
                crate::build_federation(config, store.clone(), Arc::new(SystemClock)).await?;
            let announce = federation.person_update(&user, Some(&credential)).await?;
            store.set_credential(user.id, &credential, announce).await?;
            writeln!(
                out,
                "credential of {username} recorded: {} ({}), licence {} checked on {}",
                credential.title, credential.specialty, credential.licence_number, checked_on
            )?;
            Ok(())
        }
        Command::Credential(CredentialCommand::Revoke { username }) => {
            let user = find(&*store, &username).await?;
            let Some(current) = store.credential(user.id).await? else {
                bail!("{username} has no credential");
            };
            let revoked = Credential {
                revoked_at: current.revoked_at.or(Some(now)),
                ..current
            };
            let federation =
                crate::build_federation(config, store.clone(), Arc::new(SystemClock)).await?;
            let announce = federation.person_update(&user, Some(&revoked)).await?;
            store.revoke_credential(user.id, now, announce).await?;
            writeln!(out, "credential of {username} revoked")?;
            Ok(())
        }
        Command::Invite(args) => create_invite(config, &*store, args, out, now).await,
        Command::Partner(cmd) => partner(cmd, &*store, out, now).await,
        Command::Keys(KeysCommand::Rotate) => {
            let federation =
                crate::build_federation(config, store.clone(), Arc::new(SystemClock)).await?;
            let key_id = federation.rotate_instance_key().await?;
            let partners = federation.partners.all().await?.len();
            writeln!(out, "new key {key_id}; announced to {partners} partner(s)")?;
            writeln!(
                out,
                "the previous key stays valid for {} hours",
                config.federation.key_grace_hours
            )?;
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            let federation =
                crate::build_federation(config, store.clone(), Arc::new(SystemClock)).await?;
            for k in store.local_keys(&federation.urls.instance_actor()).await? {
                let state = match k.retired_at {
                    None => "current".to_owned(),
                    Some(t) => format!("retired {t}"),
                };
                writeln!(out, "{}  created {}  {state}", k.key_id, k.created_at)?;
            }
            Ok(())
        }
        Command::Outbox(cmd) => outbox(cmd, config, &*store, out, now).await,
    }
}

async fn find(store: &dyn Store, username: &str) -> anyhow::Result<caremesh_store::User> {
    match store.user_by_username(username).await {
        Ok(u) => Ok(u),
        Err(StoreError::NotFound(_)) => bail!("no account named {username:?}"),
        Err(e) => Err(e.into()),
    }
}

fn read_or_generate(
    from_stdin: bool,
    stdin: &mut dyn BufRead,
) -> anyhow::Result<(String, Option<String>)> {
    if from_stdin {
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        validate_password(&password)?;
        Ok((password, None))
    } else {
        let p = new_token()?;
        Ok((p.clone(), Some(p)))
    }
}

async fn create_account(
    store: &dyn Store,
    role: Role,
    a: NewAccountArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    now: Timestamp,
) -> anyhow::Result<()> {
    let username = a.username.trim().to_owned();
    validate_username(&username)?;
    let display_name = a.display_name.unwrap_or_else(|| username.clone());
    validate_display_name(&display_name)?;
    let (password, generated) = read_or_generate(a.password_stdin, stdin)?;
    let password_hash = hash_password_blocking(&password)?;
    let user = store
        .create_user(
            NewUser {
                username,
                display_name: display_name.trim().to_owned(),
                role,
                password_hash,
            },
            now,
        )
        .await?;
    writeln!(
        out,
        "created {} account {} (id {})",
        user.role, user.username, user.id
    )?;
    if let Some(p) = generated {
        writeln!(out, "password (shown once): {p}")?;
    }
    Ok(())
}

async fn list_accounts(
    store: &dyn Store,
    role: Option<Role>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut after = None;
    if !json {
        writeln!(
            out,
            "{:<6} {:<32} {:<8} {:<9} display name",
            "id", "username", "role", "status"
        )?;
    }
    loop {
        let page = store.list_users(role, after, 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in &page {
            if json {
                writeln!(out, "{}", serde_json::to_string(u)?)?;
            } else {
                let status = if u.disabled { "disabled" } else { "active" };
                writeln!(
                    out,
                    "{:<6} {:<32} {:<8} {:<9} {}",
                    u.id.0,
                    u.username,
                    u.role.as_str(),
                    status,
                    u.display_name
                )?;
            }
        }
    }
    Ok(())
}

async fn create_invite(
    config: &Config,
    store: &dyn Store,
    args: InviteArgs,
    out: &mut dyn Write,
    now: Timestamp,
) -> anyhow::Result<()> {
    let admin = find(store, &args.by).await?;
    if !admin.role.is_admin() {
        bail!("{} is not an administrator", args.by);
    }
    let hours = args.valid_hours.unwrap_or(config.auth.invite_ttl_hours);
    if !(1..=90 * 24).contains(&hours) {
        bail!("--valid-hours must be between 1 and 2160");
    }
    if !(1..=1000).contains(&args.max_uses) {
        bail!("--max-uses must be between 1 and 1000");
    }
    let token = new_token()?;
    let invite = store
        .create_invite(NewInvite {
            token_hash: hash_token(&token),
            role: Role::Patient,
            label: args.label,
            created_by: admin.id,
            created_at: now,
            expires_at: now.plus_secs(i64::from(hours) * 3600),
            max_uses: args.max_uses,
        })
        .await?;
    let url = config.base_url.join(&format!("join/{token}"))?;
    writeln!(
        out,
        "invite {} valid until {} for {} sign-up(s)",
        invite.id, invite.expires_at, invite.max_uses
    )?;
    writeln!(out, "link: {url}")?;
    writeln!(out, "token: {token}")?;
    Ok(())
}

async fn partner(
    cmd: PartnerCommand,
    store: &dyn Store,
    out: &mut dyn Write,
    now: Timestamp,
) -> anyhow::Result<()> {
    match cmd {
        PartnerCommand::Add { partner } => {
            let (authority, base_url) = caremesh_federation::parse_partner(&partner)?;
            let new = store
                .add_partner(caremesh_store::Partner {
                    authority: authority.clone(),
                    base_url: base_url.clone(),
                    added_at: now,
                    source: "cli".into(),
                })
                .await?;
            let verb = if new { "added" } else { "updated" };
            writeln!(out, "partner {authority} {verb} ({base_url})")?;
        }
        PartnerCommand::Remove { partner } => {
            let (authority, _) = caremesh_federation::parse_partner(&partner)?;
            let known = store.list_partners().await?;
            match known.iter().find(|p| p.authority == authority) {
                None => bail!("{authority} is not a partner"),
                Some(p) if p.source == "config" => bail!(
                    "{authority} is listed in federation.partners in the configuration; remove it there"
                ),
                Some(_) => {}
            }
            store.remove_partner(&authority).await?;
            writeln!(
                out,
                "partner {authority} removed; requests from it are refused from now on"
            )?;
        }
        PartnerCommand::List { json } => {
            for p in store.list_partners().await? {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&p)?)?;
                } else {
                    writeln!(out, "{:<40} {:<50} {}", p.authority, p.base_url, p.source)?;
                }
            }
        }
    }
    Ok(())
}

async fn outbox(
    cmd: OutboxCommand,
    config: &Config,
    store: &dyn Store,
    out: &mut dyn Write,
    now: Timestamp,
) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::Status { json } => {
            let threshold = config.federation.delivery.breaker_threshold;
            for q in store.peer_queues().await? {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&q)?)?;
                    continue;
                }
                let breaker = if q.consecutive_failures >= threshold {
                    "open"
                } else {
                    "closed"
                };
                writeln!(
                    out,
                    "{}: {} pending, {} parked, {} consecutive failures, breaker {breaker}, next attempt {}{}",
                    q.peer,
                    q.pending,
                    q.parked,
                    q.consecutive_failures,
                    q.next_attempt_at,
                    q.last_error
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
        OutboxCommand::Parked { json } => {
            for e in store.parked_entries(10_000).await? {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&e)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {}  {}  {} attempts  {}",
                        e.id,
                        e.peer,
                        e.activity_id,
                        e.attempts,
                        e.last_error.unwrap_or_default()
                    )?;
                }
            }
        }
        OutboxCommand::Retry { ids, all } => {
            let ids = if all { Vec::new() } else { ids };
            let n = store.retry_parked(&ids, now).await?;
            writeln!(out, "{n} parked deliveries queued again")?;
        }
    }
    Ok(())
}
