//! [`MockServers`]: Zephyr and qTest on two loopback ports, with their faults and state.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::auth::Tokens;
use super::faults::Faults;
use super::gate::{Flavor, Gate};
use super::options::MockOptions;
use super::qtest::SearchLag;
use super::qtest::api::{QtestApi, Store};
use super::qtest::config::QtestConfig;
use super::qtest::persist;
use super::qtest::quota::Quota;
use super::qtest::state::{JournalEntry, QtestState};
use super::server::{HttpServer, Request, ServerOptions, ServerStats};
use super::zephyr::api::ZephyrApi;
use super::zephyr::data::Dataset;
use super::zephyr::files::FileHost;
use super::zephyr::generate::generate;

/// The fault switches of both servers.
#[derive(Clone)]
pub struct MockFaults {
    /// Zephyr's switches.
    pub zephyr: Faults,
    /// qTest's switches.
    pub qtest: Faults,
}

/// Both mocks, running; they shut down when dropped.
pub struct MockServers {
    opts: MockOptions,
    seed: u64,
    tokens: (String, String),
    faults: MockFaults,
    zephyr: Arc<HttpServer>,
    zephyr_api: Arc<ZephyrApi>,
    // Replaced by restart_qtest after a crash.
    qtest: Mutex<Arc<HttpServer>>,
    qtest_gate: Arc<Gate>,
    qtest_api: Arc<QtestApi>,
    source: Arc<Dataset>,
    /// The storage host of [`MockOptions::attachments_redirect`] and its server.
    files: Option<(Arc<FileHost>, Arc<HttpServer>)>,
}

fn invalid(e: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.into())
}

impl MockServers {
    /// Generates the data and starts both servers on 127.0.0.1.
    pub fn start(opts: MockOptions) -> io::Result<MockServers> {
        opts.validate().map_err(invalid)?;
        let seed = opts.seed.unwrap_or_else(|| fastrand::u64(..));
        let mut data = generate(
            seed,
            &opts.project_key,
            &opts.sizes,
            opts.odd_records,
            opts.unreadable_records,
        );
        data.attachments = super::zephyr::attachments::generate(&data, &opts.attachments);
        (data.links, data.test_plans) =
            super::zephyr::attachments::generate_links(&data, &opts.attachments);
        if opts.attachments.sample {
            super::zephyr::attachments::paste_images(&mut data);
        }
        let source = Arc::new(data);
        let mut cfg = QtestConfig::generate(seed, opts.qtest_project_id);
        cfg.can_approve = opts.qtest_can_approve;
        let store = initial_store(&opts, &cfg, seed)?;
        let derive = |salt: u64, name: &str| {
            format!(
                "{name}-{:016x}",
                fastrand::Rng::with_seed(seed ^ salt).u64(..)
            )
        };
        let zephyr_token = opts
            .zephyr_token
            .clone()
            .unwrap_or_else(|| derive(1, "zephyr"));
        let qtest_token = opts
            .qtest_token
            .clone()
            .unwrap_or_else(|| derive(2, "qtest"));
        let faults = MockFaults {
            zephyr: Faults::new(opts.zephyr_faults.clone(), seed ^ 3),
            qtest: Faults::new(opts.qtest_faults.clone(), seed ^ 4),
        };
        let files = match opts.attachments_redirect {
            true => {
                let host = Arc::new(FileHost::new(seed));
                let server = HttpServer::start(ServerOptions::default(), Arc::clone(&host) as _)?;
                let _ = host.origin.set(origin(&server));
                Some((host, Arc::new(server)))
            }
            false => None,
        };
        let zephyr_api = Arc::new(ZephyrApi {
            data: parking_lot::RwLock::new(Arc::clone(&source)),
            origin: OnceLock::new(),
            cap: opts.zephyr_max_results,
            routes: Default::default(),
            fail_downloads: AtomicU64::new(0),
            files: files.as_ref().map(|(host, _)| Arc::clone(host)),
        });
        let qtest_api = Arc::new(QtestApi {
            cfg,
            store: Mutex::new(store),
            origin: OnceLock::new(),
            source: Arc::clone(&source),
            lag: Mutex::default(),
            refuse_writes: AtomicU64::new(0),
        });
        let login = opts.qtest_login.clone();
        let zephyr_gate = Arc::new(Gate {
            flavor: Flavor::Zephyr,
            api: Arc::clone(&zephyr_api) as _,
            faults: faults.zephyr.clone(),
            tokens: Tokens::new(
                zephyr_token.clone(),
                login.clone(),
                opts.oauth_expiry,
                seed ^ 5,
            ),
            window: Default::default(),
            quota: None,
        });
        let qtest_gate = Arc::new(Gate {
            flavor: Flavor::Qtest,
            api: Arc::clone(&qtest_api) as _,
            faults: faults.qtest.clone(),
            tokens: Tokens::new(qtest_token.clone(), login, opts.oauth_expiry, seed ^ 6)
                .with_site(opts.qtest_site.clone()),
            window: Default::default(),
            quota: Some(Quota::new(opts.qtest_quota.clone(), seed ^ 8)),
        });
        let zephyr = serve(opts.port_zephyr, &zephyr_gate, &faults.zephyr, 0)?;
        let _ = zephyr_api.origin.set(origin(&zephyr));
        let qtest = serve(
            opts.port_qtest,
            &qtest_gate,
            &faults.qtest,
            qtest_max_body(&opts),
        )?;
        let _ = qtest_api.origin.set(origin(&qtest));
        Ok(MockServers {
            opts,
            seed,
            tokens: (zephyr_token, qtest_token),
            faults,
            zephyr,
            zephyr_api,
            qtest: Mutex::new(qtest),
            qtest_gate,
            qtest_api,
            source,
            files,
        })
    }

