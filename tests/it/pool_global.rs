//! The global pool's lock is not held while a pool is built (which reads CA
//! and key files). The global pool is process-wide, so the test runs in a child
//! process of this test binary, where no other test has touched it.

use std::io::Write;
use std::process::Command;

use crate::support::{Scratch, TestCa, WAIT};
use etlpool::{Error, Pool, PoolConfig, TlsOptions};

const CHILD: &str = "ETLPOOL_TEST_GLOBAL_CHILD";

#[test]
fn building_the_global_pool_does_not_block_other_callers() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "pool_global::child_global_pool_build_outside_the_lock",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
}

/// Run by the test above in a fresh process: one caller builds the global pool
/// from a CA file that blocks (a FIFO nobody writes yet); another caller must
/// get a global pool meanwhile.
#[test]
#[ignore = "runs in a child process of building_the_global_pool_does_not_block_other_callers"]
fn child_global_pool_build_outside_the_lock() {
    assert_eq!(
        std::env::var(CHILD).as_deref(),
        Ok("1"),
        "run by the parent test only"
    );
    let scratch = Scratch::new("global-fifo");
    let fifo = scratch.0.join("ca.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let config = PoolConfig {
        max_connections_per_host: 3,
        tls: TlsOptions {
            ca_file: Some(fifo.clone()),
            ..TlsOptions::default()
        },
        ..PoolConfig::default()
    };
    std::thread::scope(|s| {
        let slow = s.spawn(move || Pool::init_global(config));
        // Opening a FIFO for writing returns once a reader opened it: from here
        // on the slow caller is inside its file read, and stays there until
        // this end is written and closed.
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let (done, fast) = crossbeam_channel::bounded(1);
        s.spawn(move || {
            let _ = done.send(Pool::global().map(|p| p.config().max_connections_per_host));
        });
        let got = fast.recv_timeout(WAIT);
        writer.write_all(TestCa::new().ca_pem.as_bytes()).unwrap();
        drop(writer);
        let per_host = got
            .expect("Pool::global() waited for another caller's file reads")
            .unwrap();
        assert_eq!(per_host, PoolConfig::default().max_connections_per_host);
        // The slow caller finished second, with another configuration.
        assert!(matches!(
            slow.join().unwrap(),
            Err(Error::GlobalPoolConflict)
        ));
    });
}
