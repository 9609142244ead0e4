//! Rules for migrations that touch tables which may already be large in production: an index on
//! an existing table is built `CONCURRENTLY` (in a `-- no-transaction` migration, since Postgres
//! cannot build one concurrently inside a transaction), and a column added to an existing table
//! has no volatile default (which rewrites the whole table under an exclusive lock). A
//! `-- no-transaction` migration holds exactly one statement: Postgres runs a multi-statement
//! query string in one implicit transaction, where `CONCURRENTLY` is refused (found by the test
//! below). Should a concurrent build fail, it leaves an invalid index behind: drop it by hand
//! (`DROP INDEX CONCURRENTLY`) before the migration is run again.

use std::path::Path;

/// Applied before the rule existed. Editing them would change their checksums, and sqlx then
/// refuses to start against every database that has them; they stay as they are.
const BEFORE_THE_RULE: [&str; 3] = [
    "20260105000000_routing_queue_priority.sql",
    "20260108000000_message_stored_at.sql",
    "20260109000000_customer_lookup_indexes.sql",
];

const VOLATILE: [&str; 4] = ["clock_timestamp()", "random()", "gen_random_uuid()", "timeofday()"];

/// Returns the name after `keyword` in `statement` (upper-cased copy `upper`), skipping modifiers.
fn object_after(statement: &str, upper: &str, keyword: &str) -> Option<String> {
    let at = upper.find(keyword)? + keyword.len();
    statement[at..]
        .split_whitespace()
        .find(|w| !["IF", "NOT", "EXISTS", "ONLY", "CONCURRENTLY"].contains(&w.to_ascii_uppercase().as_str()))
        .map(|w| w.trim_end_matches(['(', ';']).to_ascii_lowercase())
}

/// The rule's complaints about one migration.
fn check(name: &str, sql: &str) -> Vec<String> {
    let no_transaction = sql.lines().next().is_some_and(|l| l.trim() == "-- no-transaction");
    let code: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let statements: Vec<&str> = code.split(';').map(str::trim).filter(|s| !s.is_empty()).collect();
    let created: Vec<String> = statements
        .iter()
        .filter_map(|s| {
            let upper = s.to_ascii_uppercase();
            upper
                .starts_with("CREATE TABLE")
                .then(|| object_after(s, &upper, "TABLE"))
                .flatten()
        })
        .collect();
    let mut problems = Vec::new();
    if no_transaction && statements.len() != 1 {
        problems.push(format!(
            "{name}: a `-- no-transaction` migration must hold exactly one statement (Postgres wraps several in a transaction)"
        ));
    }
    for s in &statements {
        let upper = s.to_ascii_uppercase();
        let squashed = upper.split_whitespace().collect::<Vec<_>>().join(" ");
        if squashed.starts_with("CREATE INDEX") || squashed.starts_with("CREATE UNIQUE INDEX") {
            let table = object_after(s, &upper, " ON ").unwrap_or_default();
            let concurrent = squashed.contains(" CONCURRENTLY ") && no_transaction;
            if !(created.contains(&table) || concurrent) {
                problems.push(format!(
                    "{name}: index on existing table {table} must be CREATE INDEX CONCURRENTLY in a `-- no-transaction` migration"
                ));
            }
        }
        if squashed.starts_with("ALTER TABLE") && squashed.contains("ADD COLUMN") {
            let table = object_after(s, &upper, "TABLE").unwrap_or_default();
            let lower = s.to_ascii_lowercase();
            if !created.contains(&table) && VOLATILE.iter().any(|v| lower.contains(v)) {
                problems.push(format!(
                    "{name}: a volatile default on a column added to {table} rewrites the table; add it without one and backfill in batches"
                ));
            }
        }
    }
    problems
}

#[test]
fn migrations_on_existing_tables_do_not_lock_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut problems = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".sql") || BEFORE_THE_RULE.contains(&name.as_str()) {
            continue;
        }
        seen += 1;
        problems.extend(check(&name, &std::fs::read_to_string(&path).unwrap()));
    }
    assert!(seen >= 10, "read the migrations ({seen})");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_rule_tells_a_blocking_migration_from_a_safe_one() {
    let blocking = "CREATE INDEX messages_body ON session.messages (body);\n\
                    ALTER TABLE session.messages ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();";
    assert_eq!(check("x.sql", blocking).len(), 2, "{:?}", check("x.sql", blocking));
    let not_outside_a_transaction = "CREATE INDEX CONCURRENTLY messages_body ON session.messages (body);";
    assert_eq!(check("x.sql", not_outside_a_transaction).len(), 1);
    let safe = "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS messages_body ON session.messages (body);";
    assert!(check("x.sql", safe).is_empty(), "{:?}", check("x.sql", safe));
    let two = "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS session.messages_body;\n\
               CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_body ON session.messages (body);";
    assert_eq!(check("x.sql", two).len(), 1, "{:?}", check("x.sql", two));
    let new_table = "CREATE TABLE session.things (id uuid, at timestamptz DEFAULT clock_timestamp());\n\
                     CREATE INDEX things_at ON session.things (at);";
    assert!(check("x.sql", new_table).is_empty(), "{:?}", check("x.sql", new_table));
    // The grandfathered ones would fail it: the rule is not vacuous.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    for name in BEFORE_THE_RULE {
        let sql = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(!check(name, &sql).is_empty(), "{name} would pass; take it off the list");
    }
}

#[tokio::test]
async fn a_no_transaction_migration_builds_its_index_concurrently() {
    let db = switchboard_test_support::TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("sb-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("99990101000000_things.sql"),
        "CREATE TABLE session.things (id bigint PRIMARY KEY, body text);",
    )
    .unwrap();
    let concurrent = "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS things_body ON session.things (body);";
    assert!(check("99990102000000_things_body.sql", concurrent).is_empty());
    std::fs::write(dir.join("99990102000000_things_body.sql"), concurrent).unwrap();
    let mut migrator = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    migrator.set_ignore_missing(true);
    migrator.run(&db.pool).await.unwrap();
    let valid: bool =
        sqlx::query_scalar("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'things_body'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(valid, "built and valid");
    std::fs::remove_dir_all(&dir).unwrap();
}
