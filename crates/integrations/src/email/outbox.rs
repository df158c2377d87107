//! The development sender: each email becomes an `.eml` file (the message exactly as SMTP
//! would carry it) in a folder, `data_dir/outbox` by default, for a mail client or a test
//! to open.

use super::{Email, EmailError, EmailSender, message, parse_from};
use crate::BoxFuture;
use lettre::message::Mailbox;
use std::path::{Path, PathBuf};

/// An outbox folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    from: Mailbox,
}

impl Outbox {
    /// Writes into `dir` (made when the first email is written), from `from`.
    pub fn new(dir: &Path, from: &str) -> Result<Outbox, EmailError> {
        Ok(Outbox { dir: dir.to_path_buf(), from: parse_from(from)? })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl EmailSender for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async move {
            let bytes = message(&self.from, email)?.formatted();
            let name = format!(
                "{}-{}.eml",
                tollgate_domain::time::now_ms(),
                tollgate_domain::secret::random_token(8).map_err(|e| EmailError::Transient(e.to_string()))?
            );
            let dir = self.dir.clone();
            let write = move || -> std::io::Result<()> {
                std::fs::create_dir_all(&dir)?;
                // Written under a temporary name, then renamed: a reader never sees half a file.
                let partial = dir.join(format!(".{name}.part"));
                std::fs::write(&partial, bytes)?;
                std::fs::rename(&partial, dir.join(&name))
            };
            match tokio::task::spawn_blocking(write).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(EmailError::Transient(format!("writing to {}: {e}", self.dir.display()))),
                Err(e) => Err(EmailError::Transient(e.to_string())),
            }
        })
    }
}
