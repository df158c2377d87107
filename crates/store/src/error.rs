//! The storage error.

/// What can go wrong in storage. Unique-key violations become [`StoreError::Conflict`],
/// missing rows [`StoreError::NotFound`]; everything else is [`StoreError::Database`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("insufficient funds")]
    Insufficient,
    /// A balance would leave the range the ledger can hold.
    #[error("a balance would exceed what the ledger can hold")]
    Overflow,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration {0} failed: {1}")]
    Migration(String, sqlx::Error),
    #[error(transparent)]
    Secret(#[from] tollgate_domain::secret::SecretError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.constraint().unwrap_or("unique").to_string())
            }
            _ => StoreError::Database(err),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}