    /// Tokens qTest's `/oauth/token` has issued since start.
    pub fn qtest_tokens_issued(&self) -> u64 {
        self.qtest_gate.tokens.issued_total()
    }

    /// The seed in use (drawn at random when the options had none).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Zephyr's base URL, `http://127.0.0.1:PORT/v2`.
    pub fn zephyr_url(&self) -> String {
        format!("{}/v2", origin(&self.zephyr))
    }

    /// qTest's base URL, `http://127.0.0.1:PORT/api/v3`.
    pub fn qtest_url(&self) -> String {
        format!("{}/api/v3", self.qtest_site_url())
    }

    /// qTest's site root, where `/oauth/token` lives.
    pub fn qtest_site_url(&self) -> String {
        self.qtest_api.origin.get().cloned().unwrap_or_default()
    }

    /// Zephyr's Bearer token.
    pub fn zephyr_token(&self) -> &str {
        &self.tokens.0
    }

    /// qTest's static Bearer token.
    pub fn qtest_token(&self) -> &str {
        &self.tokens.1
    }

    /// qTest's site name, which a login names in `Authorization: Basic`.
    pub fn qtest_site(&self) -> &str {
        &self.opts.qtest_site
    }

    /// The username and password `/oauth/token` accepts.
    pub fn qtest_login(&self) -> (&str, &str) {
        (&self.opts.qtest_login.0, &self.opts.qtest_login.1)
    }

    /// The Zephyr project key.
    pub fn project_key(&self) -> &str {
        &self.opts.project_key
    }

    /// The qTest project id.
    pub fn qtest_project_id(&self) -> u64 {
        self.qtest_api.cfg.project_id
    }

    /// The fault switches.
    pub fn faults(&self) -> &MockFaults {
        &self.faults
    }

    /// Zephyr's connection counters.
    pub fn zephyr_stats(&self) -> Arc<ServerStats> {
        Arc::clone(self.zephyr.stats())
    }

    /// Zephyr API requests served so far, per route: the path under `/v2` with keys and
    /// ids as `{}` (`testexecutions/nextgen`, `testcases/{}/teststeps`).
    pub fn zephyr_requests(&self) -> std::collections::BTreeMap<String, u64> {
        self.zephyr_api.routes.lock().clone()
    }

