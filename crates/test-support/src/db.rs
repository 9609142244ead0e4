//! A fresh, migrated database per test, cloned from a template that is built once per
//! migration set (cloning takes milliseconds; migrating every time would not).

use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use switchboard_storage::MIGRATOR;

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    /// Connection URL of the test database.
    pub url: String,
    /// A pool on it.
    pub pool: PgPool,
    name: String,
    admin_url: String,
    logins: std::sync::Mutex<Vec<String>>,
}

fn template_name() -> String {
    // Any change to any migration gives a new template.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in switchboard_storage::roles::VERSION.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    for migration in MIGRATOR.iter() {
        for byte in migration.checksum.iter().chain(migration.version.to_le_bytes().iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("sb_tmpl_{hash:016x}")
}

/// Returns `url` pointing at `database` instead (query parameters are dropped).
fn with_database(url: &str, database: &str) -> String {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    format!("{prefix}/{database}")
}

impl TestDb {
    /// Creates a migrated database for this test. Panics with advice when Postgres is down.
    pub async fn new() -> Self {
        let admin_url = crate::database_url();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach Postgres at DATABASE_URL ({e}); run `bash .ci/run` or start PostgreSQL"));
        let template = template_name();
        sqlx::query("SELECT pg_advisory_lock(727272)")
            .execute(&mut admin)
            .await
            .expect("lock");
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .expect("query pg_database");
        if !exists {
            let building = format!("{template}_building");
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .expect("drop stale");
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {building}")))
                .execute(&mut admin)
                .await
                .expect("create template");
            let mut conn = PgConnection::connect(&with_database(&admin_url, &building))
                .await
                .expect("connect template");
            MIGRATOR.run(&mut conn).await.expect("migrations apply");
            switchboard_storage::roles::grant(&mut conn).await.expect("service roles granted");
            conn.close().await.expect("close template");
            sqlx::query(AssertSqlSafe(format!("ALTER DATABASE {building} RENAME TO {template}")))
                .execute(&mut admin)
                .await
                .expect("publish template");
        }
        let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {template}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        sqlx::query("SELECT pg_advisory_unlock(727272)")
            .execute(&mut admin)
            .await
            .expect("unlock");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let pool = switchboard_storage::connect(&url, 10).await.expect("connect test database");
        Self {
            url,
            pool,
            name,
            admin_url,
            logins: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Creates a login role for `service` that is a member of its group role only (its own
    /// schema, as in production), dropped with the database; returns a URL that logs in as it.
    pub async fn login_for(&self, service: &str) -> String {
        let role = format!("{}_{service}", self.name);
        let password = uuid::Uuid::new_v4().simple().to_string();
        sqlx::query(AssertSqlSafe(format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE {}",
            switchboard_storage::roles::group_role(service)
        )))
        .execute(&self.pool)
        .await
        .expect("create login role");
        self.logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(role.clone());
        with_user(&self.url, &role, &password)
    }
}

/// Returns `url` logging in as `user` with `password`.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        let logins = std::mem::take(&mut *self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        // The pool's connections belong to the test's runtime, which is blocked here: FORCE
        // terminates them server-side instead of closing them from this thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut admin)
                        .await;
                    for role in logins {
                        let _ = sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
                            .execute(&mut admin)
                            .await;
                    }
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
