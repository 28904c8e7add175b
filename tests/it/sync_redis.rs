//! The sync with its journal in Redis: fingerprints and marks are kept
//! there like any record, so a conflict, `--overwrite` and `--repair` work
//! the same.

use crate::support::fleet::RedisServer;

#[test]
fn a_sync_keeps_its_fingerprints_and_marks_in_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    // The fleet's shared breaker remembers the outage the test causes for
    // its cool-down; the test doesn't wait it out.
    let forget_outage = || {
        let mut conn = redis.conn();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*budget*").query(&mut conn).unwrap();
        for key in keys {
            let () = redis::cmd("DEL").arg(key).query(&mut conn).unwrap();
        }
    };
    crate::sync_cli::conflict_overwrite_and_repair(&["--redis", &url], &forget_outage);
}
