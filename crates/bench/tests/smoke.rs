//! A quick benchmark of the upstream and the bare proxy, as real child processes of the
//! `bench_cli` example, and the upstream's protocol answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::time::Duration;
use tollgate_bench::{EVENTS_PER_STREAM, Options, REQUEST_BYTES, Target, Workload};

/// The `bench_cli` example, which cargo builds next to the test binaries.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(format!("bench_cli{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is missing: build it with `cargo build -p tollgate-bench --examples`", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_benchmark_of_upstream_and_proxy_is_sane() {
    let mut options = Options::quick(example());
    options.targets = vec![Target::Upstream, Target::Proxy];
    options.connections = 4;
    options.warmup = Duration::from_millis(200);
    options.duration = Duration::from_millis(1000);
    options.rate = 200;
    options.writer_calls = 0;
    let report = tollgate_bench::run(options).await.unwrap();
    println!("{report}");

    for workload in [Workload::Json, Workload::Stream] {
        for target in [Target::Upstream, Target::Proxy] {
            let r = report.result(workload, target).unwrap();
            for (mode, run) in [("closed", &r.closed), ("open", &r.open)] {
                let at = format!("{target:?} {workload:?} {mode}");
                assert_eq!(run.errors, 0, "{at}: {:?}", run.first_error);
                assert!(run.requests > 0 && run.requests_per_second > 0.0, "{at}");
                let l = run.latency;
                assert!(
                    0.0 < l.p50_us && l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us,
                    "{at}: {l:?}"
                );
                if workload == Workload::Stream {
                    assert_eq!(run.events, run.requests * EVENTS_PER_STREAM, "{at}: every stream fully received");
                } else {
                    assert_eq!(run.events, 0);
                }
            }
            // The open loop keeps to its rate (200/s for 1 s), within scheduling noise.
            assert!((150..=210).contains(&r.open.requests), "{target:?} {workload:?}: {}", r.open.requests);
        }
    }
    assert!(report.memory.iter().all(|m| m.peak_rss_bytes.is_some_and(|b| b > 0)));
    assert!(report.checks.is_empty() && report.billing.is_none(), "no gateway, nothing to judge");
    let json = report.to_json();
    assert_eq!(json["workloads"][1]["workload"], "stream");
    assert_eq!(json["workloads"][0]["targets"][1]["target"], "proxy");
    assert!(json["workloads"][0]["targets"][0]["closed"]["latency"]["p99_us"].as_f64().unwrap() > 0.0);
    let text = report.to_string();
    assert!(text.contains("50 events per stream received"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_writer_benchmark_writes_and_audits_every_call() {
    let dir = std::env::temp_dir().join(format!("tollgate-writer-bench-{}", std::process::id()));
    let result = tollgate_bench::measure_writer(&dir, 3000).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(result.calls, 3000);
    assert!(result.audited, "every call written with its transfers, the ledger balanced: {result:?}");
    assert!(result.settled_per_second > 0.0 && result.seconds > 0.0);
}

/// Sends one POST to `/mcp` of a fresh in-process upstream.
async fn post(body: &'static str) -> (StatusCode, String, Bytes) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tollgate_bench::serve_upstream(listener));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/mcp")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn the_upstream_speaks_enough_mcp() {
    let (status, kind, body) = post(r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{}}"#).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["id"], "a");
    assert!(v["result"]["protocolVersion"].is_string());

    let (_, _, body) = post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["tools"][1]["name"], "stream");

    let (status, _, body) = post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    assert_eq!((status, body.len()), (StatusCode::ACCEPTED, 0));

    let (status, _, _) = post("{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, _, body) =
        post(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["id"], 7);
    assert!(v["result"]["_meta"]["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(body.len() > REQUEST_BYTES - 10, "about 1 KB: {}", body.len());

    let (status, kind, body) =
        post(r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"stream","arguments":{}}}"#).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/event-stream"));
    let text = String::from_utf8(body.to_vec()).unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len() as u64, EVENTS_PER_STREAM);
    assert!(events[0].starts_with("event: message\ndata: ") && events[0].contains("notifications/progress"));
    let last: serde_json::Value =
        serde_json::from_str(events[49].strip_prefix("event: message\ndata: ").unwrap()).unwrap();
    assert_eq!(last["id"], 8);
    assert!(last["result"]["_meta"]["usage"]["input_tokens"].is_u64());
}