    /// qTest's connection counters (of the current server, after a restart the new one).
    pub fn qtest_stats(&self) -> Arc<ServerStats> {
        Arc::clone(self.qtest.lock().stats())
    }

    /// The Zephyr source dataset.
    pub fn source(&self) -> &Dataset {
        &self.source
    }

    /// qTest's fields, statuses and project id.
    pub fn qtest_config(&self) -> &QtestConfig {
        &self.qtest_api.cfg
    }

    /// A copy of everything created on qTest, journal included.
    pub fn qtest_state(&self) -> QtestState {
        self.qtest_api.store.lock().state.clone()
    }

    /// A copy of the qTest write journal.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.qtest_api.store.lock().state.journal.clone()
    }

    /// Deletes a created test case, as if someone removed it in qTest (journaled).
    pub fn delete_case(&self, id: u64) -> Result<(), String> {
        self.admin_write("DELETE", &format!("test-cases/{id}"), Value::Null)
            .map(|_| ())
    }

    /// Deletes a test case and its test runs (with their logs), as someone
    /// cleaning up in qTest would (journaled); returns the deleted runs' ids.
    pub fn delete_case_with_runs(&self, id: u64) -> Result<Vec<u64>, String> {
        let runs: Vec<u64> = {
            let store = self.qtest_api.store.lock();
            let runs = store.state.test_runs.iter();
            runs.filter(|r| r.test_case_id == id)
                .map(|r| r.id)
                .collect()
        };
        for run in &runs {
            self.admin_write("DELETE", &format!("test-runs/{run}"), Value::Null)?;
        }
        self.delete_case(id)?;
        Ok(runs)
    }

    /// Deletes a module with everything under it (`force=true`: its
    /// sub-modules and test cases, with the cases' runs and logs), as
    /// someone cleaning up in qTest would (journaled).
    pub fn delete_module(&self, id: u64) -> Result<(), String> {
        self.admin_write("DELETE", &format!("modules/{id}?force=true"), Value::Null)
            .map(drop)
    }

    /// Deletes a test cycle with everything under it (`force=true`: its
    /// sub-cycles and test runs with their logs), journaled.
    pub fn delete_cycle(&self, id: u64) -> Result<(), String> {
        self.admin_write(
            "DELETE",
            &format!("test-cycles/{id}?force=true"),
            Value::Null,
        )
        .map(drop)
    }

    /// Deletes one test log of run `run`, as qTest's UI can (journaled).
    pub fn delete_log(&self, run: u64, id: u64) -> Result<(), String> {
        self.admin_write(
            "DELETE",
            &format!("test-runs/{run}/test-logs/{id}"),
            Value::Null,
        )
        .map(drop)
    }

    /// Deletes attachment `id` of `object_type`/`object` (`test-cases`,
    /// `test-logs`, `test-steps`), journaled.
    pub fn delete_attachment(&self, object_type: &str, object: u64, id: u64) -> Result<(), String> {
        let tail = format!("{object_type}/{object}/blob-handles/{id}");
        self.admin_write("DELETE", &tail, Value::Null).map(drop)
    }

    /// Edits a test case as a person would in qTest's UI: `PUT` with `body`
    /// (journaled like any write).
    pub fn edit_case(&self, id: u64, body: Value) -> Result<(), String> {
        self.admin_write("PUT", &format!("test-cases/{id}"), body)
            .map(drop)
    }

    /// The Zephyr data as served now (after any [`MockServers::mutate_zephyr`];
    /// [`MockServers::source`] stays the data as generated).
    pub fn zephyr_data(&self) -> Arc<Dataset> {
        Arc::clone(&self.zephyr_api.data.read())
    }

    /// Changes the Zephyr data between runs (a test hook): `change` edits a
    /// copy, which is then served whole; requests in flight finish on the
    /// old one.
    pub fn mutate_zephyr<R>(&self, change: impl FnOnce(&mut Dataset) -> R) -> R {
        let mut data = Dataset::clone(&self.zephyr_api.data.read());
        let out = change(&mut data);
        *self.zephyr_api.data.write() = Arc::new(data);
        out
    }

    /// Creates a copy of a test case (same name, parent, properties and steps), as a duplicate
    /// left by a double create would be; returns the new id.
    pub fn duplicate_case(&self, id: u64) -> Result<u64, String> {
        let body = {
            let store = self.qtest_api.store.lock();
            let c = store
                .state
                .test_case(id)
                .ok_or_else(|| format!("test case {id} not found"))?;
            let steps: Vec<Value> = c.test_steps.iter().map(|s| json!({ "description": s.description,
                "expected": s.expected, "order": s.order, "called_test_case_id": s.called_test_case_id })).collect();
            json!({ "name": c.name, "description": c.description, "precondition": c.precondition,
                    "parent_id": c.parent_id, "properties": c.properties, "test_steps": steps })
        };
        let created = self.admin_write("POST", "test-cases", body)?;
        Ok(created)
    }

    fn admin_write(&self, method: &str, tail: &str, body: Value) -> Result<u64, String> {
        let target = format!("/api/v3/projects/{}/{tail}", self.qtest_project_id());
        let (tail, query) = tail.split_once('?').unwrap_or((tail, ""));
        let query = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = Request {
            method: method.to_string(),
            path: target.split('?').next().unwrap_or_default().to_string(),
            target,
            query,
            body: body.to_string().into_bytes(),
            ..Request::default()
        };
        let seg: Vec<&str> = tail.split('/').collect();
        let out = self.qtest_api.write(&req, &seg);
        let body: Value = serde_json::from_slice(&out.response.body).unwrap_or_default();
        match out.write_applied {
            true => Ok(body["id"].as_u64().unwrap_or_default()),
            false => Err(String::from_utf8_lossy(&out.response.body).into_owned()),
        }
    }

    /// Starts qTest again on the same port after a crash (or at any time). With a state
    /// file the state is rebuilt from it; without one the in-memory state carries over.
    pub fn restart_qtest(&self) -> io::Result<()> {
        let mut slot = self.qtest.lock();
        slot.shutdown();
        if let Some(path) = &self.opts.state_file {
            let (state, file) = persist::load(path, &self.qtest_api.cfg, base_state(self.seed))?;
            *self.qtest_api.store.lock() = Store {
                state,
                file: Some(file),
            };
        }
        *slot = serve(
            slot.addr().port(),
            &self.qtest_gate,
            &self.faults.qtest,
            qtest_max_body(&self.opts),
        )?;
        Ok(())
    }

    /// Makes qTest's `POST /search` trail its writes by `lag` (as the real
    /// service's index may), while the listings stay current. Takes effect
    /// for writes from now on; [`SearchLag::none`] turns it off.
    pub fn set_search_lag(&self, lag: SearchLag) {
        self.qtest_api.lag.lock().set(lag);
    }

    /// Refuses the next `n` qTest writes with a 503 before applying them (a
    /// clean failure whose outcome the client can't know), whatever the
    /// fault switches say.
    pub fn refuse_next_qtest_writes(&self, n: u64) {
        self.qtest_api.refuse_writes.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` Zephyr file downloads with a 503, whatever the
    /// fault switches say.
    pub fn fail_next_zephyr_downloads(&self, n: u64) {
        self.zephyr_api.fail_downloads.store(n, Ordering::SeqCst);
    }

    /// The storage host's origin (`http://127.0.0.1:PORT`), with
    /// [`MockOptions::attachments_redirect`]; `None` without.
    pub fn file_host_url(&self) -> Option<String> {
        self.files.as_ref().map(|(_, server)| origin(server))
    }

    /// Requests the storage host has served, and how many of them came
    /// with an `Authorization` header (refused with 400); zeros without
    /// [`MockOptions::attachments_redirect`].
    pub fn file_host_requests(&self) -> (u64, u64) {
        self.files.as_ref().map_or((0, 0), |(host, _)| {
            (
                host.requests.load(Ordering::SeqCst),
                host.with_authorization.load(Ordering::SeqCst),
            )
        })
    }

    /// The pre-signed URL Zephyr's download of file `id` redirects to now;
    /// `None` without [`MockOptions::attachments_redirect`] or for a file
    /// it doesn't serve.
    pub fn file_link(&self, id: u64) -> Option<String> {
        let (host, _) = self.files.as_ref()?;
        let data = self.zephyr_data();
        data.attachments
            .iter()
            .find(|f| f.id == id)
            .map(|f| host.link(f))
    }

    /// Refuses the next `n` requests to the storage host as expired links
    /// (403 `AccessDenied`, the signature quoted in the body), as a link
    /// used after its `X-Amz-Expires` is.
    pub fn expire_next_file_links(&self, n: u64) {
        if let Some((host, _)) = &self.files {
            host.expire.store(n, Ordering::SeqCst);
        }
    }

    /// Stops qTest as an outage would: it stops listening and drops its
    /// connections, until [`restart_qtest`](Self::restart_qtest) (which, with
    /// a state file, rebuilds the created state from it).
    pub fn stop_qtest(&self) {
        self.qtest.lock().shutdown();
    }

    /// Stops both servers and joins their threads. Idempotent; dropping does it too.
    pub fn shutdown(&self) {
        self.zephyr.shutdown();
        self.qtest.lock().shutdown();
        if let Some((_, server)) = &self.files {
            server.shutdown();
        }
    }
}

