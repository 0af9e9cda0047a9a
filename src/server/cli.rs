//! The `mandate` command line: the server (default) and the operator's commands. Commands that
//! create something print one JSON object on stdout; errors go to stderr with a non-zero exit.

use super::config::Config;
use super::domain::{self, RequestMeta};
use crate::model::api_keys::ApiKeyScope;
use crate::model::audit::ChainStatus;
use crate::server::domain::Call;
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::process::ExitCode;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "mandate", version, about = "Mandate: identity control plane for AI agents")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal and the APIs (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Portal admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Platform API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Directories (SCIM provisioning).
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// SSO connections.
    Connection {
        #[command(subcommand)]
        command: ConnectionCommand,
    },
    /// Agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The demo organization used by `scripts/run`.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and print its owner's one-time setup link.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        domain: Option<String>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// The way back in for an admin who lost every second factor (or their password): clears
    /// their factors and password, ends their sessions and prints a one-time setup link.
    Recover {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create an API key for an organization (shown once).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long, default_value = "default")]
        name: String,
        /// What the key may do, comma-separated (see the README's security model); the default
        /// is a resource server's: introspect tokens and report agent actions.
        #[arg(long, default_value = "introspect,audit:write")]
        scopes: String,
        /// When the key stops working, in days: `90d` or `90`. Never, when absent.
        #[arg(long)]
        expires_in: Option<String>,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Create a directory and print its SCIM base URL and bearer token (shown once).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        name: String,
        /// okta, entra, google, jumpcloud or generic
        #[arg(long, default_value = "generic")]
        provider: String,
    },
}

