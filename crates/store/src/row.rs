//! Small helpers to read rows of the `Any` driver.

use sqlx::Row;
use sqlx::any::AnyRow;

/// Reads a column, mapping a decode error to a storage error.
pub(crate) fn get<T>(row: &AnyRow, column: &str) -> crate::Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(crate::StoreError::from)
}

/// Reads a 0/1 flag column.
pub(crate) fn flag(row: &AnyRow, column: &str) -> crate::Result<bool> {
    Ok(get::<i64>(row, column)? != 0)
}

/// Reads a JSON text column.
pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> crate::Result<T> {
    Ok(serde_json::from_str(&get::<String>(row, column)?)?)
}
