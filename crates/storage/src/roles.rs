//! Least privilege in PostgreSQL: each service connects as a role that may read and write its
//! own schema and nothing else, so routing, sender, api and ingress cannot read `session`'s
//! sealed auth tokens, and no service can change the schema.
//!
//! `switchboard migrate` owns every schema. After applying migrations it makes sure the group
//! roles exist (`switchboard_session`, …: NOLOGIN) and grants each one its schema's tables and
//! sequences, again after every migration so new tables are covered. The login roles the
//! services use are members of these, created by whoever manages the database's users (the
//! dev overlay's init script, CloudNativePG's managed roles, a DBA):
//! `CREATE ROLE session_app LOGIN PASSWORD '…' IN ROLE switchboard_session`.

use sqlx::PgConnection;

use crate::StorageError;

/// Changes whenever [`grant`] grants differently (test templates are rebuilt on a change).
pub const VERSION: u32 = 1;

/// The services that use PostgreSQL, each with the one schema it owns the data of.
pub const SERVICES: [&str; 5] = ["session", "routing", "sender", "api", "ingress"];

/// The group role that grants `service` its schema.
pub fn group_role(service: &str) -> String {
    format!("switchboard_{service}")
}

/// What [`grant`] did for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// The group role exists and has its schema.
    Schema { service: &'static str, role: String },
    /// The group role does not exist and this connection may not create it.
    NoRole { service: &'static str, role: String },
}

/// Creates the missing group roles where this connection may, and grants each its schema.
/// Idempotent; the statements are the same on every run.
pub async fn grant(conn: &mut PgConnection) -> Result<Vec<Granted>, StorageError> {
    let mut done = Vec::new();
    for service in SERVICES {
        let role = group_role(service);
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&role)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} NOLOGIN")))
                .execute(&mut *conn)
                .await
            {
                Ok(_) => {}
                // Another migrator made it meanwhile.
                Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42710" | "23505")) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                    done.push(Granted::NoRole { service, role });
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        for statement in [
            format!("GRANT USAGE ON SCHEMA {service} TO {role}"),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {service} TO {role}"),
            format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {service} TO {role}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *conn).await?;
        }
        done.push(Granted::Schema { service, role });
    }
    Ok(done)
}
