//! SMTP, through `lettre` over tokio and rustls (`ring`, Mozilla roots). The operator gives
//! one URL: `smtps://user:password@host:465` (TLS from the start),
//! `smtp://user:password@host:587?tls=required` (STARTTLS), or `smtp://host:25` (no TLS,
//! for a relay on the same machine).

use super::{Email, EmailError, EmailSender, message, parse_from};
use crate::BoxFuture;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// An SMTP sender.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL holds the password: never shown.
        f.debug_struct("Smtp").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Smtp {
    /// A sender through the server at `url`, from `from`.
    pub fn new(url: &str, from: &str) -> Result<Smtp, EmailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // lettre's message may quote the URL, password included: not repeated.
            .map_err(|_| EmailError::Permanent("smtp_url is not a valid smtp:// or smtps:// URL".into()))?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        Ok(Smtp { transport, from: parse_from(from)? })
    }
}

impl EmailSender for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), EmailError>> {
        Box::pin(async move {
            let message = message(&self.from, email)?;
            self.transport.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    EmailError::Permanent(e.to_string())
                } else {
                    EmailError::Transient(e.to_string())
                }
            })
        })
    }
}