#[derive(Subcommand)]
enum ConnectionCommand {
    /// Create an SSO connection and print what to register at the IdP. With --domain, the
    /// domain is claimed and checked for its DNS TXT record at once.
    Create {
        #[arg(long)]
        org: Uuid,
        /// oidc or saml
        #[arg(long = "type", default_value = "oidc")]
        kind: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
        /// The client secret (or set MANDATE_CLIENT_SECRET to keep it out of the process list).
        #[arg(long, env = "MANDATE_CLIENT_SECRET", hide_env_values = true)]
        client_secret: Option<String>,
        #[arg(long, default_value = "")]
        scopes: String,
        /// `group=role`, repeatable (roles: admin, approver, auditor).
        #[arg(long = "role-mapping")]
        role_mappings: Vec<String>,
        #[arg(long)]
        domain: Option<String>,
        /// SAML: the IdP's metadata URL.
        #[arg(long)]
        metadata_url: Option<String>,
        /// SAML: a file holding the IdP's metadata XML.
        #[arg(long)]
        metadata_file: Option<std::path::PathBuf>,
        /// SAML: accept sign-ins started at the IdP (off is safer).
        #[arg(long)]
        allow_idp_initiated: bool,
        /// The IdP verifies every email it asserts (emails then link first sign-ins to people
        /// already in the directory; never to admins).
        #[arg(long)]
        trust_idp_email: bool,
        /// Turn the connection on at once, skipping the Test connection run (recorded in the
        /// audit trail). Without it the connection stays off until a test in the portal passes.
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Register an agent for an owner (an unknown email becomes a person) and print its
    /// credentials (the secret is shown once).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        name: String,
        /// Comma-separated scope names, e.g. crm.read,mail.send
        #[arg(long, default_value = "")]
        scopes: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Approve the requested scopes as the operator (missing catalog scopes are created as low risk).
        #[arg(long)]
        approve: bool,
    },
    /// Revoke an agent: its credentials and every token it carries stop working.
    Revoke {
        #[arg(long)]
        org: Uuid,
        #[arg(long)]
        agent: Uuid,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Designate a delegate: the agent that may exchange this agent's tokens for its own
    /// (RFC 8693). With --revoke, withdraw the designation.
    Delegate {
        #[arg(long)]
        org: Uuid,
        /// The agent whose tokens are handed on.
        #[arg(long)]
        agent: Uuid,
        /// The sub-agent that may receive them.
        #[arg(long)]
        to: Uuid,
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key active; the old one stays published until its tokens expire.
    Rotate,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify an organization's audit log: every event's hash chain link, the Merkle tree of
    /// every signed checkpoint and every signature. Exit 0 only when all of it verifies, 2 when
    /// something does not (naming the first bad event).
    Verify {
        /// The organization (database mode).
        #[arg(long, required_unless_present = "export")]
        org: Option<Uuid>,
        /// A checkpoint kept outside the database (the JSON of `/api/v1/audit/checkpoint`):
        /// detects truncation and rewriting even if the stored checkpoints were replaced.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
        /// Verify an NDJSON export offline instead (no database): needs --checkpoint and --public-key.
        #[arg(long, requires_all = ["checkpoint", "public_key"])]
        export: Option<std::path::PathBuf>,
        /// A trusted checkpoint key (base64 Ed25519 key or PEM, as `/api/v1/audit/keys` publishes
        /// it), repeatable. Without it, the keys whose private half MANDATE_MASTER_KEY decrypts.
        #[arg(long, allow_hyphen_values = true)]
        public_key: Vec<String>,
    },
    /// Print the public keys that sign audit checkpoints.
    Keys,
    /// Sign a checkpoint of every organization whose log grew, now.
    Checkpoint,
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Create the demo organization (or refresh its owner's setup link) and print how to sign in.
    Seed,
}

fn operator_meta() -> RequestMeta {
    RequestMeta { ip: None, user_agent: Some(format!("mandate-cli/{}", env!("CARGO_PKG_VERSION"))), request_id: None }
}

fn print_json(value: serde_json::Value) {
    println!("{value}");
}

pub async fn main() -> ExitCode {
    super::init_tracing();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::from_env()?;
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Serve = command {
        super::serve(config.for_serving()?).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Audit { command: AuditCommand::Verify { export: Some(export), checkpoint, public_key, .. } } =
        &command
    {
        // Offline: only the export, a checkpoint and the public key; no database.
        let keys = domain::audit::checkpoints::AuditKeys::from_public_keys(public_key.iter().map(String::as_str))
            .map_err(user_error)?;
        let checkpoint = read_checkpoint(checkpoint.as_deref())?;
        let file = std::fs::File::open(export).with_context(|| format!("could not open {}", export.display()))?;
        let lines = std::io::BufRead::lines(std::io::BufReader::new(file));
        let status = domain::audit::verify::verify_export(lines, &checkpoint, &keys).map_err(user_error)?;
        return Ok(report_status(checkpoint.org_id, status));
    }
    let pool = super::connect_and_migrate(&config).await?;
    let op = Operator { pool, config, meta: operator_meta(), now: OffsetDateTime::now_utc() };
    match command {
        Command::Serve | Command::Migrate => eprintln!("migrations applied"),
        Command::Org { command } => org(&op, command).await?,
        Command::Admin { command } => admin(&op, command).await?,
        Command::ApiKey { command } => api_key(&op, command).await?,
        Command::Directory { command } => directory(&op, command).await?,
        Command::Connection { command } => connection(&op, command).await?,
        Command::Agent { command } => agent(&op, command).await?,
        Command::Keys { command } => keys(&op, command).await?,
        Command::Audit { command } => return audit(&op, command).await,
        Command::Demo { command } => demo(&op, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What every operator command runs with: the database, the configuration, and the request
/// details and time its audit events carry.
struct Operator {
    pool: sqlx::PgPool,
    config: Config,
    meta: RequestMeta,
    now: OffsetDateTime,
}

impl Operator {
    /// A call into the domain as the platform operator, acting in one organization.
    fn call(&self, org_id: Uuid) -> Call<'_> {
        Call::new(domain::Caller::Operator { org_id }, &self.meta, self.now)
    }
}

async fn org(op: &Operator, command: OrgCommand) -> anyhow::Result<()> {
    let OrgCommand::Create { name, admin_email, domain } = command;
    let created =
        domain::org::organizations::create(&op.pool, &name, &admin_email, domain.as_deref(), &op.meta, op.now)
            .await
            .map_err(user_error)?;
    print_json(json!({
        "org_id": created.org_id,
        "setup_url": op.config.url(&domain::org::admins::setup_path(&created.setup_token)),
    }));
    Ok(())
}

async fn admin(op: &Operator, command: AdminCommand) -> anyhow::Result<()> {
    let AdminCommand::Recover { org, email } = command;
    let invitation = domain::org::factors::recover(&op.pool, op.call(org), &email).await.map_err(user_error)?;
    print_json(json!({
        "setup_url": op.config.url(&domain::org::admins::setup_path(&invitation.token)),
        "expires_at": invitation.expires_at.unix_timestamp(),
    }));
    Ok(())
}

async fn api_key(op: &Operator, command: ApiKeyCommand) -> anyhow::Result<()> {
    let ApiKeyCommand::Create { org, name, scopes, expires_in } = command;
    let scopes = ApiKeyScope::parse_list(&scopes).map_err(|err| anyhow::anyhow!("--scopes: {err}"))?;
    let expires_at = match expires_in.as_deref() {
        None => None,
        Some(text) => {
            let days = ApiKeyScope::parse_days(text).map_err(|err| anyhow::anyhow!("--expires-in: {err}"))?;
            Some(op.now + time::Duration::days(days))
        }
    };
    let new = domain::org::api_keys::NewApiKey { name: &name, scopes: &scopes, expires_at };
    let key = domain::org::api_keys::create(&op.pool, op.call(org), new).await.map_err(user_error)?;
    let scopes: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
    print_json(json!({ "api_key": key, "scopes": scopes, "expires_at": expires_at.map(|at| at.unix_timestamp()) }));
    Ok(())
}

async fn directory(op: &Operator, command: DirectoryCommand) -> anyhow::Result<()> {
    let DirectoryCommand::Create { org, name, provider } = command;
    let created = domain::directory::create(&op.pool, op.call(org), &name, &provider).await.map_err(user_error)?;
    print_json(json!({
        "directory_id": created.directory_id,
        "scim_base_url": op.config.url(&domain::directory::scim_base_path(created.directory_id)),
        "bearer_token": created.bearer_token,
    }));
    Ok(())
}

async fn connection(op: &Operator, command: ConnectionCommand) -> anyhow::Result<()> {
    let ConnectionCommand::Create {
        org,
        kind,
        name,
        issuer,
        client_id,
        client_secret,
        scopes,
        role_mappings,
        domain,
        metadata_url,
        metadata_file,
        allow_idp_initiated,
        trust_idp_email,
        enable,
    } = command;
    let caller = domain::Caller::Operator { org_id: org };
    let mut out = match kind.as_str() {
        "saml" => {
            let input = crate::model::connections::SamlConnectionInput {
                name: if name.trim().is_empty() { "SAML".into() } else { name },
                metadata_url: metadata_url.unwrap_or_default(),
                metadata_xml: match metadata_file {
                    Some(path) => {
                        std::fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?
                    }
                    None => String::new(),
                },
                role_mappings: role_mappings.join("\n"),
                allow_idp_initiated,
                trusts_idp_email: trust_idp_email,
                ..Default::default()
            };
            if input.metadata_url.is_empty() && input.metadata_xml.is_empty() {
                anyhow::bail!("--metadata-url or --metadata-file is required for a SAML connection");
            }
            let http = super::domain::outbound::OutboundHttp::new(&op.config.outbound)?;
            let idp = super::auth::saml::idp_settings(&http, &input).await.map_err(user_error)?;
            let id = domain::sso::saml::create(&op.pool, &master_key(&op.config)?, op.call(org), &input, &idp)
                .await
                .map_err(user_error)?;
            json!({
                "connection_id": id,
                "type": "saml",
                "sp_entity_id": domain::sso::saml::sp_entity_id(&op.config.public_url, id),
                "acs_url": domain::sso::saml::acs_url(&op.config.public_url, id),
                "metadata_url": domain::sso::saml::sp_entity_id(&op.config.public_url, id),
            })
        }
        "oidc" => {
            let master = master_key(&op.config)?;
            let input = crate::model::connections::OidcConnectionInput {
                name: if name.trim().is_empty() { "OpenID Connect".into() } else { name },
                issuer: issuer.context("--issuer is required for an OIDC connection")?,
                client_id: client_id.context("--client-id is required for an OIDC connection")?,
                client_secret: client_secret.context("--client-secret is required for an OIDC connection")?,
                scopes,
                role_mappings: role_mappings.join("\n"),
                trusts_idp_email: trust_idp_email,
                ..Default::default()
            };
            let id = domain::sso::oidc::create(&op.pool, &master, op.call(org), &input).await.map_err(user_error)?;
            json!({
                "connection_id": id,
                "type": "oidc",
                "redirect_uri": op.config.url(domain::sso::oidc::OIDC_CALLBACK_PATH),
            })
        }
        other => anyhow::bail!("--type must be oidc or saml (got {other:?})"),
    };
    if enable {
        let id: Uuid = serde_json::from_value(out["connection_id"].clone())?;
        domain::sso::connections::enable(&op.pool, op.call(org), id, true).await.map_err(user_error)?;
    }
    out["enabled"] = json!(enable);
    if let Some(claimed) = domain {
        let claimed = match domain::sso::domains::add(&op.pool, op.call(org), &claimed).await {
            Ok(added) => added,
            Err(domain::DomainError::Conflict(_)) => claimed.trim().to_lowercase(),
            Err(err) => return Err(user_error(err)),
        };
        let dns = domain::sso::dns::TxtResolver::new(op.config.dns_resolver);
        let verified =
            domain::sso::domains::verify(&op.pool, &dns, op.call(org), &claimed).await.map_err(user_error)?;
        let row = domain::sso::domains::list(&op.pool, caller)
            .await
            .map_err(user_error)?
            .into_iter()
            .find(|row| row.domain == claimed)
            .context("the domain vanished")?;
        out["domain"] = json!({
            "domain": row.domain,
            "verified": verified,
            "txt_record_name": row.record_name,
            "txt_record_value": row.record_value,
        });
    }
    print_json(out);
    Ok(())
}

async fn agent(op: &Operator, command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Create { org, owner, name, scopes, description, approve } => {
            let scopes: Vec<String> =
                scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
            let input = domain::agents::registry::NewAgent {
                name: &name,
                description: &description,
                owner: domain::agents::registry::Owner::Email(&owner),
                scopes: &scopes,
                reason: "registered by the platform operator",
                approve,
            };
            let created =
                domain::agents::registry::register(&op.pool, op.call(org), input).await.map_err(user_error)?;
            print_json(
                json!({ "agent_id": created.agent_id, "client_id": created.client_id, "client_secret": created.client_secret }),
            );
        }
        AgentCommand::Revoke { org, agent, reason } => {
            // This process has no cache of its own; the announcement reaches every server.
            let mandates = domain::agents::mandate::Mandates::default();
            let revoked = domain::agents::revocation::revoke(&op.pool, &mandates, op.call(org), agent, &reason)
                .await
                .map_err(user_error)?;
            print_json(json!({ "revoked_tokens": revoked }));
        }
        AgentCommand::Delegate { org, agent, to, revoke } => {
            use domain::agents::delegation::{designate, Designation};
            let mandates = domain::agents::mandate::Mandates::default();
            let designation = if revoke { Designation::Withdraw } else { Designation::Grant };
            designate(&op.pool, &mandates, op.call(org), agent, to, designation).await.map_err(user_error)?;
            print_json(json!({ "agent_id": agent, "delegate_id": to, "designated": !revoke }));
        }
    }
    Ok(())
}

async fn keys(op: &Operator, command: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::Rotate = command;
    let master = master_key(&op.config)?;
    let keys = domain::agents::signing::SigningKeys::load(&op.pool, master).await.map_err(user_error)?;
    let kid = domain::agents::signing::rotate(&op.pool, &keys, op.now).await.map_err(user_error)?;
    print_json(json!({ "active_kid": kid }));
    Ok(())
}

async fn audit(op: &Operator, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { org, checkpoint, public_key, .. } => {
            let org = org.context("--org is required")?;
            let keys = audit_keys(&op.pool, &op.config, &public_key).await?;
            let external = checkpoint.as_deref().map(|path| read_checkpoint(Some(path))).transpose()?;
            let status = domain::audit::verify::verify_with(&op.pool, &keys, org, external.as_ref())
                .await
                .map_err(user_error)?;
            return Ok(report_status(org, status));
        }
        AuditCommand::Keys => {
            let keys = audit_keys(&op.pool, &op.config, &[]).await?;
            print_json(json!({ "keys": keys.public_keys() }));
        }
        AuditCommand::Checkpoint => {
            let high_water = op.config.audit_high_water_file();
            let keys =
                domain::audit::checkpoints::AuditKeys::load(&op.pool, &master_key(&op.config)?, high_water.as_deref())
                    .await
                    .map_err(user_error)?;
            let signed = domain::audit::checkpoints::run_once(&op.pool, &keys, op.now).await.map_err(user_error)?;
            let signed: Vec<_> =
                signed.into_iter().map(|(org_id, size)| json!({ "org_id": org_id, "size": size })).collect();
            print_json(json!({ "checkpoints": signed }));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn demo(op: &Operator, command: DemoCommand) -> anyhow::Result<()> {
    let DemoCommand::Seed = command;
    let seeded = super::demo::seed(&op.pool, &op.config).await.context("seeding the demo organization failed")?;
    print_json(seeded);
    Ok(())
}

/// Prints a verification result; exit code 2 when something does not verify.
fn report_status(org: Uuid, status: ChainStatus) -> ExitCode {
    match status {
        ChainStatus::Intact { events, checkpoints, signed_size, pruned_through } => {
            print_json(json!({
                "status": "intact", "org_id": org, "events": events, "checkpoints": checkpoints,
                "signed_size": signed_size, "pruned_through": pruned_through,
            }));
            ExitCode::SUCCESS
        }
        ChainStatus::Broken { first_bad_seq, reason } => {
            print_json(json!({ "status": "broken", "org_id": org, "first_bad_seq": first_bad_seq, "reason": reason }));
            eprintln!("audit log broken at sequence number {first_bad_seq}: {reason}");
            ExitCode::from(2)
        }
    }
}

fn read_checkpoint(path: Option<&std::path::Path>) -> anyhow::Result<crate::model::audit::Checkpoint> {
    let path = path.context("--checkpoint is required")?;
    let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!("{} is not a checkpoint (save the JSON of GET /api/v1/audit/checkpoint)", path.display())
    })
}

/// The checkpoint keys to trust: those given, or the ones the master key vouches for.
async fn audit_keys(
    pool: &sqlx::PgPool,
    config: &Config,
    public_keys: &[String],
) -> anyhow::Result<domain::audit::checkpoints::AuditKeys> {
    if !public_keys.is_empty() {
        return domain::audit::checkpoints::AuditKeys::from_public_keys(public_keys.iter().map(String::as_str))
            .map_err(user_error);
    }
    let master = master_key(config).context("or pass the checkpoint public key with --public-key")?;
    domain::audit::checkpoints::AuditKeys::load_trusted(pool, &master).await.map_err(user_error)
}

/// The key that encrypts secrets at rest, required by commands that store or use them.
fn master_key(config: &Config) -> anyhow::Result<domain::crypto::master_key::MasterKey> {
    config.master_key.map(domain::crypto::master_key::MasterKey::new).context(
        "MANDATE_MASTER_KEY is required for this command (64 hex characters; `openssl rand -hex 32` makes one)",
    )
}

/// Domain errors as operator-facing messages.
fn user_error(err: domain::DomainError) -> anyhow::Error {
    match err {
        domain::DomainError::NotFound => anyhow::anyhow!("not found: no such organization or object"),
        other => anyhow::anyhow!("{other}"),
    }
}
