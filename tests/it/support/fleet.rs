//! Helpers of the fleet tests: a real `redis-server` per test, a mock pair
//! per project with a list naming them, and the `etlpool` binary run in a
//! directory of its own.

#[cfg(feature = "redis")]
use std::io::{BufRead, BufReader};
#[cfg(feature = "redis")]
use std::net::TcpListener;
use std::path::{Path, PathBuf};
#[cfg(feature = "redis")]
use std::process::Child;
use std::process::{Command, Stdio};

use etlpool::mock::{DataSizes, MockOptions, MockServers};

/// The tokens every mock of a fleet test accepts, so one environment serves
/// all projects.
pub const ZEPHYR_TOKEN: &str = "zephyr-fleet-token";
pub const QTEST_TOKEN: &str = "qtest-fleet-token";

#[cfg(feature = "redis")]
pub use self::redis_server::RedisServer;

#[cfg(feature = "redis")]
mod redis_server {
    use super::*;
    use crate::support::Scratch;

    /// A `redis-server` of its own on a free loopback port, in a temporary
    /// directory, with no persistence; killed when dropped.
    pub struct RedisServer {
        child: Child,
        pub port: u16,
        dir: Scratch,
    }

    /// A `redis-server` listening on `port` with its files in `dir`, once it
    /// says it is ready; `None` if it ended instead (the port was taken).
    fn spawn(port: u16, dir: &Path) -> Option<Child> {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("redis-server is not installed (apt-get install redis-server)");
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--logfile", "", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        // Its log says when it listens; a taken port ends it instead.
        let out = child.stdout.take().expect("piped stdout");
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("Ready to accept connections") {
                return Some(child);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    impl RedisServer {
        /// Starts one, retrying on another port when the one picked was taken
        /// between picking and binding (`--port 0` means "no TCP" to Redis).
        pub fn start() -> RedisServer {
            for _ in 0..5 {
                let dir = Scratch::new("redis");
                let port = TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                if let Some(child) = spawn(port, &dir.0) {
                    return RedisServer { child, port, dir };
                }
            }
            panic!("redis-server did not start on any of 5 ports");
        }

        /// Kills it (SIGKILL: gone at once, as a crashed Redis is).
        pub fn kill(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        /// Starts it again, empty, on the same port.
        pub fn restart(&mut self) {
            self.kill();
            self.child = spawn(self.port, &self.dir.0).expect("redis-server restarts on its port");
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// A connection for looking at what the binary left in Redis.
        pub fn conn(&self) -> redis::Connection {
            redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .expect("connect to the test's redis-server")
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Small projects: a few seconds each in a debug build.
pub fn sizes() -> DataSizes {
    DataSizes {
        folders: 4,
        folder_depth: 2,
        cycle_folders: 1,
        cases: 12,
        steps_per_case: 2,
        cycles: 2,
        executions: 24,
    }
}

/// Projects big enough to be caught in mid-run.
#[cfg(feature = "redis")]
pub fn big_sizes() -> DataSizes {
    DataSizes {
        cases: 60,
        executions: 150,
        ..sizes()
    }
}

/// `etlpool migrate --projects LIST --redis URL` in `dir`: queues the list.
#[cfg(feature = "redis")]
pub fn enqueue(dir: &Path, list: &Path, url: &str) -> (i32, String) {
    let list = list.to_str().expect("a UTF-8 path");
    crate::cli::run(&mut etlpool(
        dir,
        &["migrate", "--projects", list, "--redis", url],
    ))
}

/// `etlpool journal ACTION --project PROJECT --journal FILE EXTRA... --redis
/// URL` in `dir`.
#[cfg(feature = "redis")]
pub fn journal_move(
    dir: &Path,
    action: &str,
    project: &str,
    file: &str,
    url: &str,
    extra: &[&str],
) -> (i32, String) {
    let mut args = vec!["journal", action, "--project", project, "--journal", file];
    args.extend(extra);
    args.extend(["--redis", url]);
    crate::cli::run(&mut etlpool(dir, &args))
}

/// Every record of a journal file, by kind and key.
#[cfg(feature = "redis")]
pub fn journal_records(
    path: &Path,
) -> std::collections::BTreeMap<(String, String), etlpool::migrate::Target> {
    use etlpool::migrate::{Journal, RecordKind};
    let journal = Journal::read_only(path).unwrap();
    RecordKind::ALL
        .into_iter()
        .flat_map(|kind| {
            journal
                .entries_of(kind)
                .into_iter()
                .map(move |(key, t)| ((kind.to_string(), key), t))
        })
        .collect()
}

/// A mock pair serving project `P<i>`, with the fleet's tokens.
pub fn project_mocks(i: usize, seed: u64, sizes: DataSizes) -> MockServers {
    let mut options = MockOptions::seeded(seed + i as u64);
    options.project_key = format!("P{i}");
    options.sizes = sizes;
    options.zephyr_token = Some(ZEPHYR_TOKEN.into());
    options.qtest_token = Some(QTEST_TOKEN.into());
    MockServers::start(options).expect("start the mocks")
}

/// Writes a config file per project (its services' URLs) and a list of
/// them into `dir`; returns the list's path.
pub fn write_list(dir: &Path, name: &str, mocks: &[&MockServers]) -> PathBuf {
    let mut list =
        String::from("# projects of a fleet test\nzephyr_project,qtest_project_id,config\n");
    for m in mocks {
        let config = dir.join(format!("{}.toml", m.project_key()));
        std::fs::write(
            &config,
            format!(
                "[zephyr]\nurl = \"{}\"\n\n[qtest]\nurl = \"{}\"\n",
                m.zephyr_url(),
                m.qtest_url()
            ),
        )
        .unwrap();
        list.push_str(&format!(
            "{},{},{}\n",
            m.project_key(),
            m.qtest_project_id(),
            config.display()
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, list).unwrap();
    path
}

/// `etlpool ARGS` in `dir` (made if missing), with only the tokens, a proxy
/// that must be ignored and two workers per project in its environment.
pub fn etlpool(dir: &Path, args: &[&str]) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etlpool"));
    cmd.env_clear()
        .env("ZEPHYR_TOKEN", ZEPHYR_TOKEN)
        .env("QTEST_TOKEN", QTEST_TOKEN)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ETLPOOL_WORKERS", "2")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The per-run reports of project `key` in `dir`.
pub fn reports_of(dir: &Path, key: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("{key}.report.")) && name.ends_with(".csv")
            })
            .count()
    })
}
