//! Helpers of the operations tests: the binary under `unshare`, reading a
//! child's stderr up to a line, scraping the metrics endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command};
use std::sync::mpsc;
use std::time::Duration;

/// `unshare` with `flags`, if this machine lets us use it (root, or user
/// namespaces); `None` with a message otherwise.
pub fn unshare(flags: &[&str]) -> Option<Command> {
    let path = ["/usr/bin/unshare", "/bin/unshare"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(path) = path else {
        eprintln!("skipped: no unshare on this machine");
        return None;
    };
    let works = Command::new(path)
        .args(flags)
        .arg("true")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!(
            "skipped: `unshare {}` is not permitted here",
            flags.join(" ")
        );
        return None;
    }
    let mut cmd = Command::new(path);
    cmd.args(flags);
    Some(cmd)
}

/// `outer` running `inner`'s program with `inner`'s arguments and environment.
pub fn wrap(mut outer: Command, inner: &Command) -> Command {
    outer.arg(inner.get_program()).args(inner.get_args());
    outer.env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            outer.env(k, v);
        }
    }
    outer
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    outer
}

/// Reads a child's stderr on a thread: lines come out of the channel as
/// they are written, so a test can wait for one without polling.
pub struct Lines {
    pub rx: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(stderr: ChildStderr) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Blocks until a line containing `needle` arrives; `None` if stderr
    /// closed (or a minute passed) first.
    pub fn until(&mut self, needle: &str) -> Option<String> {
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    }

    /// Everything, up to the end.
    pub fn rest(&mut self) -> String {
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// Starts `cmd` with its stderr read line by line.
pub fn spawn(cmd: &mut Command) -> (Child, Lines) {
    let mut child = cmd.spawn().expect("start etlpool");
    let lines = Lines::of(child.stderr.take().expect("piped stderr"));
    (child, lines)
}

/// `GET path` on `addr`: the status and the body.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The value of the first sample of `name` in a Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// SIGKILL or SIGTERM by pid.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// `cmd` with the value of its option `flag` replaced by `value`.
pub fn with_arg(cmd: &Command, flag: &str, value: &std::path::Path) -> Command {
    let mut out = Command::new(cmd.get_program());
    let mut args = cmd.get_args().peekable();
    while let Some(arg) = args.next() {
        out.arg(arg);
        if arg == flag {
            args.next();
            out.arg(value);
        }
    }
    out.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            out.env(k, v);
        }
    }
    out.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    out
}
