//! Embedded migrations: empty database, concurrent replicas, already migrated database.

use securityguard_api::store::db::{MIGRATOR, migrate};
use sqlx::PgPool;

use crate::helpers::*;

#[tokio::test]
async fn migrations_apply_once_under_concurrency_and_rerun_cleanly() {
    let (name, url) = create_database().await;
    // Four "replicas" start at once on an empty database.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let pool = PgPool::connect(&url).await.unwrap();
            migrate(&pool).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("concurrent migration");
    }
    let pool = PgPool::connect(&url).await.unwrap();
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    let expected: Vec<(i64, bool)> = MIGRATOR.iter().map(|m| (m.version, true)).collect();
    assert_eq!(applied, expected);
    let version: i64 = sqlx::query_scalar("SELECT version FROM pattern_set").fetch_one(&pool).await.unwrap();
    assert_eq!(version, 1);
    let protected: i64 = sqlx::query_scalar("SELECT count(*) FROM patterns WHERE kind = 'protected_domain'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(protected >= 10);

    // Already migrated: a no-op, nothing duplicated.
    migrate(&pool).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    assert_eq!(count as usize, MIGRATOR.iter().count());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM pattern_set").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 1);
    pool.close().await;
    drop_database(&name);
}

#[tokio::test]
async fn a_failing_migration_stops_the_server() {
    let (name, url) = create_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    migrate(&pool).await.unwrap();
    // The applied first migration no longer matches the embedded one.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = $1")
        .bind(MIGRATOR.iter().next().unwrap().version)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let config = test_config(url, redis_url(), format!("badmig-{name}:"));
    let app = securityguard_api::startup::Application::build(config).await.unwrap();
    let result =
        tokio::time::timeout(std::time::Duration::from_secs(20), app.run_until_stopped(std::future::pending()))
            .await
            .expect("the server stops by itself");
    let err = result.expect_err("the server reports the migration failure");
    assert!(err.to_string().contains("applying database migrations failed"), "{err}");
    drop_database(&name);
}
