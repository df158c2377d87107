//! Fixed-window counters for throttling (the account endpoints' log-in and sign-up
//! limits): in the database, so every replica counts against the same windows and a
//! restart forgets nothing. A subject's window starts at its first counted event and lasts
//! the window given then; an event after the window's end starts a new one. Subjects are
//! opaque to the store (the API passes hashes).

use crate::row::get;
use crate::{Result, Store};

/// A subject's current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    /// Events counted in it.
    pub count: i64,
    /// When it ends (ms since the epoch).
    pub ends_at: i64,
}

impl Store {
    /// `subject`'s window, if one is open at `now`.
    pub async fn throttle_window(&self, subject: &str, now: i64) -> Result<Option<ThrottleWindow>> {
        let row = sqlx::query("SELECT count, window_end FROM throttles WHERE subject = $1 AND window_end > $2")
            .bind(subject)
            .bind(now)
            .fetch_optional(&self.read)
            .await?;
        row.map(|row| Ok(ThrottleWindow { count: get(&row, "count")?, ends_at: get(&row, "window_end")? })).transpose()
    }

    /// Counts one event for `subject` at `now`, in its open window or in a new one of
    /// `window_ms` (atomically: replicas counting at once each add theirs).
    pub async fn throttle_count(&self, subject: &str, window_ms: i64, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO throttles (subject, count, window_start, window_end) VALUES ($1, 1, $2, $3) \
             ON CONFLICT (subject) DO UPDATE SET \
               count = CASE WHEN throttles.window_end <= excluded.window_start THEN 1 ELSE throttles.count + 1 END, \
               window_start = CASE WHEN throttles.window_end <= excluded.window_start \
                 THEN excluded.window_start ELSE throttles.window_start END, \
               window_end = CASE WHEN throttles.window_end <= excluded.window_start \
                 THEN excluded.window_end ELSE throttles.window_end END",
        )
        .bind(subject)
        .bind(now)
        .bind(now.saturating_add(window_ms))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forgets `subject`'s window.
    pub async fn throttle_forget(&self, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM throttles WHERE subject = $1").bind(subject).execute(&self.write).await?;
        Ok(())
    }

    /// Deletes the windows that ended before `now`; returns how many.
    pub async fn delete_ended_throttles(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM throttles WHERE window_end <= $1").bind(now).execute(&self.write).await?;
        Ok(done.rows_affected())
    }
}
