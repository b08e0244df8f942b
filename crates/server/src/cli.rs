//! The command line: `caremesh serve`, `caremesh migrate`, and the admin commands hospital IT uses
//! to set up accounts. Passwords are never taken as arguments (they would land in shell history
//! and `ps`): `--password-stdin` reads one line, otherwise a password is generated and printed once.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use caremesh_app::admin::{self, Administrator, CheckedCredential, QueueStatus};
use caremesh_app::{App, AppError};
use caremesh_domain::{Role, SystemClock};
use caremesh_store::Store;
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
    /// Make an empty database a new node (a new key, no accounts). Without it an empty
    /// `caremesh.db` or PostgreSQL database is refused; a SQLite file that does not exist yet is
    /// created either way.
    #[arg(long, global = true)]
    pub init: bool,
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
    /// Put parked deliveries back in their queues (`--id`, `--all`), or try a partner's waiting
    /// queue now instead of at its next scheduled attempt (`PEER`).
    Retry {
        /// A partner (authority as listed by `outbox status`, or base URL) whose waiting queue is
        /// tried now.
        #[arg(conflicts_with_all = ["ids", "all"])]
        peer: Option<String>,
        /// Entry ids from `outbox parked`.
        #[arg(long = "id", required_unless_present_any = ["all", "peer"])]
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

/// Runs an admin command against the store, writing its result to `out`. Every command acts
/// through the application layer, as the node's API and pages do, as the operator at the
/// node's console ([`Administrator::Console`]).
pub async fn run_admin(
    command: Command,
    config: &Config,
    store: Arc<dyn Store>,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if matches!(
        command,
        Command::Serve | Command::Migrate | Command::Config | Command::Backup { .. }
    ) {
        bail!("not an admin command")
    }
    let app = crate::build_app(config, store, Arc::new(SystemClock)).await?;
    let console = Administrator::Console;
    match command {
        Command::Serve | Command::Migrate | Command::Config | Command::Backup { .. } => {
            bail!("not an admin command")
        }
        Command::CreateAdmin(a) => create_account(&app, Role::Admin, a, stdin, out).await,
        Command::Account(AccountCommand::Create { role, account }) => {
            let role: Role = role.parse()?;
            create_account(&app, role, account, stdin, out).await
        }
        Command::Account(AccountCommand::List { role, json }) => {
            let role = role.map(|r| r.parse::<Role>()).transpose()?;
            list_accounts(&app, role, json, out).await
        }
        Command::Account(AccountCommand::ResetPassword {
            username,
            password_stdin,
        }) => {
            let password = read_password(password_stdin, stdin)?;
            let generated = admin::reset_password(&app, &console, &username, password)
                .await
                .map_err(about(&username))?;
            writeln!(out, "password of {username} reset; all its sessions ended")?;
            if let Some(p) = generated {
                writeln!(out, "new password (shown once): {p}")?;
            }
            Ok(())
        }
        Command::Account(AccountCommand::Disable { username }) => {
            admin::set_disabled(&app, &console, &username, true)
                .await
                .map_err(about(&username))?;
            writeln!(out, "{username} disabled; all its sessions ended")?;
            Ok(())
        }
        Command::Account(AccountCommand::Enable { username }) => {
            admin::set_disabled(&app, &console, &username, false)
                .await
                .map_err(about(&username))?;
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
            let checked = CheckedCredential {
                title,
                specialty,
                licence_number,
                checked_on,
                valid_until: valid_until.and_then(admin::valid_through),
            };
            let credential = admin::record_credential(&app, &console, &username, checked)
                .await
                .map_err(about(&username))?;
            writeln!(
                out,
                "credential of {username} recorded: {} ({}), licence {} checked on {}",
                credential.title,
                credential.specialty,
                credential.licence_number,
                credential.checked_on
            )?;
            Ok(())
        }
        Command::Credential(CredentialCommand::Revoke { username }) => {
            admin::revoke_credential(&app, &console, &username)
                .await
                .map_err(about(&username))?;
            writeln!(out, "credential of {username} revoked")?;
            Ok(())
        }
        Command::Invite(args) => create_invite(&app, args, out).await,
        Command::Partner(cmd) => partner(&app, cmd, out).await,
        Command::Keys(KeysCommand::Rotate) => {
            let rotation = admin::rotate_key(&app, &console).await?;
            writeln!(
                out,
                "new key {}; announced to {} partner(s)",
                rotation.key_id, rotation.partners
            )?;
            writeln!(
                out,
                "the previous key stays valid for {} hours",
                config.federation.key_grace_hours
            )?;
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            for k in admin::node_keys(&app, &console).await? {
                let state = match k.retired_at {
                    None => "current".to_owned(),
                    Some(t) => format!("retired {t}"),
                };
                writeln!(out, "{}  created {}  {state}", k.key_id, k.created_at)?;
            }
            Ok(())
        }
        Command::Outbox(cmd) => outbox(&app, cmd, out).await,
    }
}

/// What the application refused, said as the CLI says it about the account `username`.
fn about(username: &str) -> impl Fn(AppError) -> anyhow::Error + '_ {
    move |e| match e {
        AppError::NotFound("account") => anyhow!("no account named {username:?}"),
        AppError::NotFound("credential") => anyhow!("{username} has no credential"),
        e => e.into(),
    }
}

