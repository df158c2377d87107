//! The processes under test: started from the tollgate binary, ready once they print
//! `listening on http://ADDR`, killed when dropped; and what `/proc` says about their CPU
//! time and peak memory.

use crate::BenchError;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a child may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What a ready child prints, followed by its address.
pub const LISTENING: &str = "listening on http://";

/// A started child process, killed on drop. Its stderr goes to a log file.
pub(crate) struct Process {
    name: String,
    child: Child,
    pub(crate) addr: SocketAddr,
    log: PathBuf,
}

impl Process {
    /// Starts `exe args…` and waits for its `listening on http://ADDR` line.
    pub(crate) async fn start(name: &str, exe: &Path, args: &[String], log: PathBuf) -> Result<Self, BenchError> {
        let stderr =
            std::fs::File::create(&log).map_err(|e| BenchError::io(format!("creating {}", log.display()), e))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {name} ({})", exe.display()), e))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || read_address(stdout, tx));
        }
        let mut process = Process { name: name.to_string(), child, addr: SocketAddr::from(([0, 0, 0, 0], 0)), log };
        match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Ok(addr))) => {
                process.addr = addr;
                Ok(process)
            }
            Ok(Ok(Err(line))) => Err(process.failed(&line)),
            Ok(Err(_)) => Err(process.failed("its output ended without an address")),
            Err(_) => Err(process.failed(&format!("no address after {} s", START_TIMEOUT.as_secs()))),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error saying why the process did not start, with the end of its log.
    fn failed(&mut self, why: &str) -> BenchError {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        BenchError::Start { name: self.name.clone(), why: why.to_string(), log: tail.join("\n") }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until the address line, then keeps draining it so the child
/// never blocks on a full pipe.
fn read_address(stdout: std::process::ChildStdout, tx: tokio::sync::oneshot::Sender<Result<SocketAddr, String>>) {
    let mut tx = Some(tx);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(at) = line.find(LISTENING)
            && let Some(tx) = tx.take()
        {
            let rest = &line[at + LISTENING.len()..];
            let addr = rest.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or_default();
            let _ = tx.send(addr.parse().map_err(|_| format!("it printed an address that is not IP:port: {line:?}")));
        }
    }
}

/// Peak resident memory of a process in bytes (`VmHWM`).
pub(crate) fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User plus system CPU time a process has used, in seconds; `None` for our own process
/// when `pid` is `None`.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// The kernel's clock ticks per second for `/proc` times (`getconf CLK_TCK`, 100 if unknown).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// A temporary directory for the children's logs and the gateway's data, removed on drop.
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> Result<Self, BenchError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("tollgate-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| BenchError::io(format!("creating {}", path.display()), e))?;
        Ok(Scratch { path })
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
