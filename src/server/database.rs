//! Connecting to PostgreSQL with two roles: the schema's owner applies migrations and grants,
//! and the server serves with a runtime role that may read and write the application's tables
//! but cannot alter, disable or drop the audit trail's tables and triggers, nor update,
//! truncate or delete from the audit tables beyond what their triggers allow (retention below
//! a signed checkpoint). A bug or an attacker inside the server thus cannot rewrite history
//! without the owner's credentials.
//!
//! `MANDATE_OWNER_DATABASE_URL` names the owner; `DATABASE_URL` the runtime role (`scripts/setup`
//! creates `mandate_app`). With only `DATABASE_URL`, that one role does both, and the server
//! says at start that the audit trail is not protected from it.

use super::config::{url_for_logs, Config};
use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The audit trail's tables, and the only changes the runtime role may make to each (on top
/// of reading). Every other table of the schema gets select, insert, update and delete.
const AUDIT_TABLES: [(&str, &str); 4] = [
    // Delete: retention, which the table's trigger limits to events below a signed checkpoint.
    ("audit_events", "insert, delete"),
    ("audit_checkpoints", "insert"),
    ("audit_signing_keys", "insert"),
    // Update: appending moves the head, which its trigger lets move only forward.
    ("audit_chain_heads", "insert, update"),
];

/// Connects (creating the database when missing), applies pending migrations as the owner,
/// grants the runtime role what it needs, and returns the runtime role's pool.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<PgPool> {
    use sqlx::migrate::MigrateDatabase;
    let owner_url = config.owner_database_url.as_deref().unwrap_or(&config.database_url);
    if !sqlx::Postgres::database_exists(owner_url).await.unwrap_or(false) {
        sqlx::Postgres::create_database(owner_url).await.context("could not create the database")?;
    }
    let pool = connect(&config.database_url, config.database_max_connections).await?;
    if config.owner_database_url.is_none() {
        migrate(&pool).await?;
    } else {
        let owner = connect(owner_url, 2).await?;
        migrate(&owner).await?;
        // language=PostgreSQL
        let runtime = sqlx::query_scalar!(r#"select current_user::text as "user!""#).fetch_one(&pool).await?;
        // language=PostgreSQL
        let owner_role = sqlx::query_scalar!(r#"select current_user::text as "user!""#).fetch_one(&owner).await?;
        // The same role twice would revoke its own rights on the audit tables and migrations.
        if runtime != owner_role {
            grant_runtime_role(&owner, &runtime).await?;
        }
        owner.close().await;
    }
    if let Some(reason) = audit_trail_unprotected(&pool).await? {
        tracing::warn!(
            "{reason}: the audit trail is not protected from this server. Set MANDATE_OWNER_DATABASE_URL to the \
             schema owner and DATABASE_URL to a role of its own (scripts/setup creates mandate_app)"
        );
    }
    Ok(pool)
}

async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("could not connect to PostgreSQL at {}", url_for_logs(url)))
}

/// Applies the schema migrations and the session store's own table.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await.context("database migration failed")?;
    tower_sessions_sqlx_store::PostgresStore::new(pool.clone())
        .migrate()
        .await
        .context("session store migration failed")?;
    Ok(())
}

/// Gives `role` what serving needs on the current database, and no more on the audit tables.
/// Run by the owner after every migration (idempotent), so new tables are covered.
pub async fn grant_runtime_role(owner: &PgPool, role: &str) -> anyhow::Result<()> {
    let role = quote_identifier(role);
    let mut statements = vec![
        format!("grant usage on schema public, tower_sessions to {role}"),
        format!("grant select, insert, update, delete on all tables in schema public, tower_sessions to {role}"),
        format!("grant usage, select on all sequences in schema public to {role}"),
        format!("revoke all on _sqlx_migrations from {role}"),
        format!("grant select on _sqlx_migrations to {role}"),
    ];
    for (table, changes) in AUDIT_TABLES {
        statements.push(format!("revoke all on {table} from {role}"));
        statements.push(format!("grant select, {changes} on {table} to {role}"));
    }
    // Temporary tables could shadow the tables the audit triggers read: nobody but the owner
    // needs them.
    statements.push(
        "do $$ begin execute format('revoke temporary on database %I from public', current_database()); end $$"
            .to_string(),
    );
    let mut tx = owner.begin().await?;
    // Nodes starting together grant one at a time (concurrent GRANTs on a table conflict).
    // language=PostgreSQL
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended('mandate_runtime_grants', 0))")
        .execute(&mut *tx)
        .await?;
    for statement in statements {
        sqlx::query(&statement)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("could not grant the runtime role its rights ({statement})"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// Why the pool's role could rewrite the audit trail (it is a superuser, or owns its tables),
/// or none.
pub async fn audit_trail_unprotected(pool: &PgPool) -> anyhow::Result<Option<String>> {
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select current_user::text as "user!", r.rolsuper as "superuser!",
                  pg_has_role(current_user, t.tableowner, 'MEMBER') as "owner!"
           from pg_roles r, pg_tables t
           where r.rolname = current_user and t.schemaname = 'public' and t.tablename = 'audit_events'"#
    )
    .fetch_one(pool)
    .await?;
    Ok(if row.superuser {
        Some(format!("the database role {} is a superuser", row.user))
    } else if row.owner {
        Some(format!("the database role {} owns the audit tables", row.user))
    } else {
        None
    })
}

/// `name` as a PostgreSQL identifier, quoted.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_quoted_as_identifiers() {
        assert_eq!(quote_identifier("mandate_app"), "\"mandate_app\"");
        assert_eq!(quote_identifier("a\"; drop table x; --"), "\"a\"\"; drop table x; --\"");
    }
}