impl Drop for MockServers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Ports for a mock asked to listen on port 0: outside Linux's ephemeral
/// range (32768-60999), so that while it is stopped (`stop_qtest`) no client
/// socket of this machine can be given its port, and its restart can bind
/// it again.
const RESTARTABLE_PORTS: std::ops::Range<u16> = 20_000..32_768;

fn serve(
    port: u16,
    gate: &Arc<Gate>,
    faults: &Faults,
    max_body_bytes: usize,
) -> io::Result<Arc<HttpServer>> {
    if port != 0 {
        return serve_on(port, gate, faults, max_body_bytes);
    }
    for _ in 0..64 {
        match serve_on(
            fastrand::u16(RESTARTABLE_PORTS),
            gate,
            faults,
            max_body_bytes,
        ) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            done => return done,
        }
    }
    serve_on(0, gate, faults, max_body_bytes)
}

fn serve_on(
    port: u16,
    gate: &Arc<Gate>,
    faults: &Faults,
    max_body_bytes: usize,
) -> io::Result<Arc<HttpServer>> {
    let opts = ServerOptions {
        port,
        idle_close: faults.config().idle_close,
        max_body_bytes,
        ..ServerOptions::default()
    };
    let server = Arc::new(HttpServer::start(opts, Arc::clone(gate) as _)?);
    faults.attach(&server);
    Ok(server)
}

