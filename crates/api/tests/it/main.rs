//! The api crate's own rules against the real local Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test binary: a panic is the failure report

use std::time::Duration;

use secrecy::SecretString;
use switchboard_api::auth::Keys;
use switchboard_test_support::TestDb;

const BOOTSTRAP: &str = "sb_bootstrap_admin_key_0123456789abcdefghijkl";

#[tokio::test]
async fn a_revoked_bootstrap_key_stays_revoked_when_it_is_configured_again() {
    let db = TestDb::new().await;
    let keys = Keys::new(db.pool.clone(), Duration::from_millis(1));
    let key = SecretString::from(BOOTSTRAP.to_owned());
    assert!(keys.ensure_bootstrap(&key).await.unwrap(), "a new bootstrap key is usable");
    assert!(keys.authenticate(BOOTSTRAP).await.is_ok());
    // Configured again on a restart: still one key, still usable.
    assert!(keys.ensure_bootstrap(&key).await.unwrap());
    let listed = keys.list().await.unwrap();
    assert_eq!(listed.len(), 1);

    keys.revoke(listed[0].id).await.unwrap();
    assert!(keys.authenticate(BOOTSTRAP).await.is_err(), "revoked");
    // The next restart configures the same key: it must not come back to life.
    let keys = Keys::new(db.pool.clone(), Duration::from_millis(1));
    assert!(!keys.ensure_bootstrap(&key).await.unwrap(), "reported as unusable");
    assert!(keys.authenticate(BOOTSTRAP).await.is_err(), "still revoked after the restart");
    assert!(!keys.any_admin().await.unwrap());

    // A new bootstrap key works, and the revoked one stays revoked.
    let fresh = "sb_bootstrap_admin_key_fresh456789abcdefghijkl";
    assert!(keys.ensure_bootstrap(&SecretString::from(fresh.to_owned())).await.unwrap());
    assert!(keys.authenticate(fresh).await.is_ok());
    assert!(keys.authenticate(BOOTSTRAP).await.is_err());
}
