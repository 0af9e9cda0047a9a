//! The `mandate` command line: the server (default) and the operator's commands. Commands that
//! create something print one JSON object on stdout; errors go to stderr with a non-zero exit.

use super::config::Config;
use super::domain::{self, RequestMeta};
use crate::model::audit::ChainStatus;
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
    /// Platform API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
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
enum ApiKeyCommand {
    /// Create an API key for an organization (shown once).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long, default_value = "default")]
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify an organization's audit chain; exit 0 only when it is intact.
    Verify {
        #[arg(long)]
        org: Uuid,
    },
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
        super::serve(config).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let pool = super::connect_and_migrate(&config).await?;
    let now = OffsetDateTime::now_utc();
    match command {
        Command::Serve | Command::Migrate => {
            eprintln!("migrations applied");
        }
        Command::Org { command: OrgCommand::Create { name, admin_email, domain } } => {
            let created = domain::orgs::create(&pool, &name, &admin_email, domain.as_deref(), &operator_meta(), now)
                .await
                .map_err(user_error)?;
            print_json(json!({
                "org_id": created.org_id,
                "setup_url": config.url(&domain::admins::setup_path(&created.setup_token)),
            }));
        }
        Command::ApiKey { command: ApiKeyCommand::Create { org, name } } => {
            let key = domain::api_keys::create(&pool, org, &name, &operator_meta(), now).await.map_err(user_error)?;
            print_json(json!({ "api_key": key }));
        }
        Command::Audit { command: AuditCommand::Verify { org } } => {
            match domain::audit::verify(&pool, org).await.map_err(user_error)? {
                ChainStatus::Intact { events } => {
                    print_json(json!({ "status": "intact", "org_id": org, "events": events }));
                }
                ChainStatus::Broken { first_bad_seq, reason } => {
                    print_json(
                        json!({ "status": "broken", "org_id": org, "first_bad_seq": first_bad_seq, "reason": reason }),
                    );
                    eprintln!("audit chain broken at sequence number {first_bad_seq}: {reason}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Command::Demo { command: DemoCommand::Seed } => {
            let seeded = super::demo::seed(&pool, &config).await.context("seeding the demo organization failed")?;
            print_json(seeded);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Domain errors as operator-facing messages.
fn user_error(err: domain::DomainError) -> anyhow::Error {
    match err {
        domain::DomainError::NotFound => anyhow::anyhow!("not found: no such organization or object"),
        other => anyhow::anyhow!("{other}"),
    }
}
