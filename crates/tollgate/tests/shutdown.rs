//! SIGTERM with a long-lived stream open: the server lets requests finish for its grace
//! period, then cuts what still streams (the client gets a last event saying why, the call
//! is settled as failed) and exits cleanly instead of waiting forever.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{Db, Server, account, publish_and_install, runtime};
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// An upstream whose every request gets an SSE stream that never ends (one event every
/// 100 ms, until the gateway hangs up).
fn endless_stream_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => return,
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for i in 0.. {
                    let event = format!("event: message\ndata: {{\"tick\": {i}}}\n\n");
                    if write!(socket, "{:x}\r\n{event}\r\n", event.len()).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn sigterm_cuts_long_lived_streams_after_the_grace_period() {
    let db = Db::from_env("shutdown");
    let upstream = endless_stream_upstream();
    let mut command = db.serve_command(&[]);
    command.env("TOLLGATE_SHUTDOWN_GRACE_MS", "500");
    let server = Server::spawn(command, db.dir.join("serve.log"));
    let publisher = account(&server.url, "publisher@example.com");
    let consumer = account(&server.url, "consumer@example.com");
    let key = publish_and_install(&server.url, &publisher, &consumer, "ticker", &format!("{upstream}/mcp"), json!([]));

    // Open the legacy session stream and read until events flow.
    let address = server.url.trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        socket,
        "GET /ticker/1.0.0/mcp HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("tick") {
        let n = socket.read(&mut buffer).unwrap();
        assert!(n > 0, "the stream opened: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    let head = String::from_utf8_lossy(&seen).to_string();
    let request_id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("the stream's request id")
        .trim()
        .to_string();

    let started = Instant::now();
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        let _ = done.send(());
    });
    // The client hears why the stream ends, then the end.
    loop {
        match socket.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    stopped.recv_timeout(Duration::from_secs(20)).expect("the server stopped instead of waiting for the stream");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "the grace period was given: {took:?}");
    assert!(took < Duration::from_secs(8), "stopped {took:?} after SIGTERM");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("shutting down"), "the client was told: {text}");

    // The cut stream was settled (as failed) before the server exited.
    runtime().block_on(async {
        let store = db.open().await;
        let (record, _) = store.usage_record(&request_id).await.unwrap().expect("the cut stream is recorded");
        assert_eq!((record.error_code.as_deref(), record.cost.0), (Some("gateway_shutdown"), 0));
        store.close().await;
    });
}