/// qTest's largest body: as configured, else big enough for the big attachment.
fn qtest_max_body(opts: &MockOptions) -> usize {
    match (opts.qtest_max_body_bytes, opts.attachments.big_bytes) {
        (0, 0) => 0,
        (0, big) => usize::try_from(big)
            .unwrap_or(usize::MAX)
            .saturating_add(64 * 1024)
            .max(super::server::DEFAULT_MAX_BODY),
        (configured, _) => configured,
    }
}

fn origin(server: &HttpServer) -> String {
    format!("http://127.0.0.1:{}", server.addr().port())
}

/// An empty state whose ids start at a seeded base.
fn base_state(seed: u64) -> QtestState {
    let base = 50_000 + fastrand::Rng::with_seed(seed ^ 7).u64(0..50_000) * 10;
    let mut state = QtestState {
        last_id: base,
        ..QtestState::default()
    };
    super::qtest::seed::preexisting(&mut state);
    state
}

fn initial_store(opts: &MockOptions, cfg: &QtestConfig, seed: u64) -> io::Result<Store> {
    match &opts.state_file {
        Some(path) => {
            let (state, file) = persist::load(path, cfg, base_state(seed))?;
            Ok(Store {
                state,
                file: Some(file),
            })
        }
        None => Ok(Store {
            state: base_state(seed),
            file: None,
        }),
    }
}
