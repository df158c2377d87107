//! The SMTP sender against a local SMTP server that speaks the protocol (greeting, EHLO,
//! AUTH PLAIN, MAIL, RCPT, DATA with dot-stuffing, QUIT) and records the envelope and the
//! message; and the outbox's files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tollgate_integrations::email::{Email, EmailError, EmailSender, Outbox, Smtp};

/// What one SMTP session delivered.
#[derive(Debug, Default, Clone)]
struct Delivery {
    commands: Vec<String>,
    data: String,
}

/// An SMTP server on a free port; `rcpt_reply` is how it answers `RCPT TO`.
async fn smtp_server(rcpt_reply: &'static str) -> (u16, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let log = deliveries.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let mut delivery = Delivery::default();
                write.write_all(b"220 mail.test ESMTP ready\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    delivery.commands.push(line.clone());
                    let reply: &str = if upper.starts_with("EHLO") {
                        "250-mail.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("AUTH PLAIN") {
                        "235 2.7.0 Authentication successful\r\n"
                    } else if upper.starts_with("MAIL FROM") {
                        "250 2.1.0 OK\r\n"
                    } else if upper.starts_with("RCPT TO") {
                        rcpt_reply
                    } else if upper == "DATA" {
                        write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(l.strip_prefix('.').unwrap_or(&l));
                            data.push('\n');
                        }
                        delivery.data = data;
                        "250 2.0.0 queued\r\n"
                    } else if upper == "QUIT" {
                        write.write_all(b"221 2.0.0 bye\r\n").await.unwrap();
                        break;
                    } else if upper == "RSET" || upper == "NOOP" {
                        "250 OK\r\n"
                    } else {
                        "502 5.5.2 command not recognized\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.unwrap();
                }
                log.lock().unwrap().push(delivery);
            });
        }
    });
    (port, deliveries)
}

fn email() -> Email {
    Email {
        to: "ada@example.com".into(),
        subject: "Payment received".into(),
        text: "Your payment of $25.00 was received.\n.\nA line starting with a dot.\n".into(),
    }
}

async fn wait_for(deliveries: &Arc<Mutex<Vec<Delivery>>>) -> Delivery {
    for _ in 0..200 {
        if let Some(d) = deliveries.lock().unwrap().first().cloned() {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the server recorded no session");
}

#[tokio::test]
async fn an_email_goes_through_smtp_with_its_envelope_and_authentication() {
    let (port, deliveries) = smtp_server("250 2.1.5 OK\r\n").await;
    let smtp =
        Smtp::new(&format!("smtp://mailer:s3cret@localhost:{port}"), "Tollgate <noreply@tollgate.test>").unwrap();
    assert!(!format!("{smtp:?}").contains("s3cret"));
    smtp.send(&email()).await.unwrap();
    let d = wait_for(&deliveries).await;
    let commands = d.commands.join("\n");
    assert!(d.commands[0].starts_with("EHLO "), "{commands}");
    // AUTH PLAIN carries base64("\0mailer\0s3cret").
    assert!(d.commands.iter().any(|c| c == "AUTH PLAIN AG1haWxlcgBzM2NyZXQ="), "{commands}");
    assert!(
        d.commands
            .iter()
            .any(|c| c == "MAIL FROM:<noreply@tollgate.test>" || c.starts_with("MAIL FROM:<noreply@tollgate.test> ")),
        "{commands}"
    );
    assert!(d.commands.iter().any(|c| c == "RCPT TO:<ada@example.com>"), "{commands}");
    assert!(d.data.contains("From: Tollgate <noreply@tollgate.test>"), "{}", d.data);
    assert!(d.data.contains("To: ada@example.com"), "{}", d.data);
    assert!(d.data.contains("Subject: Payment received"), "{}", d.data);
    assert!(
        d.data.contains("Your payment of $25.00 was received.\n.\nA line starting"),
        "dot-stuffing undone: {}",
        d.data
    );
}

#[tokio::test]
async fn refusals_are_permanent_or_transient_as_the_server_says() {
    let (port, _) = smtp_server("550 5.1.1 no such mailbox\r\n").await;
    let smtp = Smtp::new(&format!("smtp://localhost:{port}"), "noreply@tollgate.test").unwrap();
    assert!(matches!(smtp.send(&email()).await, Err(EmailError::Permanent(_))));
    let (port, _) = smtp_server("451 4.3.0 try again later\r\n").await;
    let smtp = Smtp::new(&format!("smtp://localhost:{port}"), "noreply@tollgate.test").unwrap();
    assert!(matches!(smtp.send(&email()).await, Err(EmailError::Transient(_))));
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let smtp = Smtp::new(&format!("smtp://localhost:{port}"), "noreply@tollgate.test").unwrap();
    assert!(matches!(smtp.send(&email()).await, Err(EmailError::Transient(_))));
    assert!(Smtp::new("http://not-smtp", "noreply@tollgate.test").is_err());
    let bad = Smtp::new("smtp://user:pw@localhost:25", "not an address");
    assert!(matches!(bad, Err(EmailError::Permanent(ref m)) if !m.contains("pw")));
}

#[tokio::test]
async fn the_outbox_writes_one_eml_file_per_email() {
    let dir =
        std::env::temp_dir().join(format!("tollgate-outbox-{}", tollgate_domain::secret::random_token(8).unwrap()));
    let outbox = Outbox::new(&dir.join("outbox"), "Tollgate <noreply@tollgate.test>").unwrap();
    outbox.send(&email()).await.unwrap();
    outbox.send(&Email { to: "bob@example.com".into(), ..email() }).await.unwrap();
    let mut files: Vec<_> = std::fs::read_dir(outbox.dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.extension().is_some_and(|e| e == "eml")));
    let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    assert!(texts.iter().any(|t| t.contains("To: ada@example.com\r\n")));
    assert!(texts.iter().any(|t| t.contains("To: bob@example.com\r\n")));
    assert!(
        texts.iter().all(
            |t| t.contains("Subject: Payment received\r\n") && t.contains("From: Tollgate <noreply@tollgate.test>")
        )
    );
    let bad = Email { to: "nobody".into(), ..email() };
    assert!(matches!(outbox.send(&bad).await, Err(EmailError::Permanent(_))));
    assert_eq!(std::fs::read_dir(outbox.dir()).unwrap().count(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}
