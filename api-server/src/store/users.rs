//! Wallet users.

/// Creates the user at its first sign-in, or records the sign-in; the role is recomputed from
/// ADMIN_WALLETS every time.
pub async fn signed_in(db: impl sqlx::PgExecutor<'_>, wallet: &str, role: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (wallet, role) VALUES ($1, $2)
         ON CONFLICT (wallet) DO UPDATE SET role = EXCLUDED.role, last_login_at = now()",
    )
    .bind(wallet)
    .bind(role)
    .execute(db)
    .await
    .map(|_| ())
}
