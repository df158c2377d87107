//! A stand-in for the `tollgate` binary's bench commands, for developing and testing the
//! benchmark on its own:
//!
//! ```text
//! bench_cli bench --role upstream --listen 127.0.0.1:0
//! bench_cli bench --role proxy --listen 127.0.0.1:0 --target http://127.0.0.1:PORT
//! bench_cli run [--quick] [--targets upstream,proxy,gateway] [--workloads json,stream]
//!               [--gateway-exe PATH] [--connections N] [--warmup SECS] [--duration SECS]
//!               [--rate N] [--keys N] [--json]
//! ```
//!
//! `run` uses this binary for the upstream and proxy roles and `--gateway-exe` (a built
//! `tollgate`) for the gateway.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tollgate_bench::{Options, Role, Target, Workload};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn number<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    flag(args, name).map(|v| v.parse().map_err(|_| format!("{name}: not a number: {v}"))).transpose()
}

fn list<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<Vec<T>>, String>
where
    T::Err: std::fmt::Display,
{
    flag(args, name)
        .map(|v| v.split(',').map(|s| s.trim().parse().map_err(|e: T::Err| e.to_string())).collect())
        .transpose()
}

async fn dispatch(args: &[String]) -> Result<ExitCode, String> {
    match args.first().map(String::as_str) {
        Some("bench") => {
            let role: Role = flag(args, "--role").ok_or("--role is required")?.parse().map_err(|e| format!("{e}"))?;
            let listen = flag(args, "--listen").unwrap_or("127.0.0.1:0");
            tollgate_bench::serve_role(role, listen, flag(args, "--target")).await.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut options = if args.iter().any(|a| a == "--quick") { Options::quick(exe) } else { Options::new(exe) };
            options.verbose = true;
            options.gateway_exe = flag(args, "--gateway-exe").map(PathBuf::from);
            if let Some(targets) = list::<Target>(args, "--targets")? {
                options.targets = targets;
            }
            if let Some(workloads) = list::<Workload>(args, "--workloads")? {
                options.workloads = workloads;
            }
            if let Some(n) = number(args, "--connections")? {
                options.connections = n;
            }
            if let Some(s) = number::<f64>(args, "--warmup")? {
                options.warmup = Duration::from_secs_f64(s);
            }
            if let Some(s) = number::<f64>(args, "--duration")? {
                options.duration = Duration::from_secs_f64(s);
            }
            if let Some(n) = number(args, "--rate")? {
                options.rate = n;
            }
            if let Some(n) = number(args, "--keys")? {
                options.keys = n;
            }
            let report = tollgate_bench::run(options).await.map_err(|e| e.to_string())?;
            if args.iter().any(|a| a == "--json") {
                println!("{:#}", report.to_json());
            } else {
                print!("{report}");
            }
            Ok(if report.all_met() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        _ => Err("usage: bench_cli bench --role upstream|proxy … | bench_cli run [options]".into()),
    }
}
