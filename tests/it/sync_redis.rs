//! The sync with its journal in Redis: fingerprints and marks are kept
//! there like any record, so a conflict, `--overwrite` and `--repair` work
//! the same.

use crate::support::fleet::RedisServer;

#[test]
fn a_sync_keeps_its_fingerprints_and_marks_in_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    crate::sync_cli::conflict_overwrite_and_repair(&["--redis", &url]);
}