/// The password on the first line of standard input, or `None` to have one generated.
fn read_password(from_stdin: bool, stdin: &mut dyn BufRead) -> anyhow::Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

async fn create_account(
    app: &App,
    role: Role,
    a: NewAccountArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let display_name = a
        .display_name
        .unwrap_or_else(|| a.username.trim().to_owned());
    let password = read_password(a.password_stdin, stdin)?;
    let (user, generated) = admin::create_staff_account(
        app,
        &Administrator::Console,
        &a.username,
        &display_name,
        role,
        password,
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
    app: &App,
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
        let page = admin::accounts(app, &Administrator::Console, role, after, 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user.id);
        for u in page.iter().map(|a| &a.user) {
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

async fn create_invite(app: &App, args: InviteArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let by = Administrator::named(app, &args.by)
        .await
        .map_err(|e| match e {
            AppError::Forbidden { .. } => anyhow!("{} is not an administrator", args.by),
            e => about(&args.by)(e),
        })?;
    let created = admin::create_patient_invite(
        app,
        &by,
        args.label,
        args.valid_hours.map(i64::from),
        Some(args.max_uses),
    )
    .await?;
    writeln!(
        out,
        "invite {} valid until {} for {} sign-up(s)",
        created.invite.id, created.invite.expires_at, created.invite.max_uses
    )?;
    writeln!(out, "link: {}", created.url)?;
    writeln!(out, "token: {}", created.token)?;
    Ok(())
}

async fn partner(app: &App, cmd: PartnerCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let console = Administrator::Console;
    match cmd {
        PartnerCommand::Add { partner } => {
            let (p, new) = admin::add_partner(app, &console, &partner).await?;
            let verb = if new { "added" } else { "updated" };
            writeln!(out, "partner {} {verb} ({})", p.authority, p.base_url)?;
        }
        PartnerCommand::Remove { partner } => {
            let authority = admin::remove_partner(app, &console, &partner)
                .await
                .map_err(|e| match e {
                    AppError::NotFound(_) => anyhow!("{partner} is not a partner"),
                    e => e.into(),
                })?;
            writeln!(
                out,
                "partner {authority} removed; requests from it are refused from now on"
            )?;
        }
        PartnerCommand::List { json } => {
            for p in admin::partners(app, &console).await? {
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

async fn outbox(app: &App, cmd: OutboxCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let console = Administrator::Console;
    match cmd {
        OutboxCommand::Status { json } => {
            for QueueStatus {
                queue: q,
                breaker_open,
            } in admin::outbox_queues(app, &console).await?
            {
                if json {
                    writeln!(out, "{}", serde_json::to_string(&q)?)?;
                    continue;
                }
                let breaker = if breaker_open { "open" } else { "closed" };
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
            for e in admin::parked_deliveries(app, &console, 10_000).await? {
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
        OutboxCommand::Retry {
            peer: Some(peer), ..
        } => {
            let (peer, n) = admin::retry_queue_now(app, &console, &peer).await?;
            writeln!(out, "{peer}: {n} pending deliveries due now")?;
        }
        OutboxCommand::Retry { ids, all, .. } => {
            let ids = if all { Vec::new() } else { ids };
            let n = admin::retry_parked(app, &console, &ids).await?;
            writeln!(out, "{n} parked deliveries queued again")?;
        }
    }
    Ok(())
}
