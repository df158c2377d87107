//! Email behind one interface, [`EmailSender`]: [`Smtp`] for a real mail server and
//! [`Outbox`], which writes each message as an `.eml` file for development. Both send the
//! same message, built here: plain text, from the operator's address.

mod outbox;
mod smtp;

pub use outbox::Outbox;
pub use smtp::Smtp;

use crate::BoxFuture;
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;

/// One email to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    /// Plain text.
    pub text: String,
}

/// Why an email was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Trying again will not help (a malformed address, a mailbox the server refuses).
    #[error("the email cannot be sent: {0}")]
    Permanent(String),
    /// The server or the disk failed for now; try again later.
    #[error("the email could not be sent now: {0}")]
    Transient(String),
}

/// A way to send email.
pub trait EmailSender: Send + Sync + std::fmt::Debug {
    /// `smtp` or `outbox`.
    fn name(&self) -> &'static str;

    /// Sends one email.
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), EmailError>>;
}

/// Reads the sender's address (`Tollgate <billing@example.com>` or a bare address).
pub fn parse_from(from: &str) -> Result<Mailbox, EmailError> {
    from.parse::<Mailbox>().map_err(|e| EmailError::Permanent(format!("the sender address {from:?}: {e}")))
}

/// The message for `email`.
pub(crate) fn message(from: &Mailbox, email: &Email) -> Result<Message, EmailError> {
    let to =
        email.to.parse::<Mailbox>().map_err(|e| EmailError::Permanent(format!("the address {:?}: {e}", email.to)))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(email.text.clone())
        .map_err(|e| EmailError::Permanent(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_are_plain_text_from_the_operator() {
        let from = parse_from("Tollgate <noreply@example.com>").unwrap();
        let email = Email { to: "ada@example.com".into(), subject: "Low balance".into(), text: "Hello.\n".into() };
        let text = String::from_utf8(message(&from, &email).unwrap().formatted()).unwrap();
        assert!(text.contains("From: Tollgate <noreply@example.com>\r\n"), "{text}");
        assert!(text.contains("To: ada@example.com\r\n"), "{text}");
        assert!(text.contains("Subject: Low balance\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.contains("Hello."), "{text}");
        assert!(parse_from("not an address").is_err());
        let bad = Email { to: "nobody".into(), ..email };
        assert!(matches!(message(&from, &bad), Err(EmailError::Permanent(_))));
    }
}
