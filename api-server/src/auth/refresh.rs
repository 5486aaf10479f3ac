//! Rotating refresh tokens, stored as SHA-256 hashes in PostgreSQL.
//!
//! Each use replaces the token with a new one of the same family. Presenting an already replaced
//! token means it leaked: the whole family is revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;

const PREFIX: &str = "sgr_";

pub fn generate() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Well-formed: our prefix and 32 bytes of base64url.
pub fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(PREFIX).and_then(|t| URL_SAFE_NO_PAD.decode(t).ok()).is_some_and(|b| b.len() == 32)
}

/// Stores a new token for `wallet` in `family` (a new family at sign-in).
pub async fn store(
    db: impl sqlx::PgExecutor<'_>,
    wallet: &str,
    family: Uuid,
    ttl_secs: u64,
) -> Result<(Uuid, String), ApiError> {
    let token = generate()?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family_id, wallet, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(id)
    .bind(family)
    .bind(wallet)
    .bind(hash(&token))
    .bind(ttl_secs as f64)
    .execute(db)
    .await?;
    Ok((id, token))
}

pub struct Rotated {
    pub wallet: String,
    pub token: String,
}

/// Exchanges a refresh token for a new one.
pub async fn rotate(db: &PgPool, token: &str, ttl_secs: u64) -> Result<Rotated, ApiError> {
    let invalid = || ApiError::unauthorized("invalid_refresh_token", "refresh token is invalid");
    if !is_well_formed(token) {
        return Err(invalid());
    }
    let mut tx = db.begin().await?;
    let row: Option<(Uuid, Uuid, String, bool, bool)> = sqlx::query_as(
        "SELECT id, family_id, wallet, revoked_at IS NOT NULL, expires_at <= now()
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, family, wallet, revoked, expired)) = row else {
        return Err(invalid());
    };
    if revoked {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = now()
             WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(%wallet, %family, "refresh token reused; family revoked");
        return Err(ApiError::unauthorized(
            "refresh_token_reused",
            "refresh token was already used; all sessions of this sign-in are revoked",
        ));
    }
    if expired {
        return Err(ApiError::unauthorized("refresh_token_expired", "refresh token has expired"));
    }
    let (new_id, new_token) = store(&mut *tx, &wallet, family, ttl_secs).await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now(), replaced_by = $2 WHERE id = $1")
        .bind(id)
        .bind(new_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Rotated { wallet, token: new_token })
}

/// Revokes the token's whole family (logout). Unknown tokens are ignored.
pub async fn revoke_family(db: &PgPool, token: &str) -> Result<bool, ApiError> {
    let result = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE revoked_at IS NULL
           AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
    )
    .bind(hash(token))
    .execute(db)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Deletes refresh tokens that expired more than a day ago (revoked ones included); returns how
/// many. Run periodically by every replica; concurrent runs are harmless.
pub async fn delete_expired(db: &PgPool) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}

/// Runs `delete_expired` every hour until the process ends, the first time an hour after start
/// (a rollout does not start one DELETE per new replica at once; tokens are kept a day past
/// their expiry anyway).
pub fn spawn_cleanup(db: PgPool) {
    tokio::spawn(async move {
        let period = std::time::Duration::from_secs(3600);
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match delete_expired(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted expired refresh tokens"),
                Err(e) => tracing::warn!(error = %e, "deleting expired refresh tokens failed"),
            }
        }
    });
}
