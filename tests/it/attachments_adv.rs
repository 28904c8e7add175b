//! Adversarial review of attachments (issue 14 item 1): a migration whose
//! Zephyr (and, where it matters, qTest) is reached through an in-test front
//! server that forwards to the mocks and rewrites the wire byte by byte:
//! truncated and reset downloads, bodies without a length, files renamed to
//! hostile names, 404s on listed files. What must hold: every file lands on
//! qTest whole or not at all, once, under its name; the limits, the report
//! and the summary say what happened; no credential crosses to the other side.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::attachments::{actual, expected, files_to_migrate, options, uploads};
use crate::support::{Migration, server};
use etlpool::migrate::{AttachmentOptions, MigrateOptions, RunHooks, RunSummary, SyncOptions};
use etlpool::mock::server::{Answer, Response};
use etlpool::mock::zephyr::attachments::MockFile;

/// One answer of the upstream mock, read whole by the front.
pub(crate) struct Upstream {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// What the front writes for one request: these bytes, then a FIN or a reset.
pub(crate) struct Wire {
    bytes: Vec<u8>,
    reset: bool,
    /// Written in pieces of this many bytes with this pause between them
    /// (a slow link), else at once.
    pace: Option<(usize, std::time::Duration)>,
}

/// A request the front saw: its target, its headers, and how many requests
/// for the same target came before it.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) target: String,
    headers: Vec<(String, String)>,
    nth: usize,
}

impl Call {
    /// The attachment id of a download (`…/attachments/{id}`).
    fn download(&self) -> Option<u64> {
        let (before, id) = self.target.rsplit_once('/')?;
        before.ends_with("/attachments").then(|| id.parse().ok())?
    }

    fn is_listing(&self) -> bool {
        self.target.ends_with("/attachments")
    }
}

type Mangle = dyn Fn(&Call, &Upstream) -> Option<Wire> + Send + Sync;

/// A raw-TCP front of a mock: one request per connection (bodies with a
/// `Content-Length`), forwarded, and answered as `mangle` says (else as the
/// mock did).
pub(crate) struct Front {
    url: String,
    seen: Arc<Mutex<Vec<Call>>>,
}

impl Front {
    pub(crate) fn start(
        upstream: &str,
        mangle: impl Fn(&Call, &Upstream) -> Option<Wire> + Send + Sync + 'static,
    ) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (origin, prefix) = split_url(upstream);
        let seen: Arc<Mutex<Vec<Call>>> = Arc::default();
        let mangle: Arc<Mangle> = Arc::new(mangle);
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (origin, log, mangle) = (origin.clone(), log.clone(), mangle.clone());
                std::thread::spawn(move || serve_one(conn, &origin, &log, &*mangle));
            }
        });
        Front {
            url: format!("http://127.0.0.1:{port}{prefix}"),
            seen,
        }
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.seen.lock().clone()
    }

    fn downloads_of(&self, id: u64) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.download() == Some(id))
            .count()
    }
}

/// `http://host:port/prefix` as (`http://host:port`, `/prefix`).
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let slash = rest.find('/').unwrap_or(rest.len());
    (
        format!("http://{}", &rest[..slash]),
        rest[slash..].to_string(),
    )
}

fn serve_one(conn: TcpStream, origin: &str, log: &Mutex<Vec<Call>>, mangle: &Mangle) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let method = line.split_whitespace().next().unwrap_or("GET").to_string();
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    // Bodies come with a length (JSON, and uploads of a known size).
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
        return;
    }
    let call = {
        let mut log = log.lock();
        let nth = log.iter().filter(|c| c.target == target).count();
        let call = Call {
            target: target.clone(),
            headers: headers.clone(),
            nth,
        };
        log.push(call.clone());
        call
    };
    let up = forward(&method, &format!("{origin}{target}"), &headers, body);
    let wire = mangle(&call, &up).unwrap_or_else(|| with_length(&up, up.body.len(), &up.body));
    let mut conn = conn;
    match wire.pace {
        Some((piece, pause)) => {
            for part in wire.bytes.chunks(piece) {
                if conn.write_all(part).is_err() {
                    break;
                }
                std::thread::sleep(pause);
            }
        }
        None => {
            let _ = conn.write_all(&wire.bytes);
        }
    }
    let _ = conn.flush();
    if wire.reset {
        let _ = socket2::SockRef::from(&conn).set_linger(Some(std::time::Duration::ZERO));
    }
}

/// Sends a request upstream with a plain agent, the answer read whole.
fn forward(method: &str, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Upstream {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        let skip = ["host", "content-length", "transfer-encoding", "connection"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            req = req.header(k, v);
        }
    }
    let mut resp = agent
        .run(req.body(body).unwrap())
        .expect("upstream answers");
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    Upstream {
        status: resp.status().as_u16(),
        headers,
        body,
    }
}

/// The head of `up` without its framing headers, plus `framing`.
fn head(up: &Upstream, framing: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} X\r\n", up.status);
    for (k, v) in &up.headers {
        let framing_header = ["content-length", "transfer-encoding", "connection"];
        if !framing_header.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(framing);
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// `body` under a `Content-Length` of `claimed`, then a FIN.
pub(crate) fn with_length(up: &Upstream, claimed: usize, body: &[u8]) -> Wire {
    let mut bytes = head(up, &format!("Content-Length: {claimed}\r\n"));
    bytes.extend_from_slice(body);
    Wire {
        bytes,
        reset: false,
        pace: None,
    }
}

/// `body` chunked (1000-byte chunks), with the last chunk when `terminated`.
fn chunked(up: &Upstream, body: &[u8], terminated: bool) -> Wire {
    let mut bytes = head(up, "Transfer-Encoding: chunked\r\n");
    for chunk in body.chunks(1000) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    if terminated {
        bytes.extend_from_slice(b"0\r\n\r\n");
    }
    Wire {
        bytes,
        reset: false,
        pace: None,
    }
}

/// Zephyr's 404 for a file it listed.
fn not_found(_: &Upstream) -> Wire {
    let body = br#"{"errorCode":404,"message":"Attachment not found"}"#;
    let answer = Upstream {
        status: 404,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_vec(),
    };
    with_length(&answer, body.len(), body)
}

/// A front of Zephyr that answers every download of file `id` with `wire`.
fn serving(
    m: &Migration,
    id: u64,
    wire: impl Fn(&Upstream) -> Wire + Send + Sync + 'static,
) -> Front {
    Front::start(&m.mocks.zephyr_url(), move |call, up| {
        (call.download() == Some(id)).then(|| wire(up))
    })
}

/// A front of the qTest mock (any method, bodies read whole) that records
/// every request's headers.
pub(crate) struct QtestFront {
    url: String,
    seen: Arc<Mutex<Vec<Call>>>,
    _server: etlpool::mock::server::HttpServer,
}

fn qtest_front(upstream: &str) -> QtestFront {
    let (origin, prefix) = split_url(upstream);
    let seen: Arc<Mutex<Vec<Call>>> = Arc::default();
    let log = seen.clone();
    let srv = server(move |req, _| {
        log.lock().push(Call {
            target: req.target.clone(),
            headers: req.headers.clone(),
            nth: 0,
        });
        let url = format!("{origin}{}", req.target);
        let up = forward(&req.method, &url, &req.headers, req.body);
        let mut resp = Response::new(up.status);
        for (k, v) in up.headers {
            let framing = ["content-length", "transfer-encoding", "connection"];
            if !framing.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                resp = resp.header(k, v);
            }
        }
        resp.body = up.body;
        Answer::Response(resp)
    });
    QtestFront {
        url: format!("{}{prefix}", srv.url()),
        seen,
        _server: srv,
    }
}

/// The migration's options with Zephyr (and qTest, when given) behind fronts.
pub(crate) fn through(m: &Migration, zephyr: &Front, qtest: Option<&QtestFront>) -> MigrateOptions {
    let mut o = m.options();
    o.endpoints.zephyr_url = zephyr.url.clone();
    if let Some(q) = qtest {
        o.endpoints.qtest_url = q.url.clone();
    }
    o
}

pub(crate) fn run(m: &Migration, o: &MigrateOptions, hooks: RunHooks) -> RunSummary {
    let cancel = etlpool::CancelToken::new();
    let hooks = hooks.max_outage(m.max_outage);
    etlpool::migrate::migrate_with(&m.pool, o, &cancel, &hooks).expect("run")
}

/// A run with the default attachment options, Zephyr behind `z`.
fn run_through(m: &Migration, z: &Front) -> RunSummary {
    run(m, &through(m, z, None), with(AttachmentOptions::default()))
}

pub(crate) fn with(attachments: AttachmentOptions) -> RunHooks {
    RunHooks::default().attachments(attachments)
}

/// The sample file named `name` (the first, for the `notes.txt` pair).
fn file(m: &Migration, name: &str) -> MockFile {
    m.mocks
        .source()
        .attachments
        .iter()
        .find(|f| f.name == name)
        .cloned()
        .unwrap()
}

pub(crate) fn report(summary: &RunSummary) -> String {
    std::fs::read_to_string(&summary.report).unwrap()
}

/// The summary's attachment counts are the report's attachment rows.
fn assert_counted(summary: &RunSummary) {
    let text = report(summary);
    let rows = |action: &str| {
        text.lines()
            .filter(|l| l.starts_with("attachment,") && l.split(',').nth(3) == Some(action))
            .count() as u64
    };
    let c = summary.records["attachment"];
    let from_report = [
        rows("created"),
        rows("found"),
        rows("skipped"),
        rows("failed"),
    ];
    assert_eq!(
        from_report,
        [c.created, c.found, c.skipped, c.failed],
        "{summary}\n{text}"
    );
}

/// A run in which one file failed and every other one was uploaded.
fn one_file_failed(m: &Migration, summary: &RunSummary) {
    assert_eq!(summary.failed, 1, "{summary}\n{}", m.failures());
    assert!(!summary.is_complete());
    assert_eq!(
        summary.records["attachment"].created,
        (files_to_migrate(m) - 1) as u64,
        "{summary}"
    );
}

// ---- streamed: a download cut short never lands as a complete file ----

/// Runs with the first download of `trace.log` answered by `cut`, later ones
/// whole: the file must arrive once, whole (byte for byte), never truncated.
fn first_download_cut(seed: u64, cut: fn(&Upstream) -> Wire) {
    let m = Migration::with_options(options(seed));
    let trace = file(&m, "trace.log").id;
    let z = Front::start(&m.mocks.zephyr_url(), move |call, up| {
        (call.download() == Some(trace) && call.nth == 0).then(|| cut(up))
    });
    let summary = run_through(&m, &z);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(actual(&m), expected(&m), "every file whole, once");
    assert_eq!(
        uploads(&m),
        files_to_migrate(&m),
        "a cut download never became an upload"
    );
    assert!(z.downloads_of(trace) >= 2, "downloaded again");
}

#[test]
fn a_download_shorter_than_its_content_length_never_lands_as_complete() {
    first_download_cut(61, |up| {
        with_length(up, up.body.len(), &up.body[..up.body.len() / 2])
    });
}

#[test]
fn a_download_reset_mid_body_never_lands_as_complete() {
    first_download_cut(62, |up| {
        let mut wire = with_length(up, up.body.len(), &up.body[..up.body.len() / 3]);
        wire.reset = true;
        wire
    });
}

#[test]
fn a_chunked_download_without_its_last_chunk_never_lands_as_complete() {
    first_download_cut(63, |up| chunked(up, &up.body[..up.body.len() / 2], false));
}

#[test]
fn a_download_always_cut_short_fails_its_record_and_leaves_nothing_on_qtest() {
    let m = Migration::with_options(options(64));
    let trace = file(&m, "trace.log").id;
    let z = serving(&m, trace, |up| {
        with_length(up, up.body.len(), &up.body[..up.body.len() - 1])
    });
    let summary = run_through(&m, &z);
    one_file_failed(&m, &summary);
    let names: Vec<String> = actual(&m).into_values().flatten().map(|f| f.0).collect();
    assert!(!names.contains(&"trace.log".to_string()), "{names:?}");
    assert!(
        m.failures().contains(&format!("/{trace}")),
        "{}",
        m.failures()
    );
}

#[test]
fn a_download_larger_than_the_pools_body_limit_still_migrates() {
    let mut m = Migration::with_options(options(65));
    m.pool = crate::support::test_pool()
        .max_connections_per_host(4)
        .max_body_bytes(100_000)
        .build()
        .unwrap();
    let summary = run(&m, &m.options(), with(AttachmentOptions::default()));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(actual(&m), expected(&m));
}

// ---- bodies without a length ----

#[test]
fn files_of_one_name_and_different_sizes_served_without_a_length_both_migrate() {
    let m = Migration::with_options(options(66));
    // Zephyr (or a CDN in front of it) may stream a file chunked.
    let z = Front::start(&m.mocks.zephyr_url(), |call, up| {
        call.download().map(|_| chunked(up, &up.body, true))
    });
    let summary = run_through(&m, &z);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(actual(&m), expected(&m), "both notes.txt on their case");
    assert_eq!(
        summary.records["attachment"].created,
        files_to_migrate(&m) as u64,
        "{summary}"
    );
}

#[test]
fn a_file_over_the_limit_served_without_a_length_is_skipped_after_one_download() {
    let m = Migration::with_options(options(67));
    let trace = file(&m, "trace.log").id;
    let z = Front::start(&m.mocks.zephyr_url(), |call, up| {
        call.download().map(|_| chunked(up, &up.body, true))
    });
    let o = AttachmentOptions::default().max_bytes(100_000);
    let summary = run(&m, &through(&m, &z, None), with(o));
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let text = report(&summary);
    let row = text
        .lines()
        .find(|l| l.contains(&format!("/{trace}")))
        .expect("a row for the big file");
    assert!(row.contains("skipped") && row.contains("limit"), "{row}");
    assert_eq!(z.downloads_of(trace), 1, "read once, to its limit");
    assert_counted(&summary);
    let names: Vec<String> = actual(&m).into_values().flatten().map(|f| f.0).collect();
    assert!(!names.contains(&"trace.log".to_string()), "{names:?}");
}

// ---- names ----

/// Serves the listings with each sample file `from` renamed `to`.
fn renaming(m: &Migration, names: &[(&str, &str)]) -> Front {
    let by_id: HashMap<u64, String> = names
        .iter()
        .map(|(from, to)| (file(m, from).id, to.to_string()))
        .collect();
    Front::start(&m.mocks.zephyr_url(), move |call, up| {
        call.is_listing().then(|| rename(up, &by_id)).flatten()
    })
}

/// A listing `up` with the files of `names` (by id) renamed.
fn rename(up: &Upstream, names: &HashMap<u64, String>) -> Option<Wire> {
    if up.status != 200 {
        return None;
    }
    let mut list: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    for item in list["attachments"].as_array_mut().unwrap() {
        let id = item["id"].as_u64().unwrap();
        if let Some(name) = names.get(&id) {
            item["name"] = name.clone().into();
        }
    }
    let body = serde_json::to_vec(&list).unwrap();
    Some(with_length(up, body.len(), &body))
}

/// The qTest names of the files on the mock.
fn qtest_names(m: &Migration) -> Vec<String> {
    let mut names: Vec<String> = m
        .mocks
        .qtest_state()
        .attachments
        .iter()
        .map(|f| f.name.clone())
        .collect();
    names.sort();
    names
}

/// Runs once without attachments, then with every upload applied and its
/// answer lost, with the files renamed as `names` says: each file must be
/// found by the lookup, never uploaded twice.
fn lost_answers_under_names(seed: u64, names: &[(&str, &str)]) {
    let m = Migration::with_options(options(seed));
    let z = renaming(&m, names);
    let o = through(&m, &z, None);
    let first = run(&m, &o, with(AttachmentOptions::off()));
    assert!(first.is_complete(), "{first}");
    m.mocks.faults().qtest.set_reset_after_write_rate(1.0);
    let hooks = RunHooks::default().sync(SyncOptions::default().full(true));
    let second = run(&m, &o, hooks);
    m.mocks.faults().qtest.clear();
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(
        uploads(&m),
        files_to_migrate(&m),
        "one upload per file: {:?}",
        qtest_names(&m)
    );
}

#[test]
fn a_non_ascii_name_after_a_lost_answer_is_found_not_uploaded_twice() {
    lost_answers_under_names(68, &[("spec.pdf", "Prüfung – Bericht.pdf")]);
}

#[test]
fn a_name_with_edge_spaces_after_a_lost_answer_is_found_not_uploaded_twice() {
    // Header values lose their edge whitespace on the way.
    lost_answers_under_names(
        84,
        &[("spec.pdf", " spec .pdf "), ("photo.jpg", "\tphoto.jpg")],
    );
}

#[test]
fn hostile_names_stay_one_header_and_arrive_under_a_faithful_name() {
    let m = Migration::with_options(options(69));
    let long = format!("{}.txt", "n".repeat(300));
    let names = [
        ("screenshot.png", "a\r\nX-Injected: 1.png"),
        ("spec.pdf", "../../etc/\"passwd\".pdf"),
        ("result.txt", long.as_str()),
        ("photo.jpg", "x\u{0}y\u{7f}%41.jpg"),
    ];
    let z = renaming(&m, &names);
    let q = qtest_front(&m.mocks.qtest_url());
    let summary = run(
        &m,
        &through(&m, &z, Some(&q)),
        with(AttachmentOptions::default()),
    );
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    for call in q.seen.lock().iter() {
        let injected = call
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-injected"));
        assert!(!injected, "{call:?}");
    }
    let got = qtest_names(&m);
    assert_eq!(got.len(), files_to_migrate(&m), "{got:?}");
    // Each arrives under its name, or its name percent-encoded (header
    // values are ASCII): decoding gives back exactly the Zephyr name.
    for (_, want) in names {
        let found = got.iter().any(|g| {
            percent_encoding::percent_decode_str(g)
                .decode_utf8()
                .ok()
                .as_deref()
                == Some(want)
        });
        assert!(found, "{want:?} not among {got:?}");
    }
}

// ---- content type ----

#[test]
fn the_content_type_comes_from_zephyr_else_from_the_name() {
    let m = Migration::with_options(options(70));
    let spec = file(&m, "spec.pdf").id;
    // spec.pdf's answer names no type; the others keep the mock's.
    let z = serving(&m, spec, |up| {
        let bare = Upstream {
            status: up.status,
            headers: Vec::new(),
            body: up.body.clone(),
        };
        with_length(&bare, bare.body.len(), &bare.body)
    });
    let summary = run_through(&m, &z);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    let state = m.mocks.qtest_state();
    let source = m.mocks.source();
    for f in &state.attachments {
        let z = source
            .attachments
            .iter()
            .find(|s| s.name == f.name && s.size == f.size)
            .unwrap();
        let want = if z.id == spec {
            "application/pdf"
        } else {
            z.content_type.as_str()
        };
        assert_eq!(f.content_type, want, "{}", f.name);
    }
}

// ---- secrets ----

#[test]
fn neither_token_reaches_the_other_service_nor_the_report() {
    let m = Migration::with_options(options(71));
    let trace = file(&m, "trace.log").id;
    // One download fails for good, so the report has an error row.
    let z = serving(&m, trace, |up| {
        let mut wire = with_length(up, up.body.len(), &up.body[..10]);
        wire.reset = true;
        wire
    });
    let q = qtest_front(&m.mocks.qtest_url());
    let summary = run(
        &m,
        &through(&m, &z, Some(&q)),
        with(AttachmentOptions::default()),
    );
    assert_eq!(summary.failed, 1, "{summary}");
    let (zt, qt) = (m.mocks.zephyr_token(), m.mocks.qtest_token());
    let zephyr_saw = headers_text(&z.calls());
    let qtest_saw = headers_text(&q.seen.lock());
    assert!(
        zephyr_saw.contains(zt) && qtest_saw.contains(qt),
        "the fronts saw the calls"
    );
    assert!(!zephyr_saw.contains(qt), "qTest's token went to Zephyr");
    assert!(!qtest_saw.contains(zt), "Zephyr's token went to qTest");
    let text = report(&summary) + &format!("{summary}");
    assert!(!text.contains(zt) && !text.contains(qt), "{text}");
}

/// Every header the calls carried, one per line.
fn headers_text(calls: &[Call]) -> String {
    calls
        .iter()
        .flat_map(|c| c.headers.iter().map(|(k, v)| format!("{k}: {v}\n")))
        .collect()
}

// ---- 404 on a listed file, and the resumed owner ----

#[test]
fn a_listed_file_zephyr_cant_find_fails_alone_and_a_rerun_uploads_only_it() {
    let m = Migration::with_options(options(72));
    let notes = file(&m, "notes.txt").id;
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = gone.clone();
    let z = Front::start(&m.mocks.zephyr_url(), move |call, up| {
        let missing =
            call.download() == Some(notes) && still.load(std::sync::atomic::Ordering::SeqCst);
        missing.then(|| not_found(up))
    });
    let o = through(&m, &z, None);
    let first = run(&m, &o, with(AttachmentOptions::default()));
    one_file_failed(&m, &first);
    assert!(
        m.failures().contains(&format!("/{notes}")),
        "{}",
        m.failures()
    );
    assert_counted(&first);
    // The case's other files are there.
    assert_eq!(uploads(&m), files_to_migrate(&m) - 1);
    gone.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = run(&m, &o, with(AttachmentOptions::default()));
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(second.records["attachment"].created, 1, "{second}");
    assert_counted(&second);
    assert_eq!(
        uploads(&m),
        files_to_migrate(&m),
        "only the missing file was uploaded"
    );
    assert_eq!(actual(&m), expected(&m));
}

// ---- --no-attachments ----

#[test]
fn no_attachments_makes_no_attachment_request_on_either_side() {
    let m = Migration::with_options(options(73));
    let z = Front::start(&m.mocks.zephyr_url(), |_, _| None);
    let q = qtest_front(&m.mocks.qtest_url());
    let summary = run(
        &m,
        &through(&m, &z, Some(&q)),
        with(AttachmentOptions::off()),
    );
    assert!(summary.is_complete(), "{summary}");
    assert!(
        !summary.records.contains_key("attachment")
            || summary.records["attachment"] == Default::default(),
        "{summary}"
    );
    let zephyr: Vec<String> = z
        .calls()
        .into_iter()
        .map(|c| c.target)
        .filter(|t| t.contains("attachments"))
        .collect();
    let qtest: Vec<String> = q
        .seen
        .lock()
        .iter()
        .map(|c| c.target.clone())
        .filter(|t| t.contains("attachments") || t.contains("blob-handles"))
        .collect();
    assert!(
        zephyr.is_empty() && qtest.is_empty(),
        "{zephyr:?} {qtest:?}"
    );
}

// ---- a file already on qTest ----

/// Drops the journal's attachment rows.
fn forget_attachments(m: &Migration) {
    let path = m.dir.0.join("journal.csv");
    let kept: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("attachment,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept).unwrap();
}

#[test]
fn files_already_on_qtest_with_their_name_and_size_are_found_when_the_journal_lost_them() {
    let m = Migration::with_options(options(74));
    let z = Front::start(&m.mocks.zephyr_url(), |call, up| {
        call.download().map(|_| chunked(up, &up.body, true))
    });
    let o = through(&m, &z, None);
    let first = run(&m, &o, with(AttachmentOptions::default()));
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    // The journal lost its attachment rows (a crash before they were
    // written, a journal restored from an older copy).
    forget_attachments(&m);
    let hooks = RunHooks::default().sync(SyncOptions::default().full(true));
    let second = run(&m, &o, hooks);
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(
        second.records["attachment"].found,
        files_to_migrate(&m) as u64,
        "{second}"
    );
    assert_counted(&second);
    assert_eq!(uploads(&m), files_to_migrate(&m), "nothing uploaded twice");
    assert_eq!(actual(&m), expected(&m));
}

// ---- a body source failing midway is not the receiving server's failure ----

/// `n` bytes, then the error a download cut off midway gives.
struct CutAfter(usize);

impl std::io::Read for CutAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the download was reset",
            ));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(b'z');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn an_upload_whose_source_fails_midway_is_not_charged_to_the_server_it_went_to() {
    use etlpool::http::{ApiClient, ApiRequest, Auth};
    use etlpool::policy::BreakerPolicy;
    let srv = crate::support::scripted(|_, _| {
        crate::support::json(201, serde_json::json!({"id": 1, "name": "f"}))
    });
    let pool = crate::support::test_pool().build().unwrap();
    let c = ApiClient::builder(&pool, &srv.url())
        .auth(Auth::Bearer("t0ken-of-qtest".into()))
        .breaker(BreakerPolicy::after_failures(1))
        .build()
        .unwrap();
    for len in [Some(100_000), None] {
        let err = c
            .send_stream(&ApiRequest::post("/blob"), &mut CutAfter(20_000), len)
            .unwrap_err();
        let text = etlpool::error_chain(&err);
        // The server is not at fault, and got a request cut short it can't
        // have acted on: nothing says its connection failed.
        assert!(text.contains("the download was reset"), "{text}");
        assert!(!text.contains("reused connection"), "{text}");
        assert!(!err.is_outcome_unknown(), "{text}");
    }
    // Its breaker heard no failure: the next call goes out.
    let next: serde_json::Value = c.get_json("/next", &[]).unwrap();
    assert_eq!(next["id"], 1);
    assert_eq!(srv.count(), 1, "no truncated upload reached the handler");
}

// ---- a big download over a slow link gets the time of its size ----

#[test]
fn a_download_slower_than_a_json_call_but_faster_than_the_minimum_rate_migrates() {
    let mut opts = options(75);
    opts.attachments.big_bytes = 2_000_000;
    opts.qtest_max_body_bytes = 4_000_000;
    let mut m = Migration::with_options(opts);
    // Calls (with their retries) get 2 s; the big file takes about 2.5 s
    // at about 800 KB/s, well above the 256 KiB/s a transfer must keep.
    m.pool = crate::support::test_pool()
        .max_connections_per_host(4)
        .request_timeout(std::time::Duration::from_secs(1))
        .total_timeout(Some(std::time::Duration::from_secs(2)))
        .build()
        .unwrap();
    let big = file(&m, "big.bin").id;
    let z = serving(&m, big, |up| {
        let mut wire = with_length(up, up.body.len(), &up.body);
        wire.pace = Some((40_000, std::time::Duration::from_millis(50)));
        wire
    });
    let summary = run_through(&m, &z);
    assert!(summary.is_complete(), "{summary}\n{}", m.failures());
    assert_eq!(actual(&m), expected(&m));
    assert_eq!(
        z.downloads_of(big),
        1,
        "one download, not cut and read again"
    );
}

// ---- a crash of qTest right after an upload, then a resumed run ----

#[test]
fn a_crash_right_after_an_upload_and_a_resumed_run_upload_each_file_once() {
    for k in [1u64, 3] {
        let dir = crate::support::Scratch::new("attach-crash");
        let mut opts = options(76 + k);
        opts.state_file = Some(dir.0.join("qtest-state.jsonl"));
        let mut m = Migration::with_options(opts);
        let first = run(&m, &m.options(), with(AttachmentOptions::off()));
        assert!(first.is_complete(), "{first}");
        // The k-th upload is applied, then qTest dies without answering:
        // its owner's marker (`…/all`) is never written.
        m.mocks.faults().qtest.set_crash_after_writes(Some(k));
        let full = RunHooks::default().sync(SyncOptions::default().full(true));
        let crashed = run(&m, &m.options(), full.clone());
        assert!(!crashed.is_complete(), "k={k}: {crashed}");
        assert!(m.mocks.faults().qtest.crashed());
        m.mocks.faults().qtest.clear();
        m.mocks.restart_qtest().unwrap();
        m.new_process();
        let resumed = run(&m, &m.options(), full);
        assert!(resumed.is_complete(), "k={k}: {resumed}\n{}", m.failures());
        assert_eq!(
            uploads(&m),
            files_to_migrate(&m),
            "k={k}: each file uploaded once"
        );
        assert_eq!(actual(&m), expected(&m), "k={k}");
    }
}

// ---- the CLI: the config key, and the exit code of a run with a failed file ----

#[test]
fn the_config_keys_limit_skips_and_a_missing_file_makes_the_exit_code_partial() {
    let m = Migration::with_options(options(80));
    let notes = file(&m, "notes.txt").id;
    let z = serving(&m, notes, not_found);
    let config = m
        .dir
        .file("etlpool.toml", b"[run]\nmax_attachment_bytes = 100000\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etlpool"))
        .env_clear()
        .env("ZEPHYR_URL", &z.url)
        .env("ZEPHYR_TOKEN", m.mocks.zephyr_token())
        .env("ZEPHYR_PROJECT", m.mocks.project_key())
        .env("QTEST_URL", m.mocks.qtest_url())
        .env("QTEST_TOKEN", m.mocks.qtest_token())
        .env("QTEST_PROJECT_ID", m.mocks.qtest_project_id().to_string())
        .args(["--quiet", "migrate", "--config"])
        .arg(&config)
        .arg("--journal")
        .arg(m.dir.0.join("journal.csv"))
        .arg("--report")
        .arg(m.dir.0.join("report.csv"))
        .output()
        .expect("run etlpool");
    // The CLI names the report after the run's start: the one in the dir.
    let report = std::fs::read_dir(&m.dir.0)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("report.")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|| panic!("no report: {out:?}"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "records failed: {out:?}\n{report}"
    );
    let row = |id: u64| {
        report
            .lines()
            .find(|l| l.contains(&format!("/{id},")))
            .unwrap_or_default()
            .to_string()
    };
    let trace = file(&m, "trace.log").id;
    assert!(
        row(trace).contains(",skipped,") && row(trace).contains("limit"),
        "{report}"
    );
    assert!(
        row(notes).contains(",failed,") && row(notes).contains("404"),
        "{report}"
    );
    // The other files are there: all but the one skipped and the one failed.
    assert_eq!(uploads(&m), files_to_migrate(&m) - 2, "{report}");
}

// ---- an empty file ----

#[test]
fn an_empty_file_migrates_once_with_or_without_a_length() {
    for chunk in [false, true] {
        let m = Migration::with_options(options(81 + u64::from(chunk)));
        let shot = file(&m, "screenshot.png").id;
        let z = serving(&m, shot, move |up| match chunk {
            true => chunked(up, &[], true),
            false => with_length(up, 0, &[]),
        });
        let o = through(&m, &z, None);
        let first = run(&m, &o, with(AttachmentOptions::default()));
        assert!(first.is_complete(), "{first}\n{}", m.failures());
        let state = m.mocks.qtest_state();
        let stored: Vec<_> = state
            .attachments
            .iter()
            .filter(|f| f.name == "screenshot.png")
            .collect();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(stored[0].size, 0);
        // Found again by name and size when the journal lost it.
        forget_attachments(&m);
        let hooks = RunHooks::default().sync(SyncOptions::default().full(true));
        let second = run(&m, &o, hooks);
        assert!(second.is_complete(), "{second}\n{}", m.failures());
        assert_eq!(uploads(&m), files_to_migrate(&m), "chunked={chunk}");
    }
}

// ---- two different files of one name and one size on one record ----

#[test]
fn two_different_files_of_one_name_and_size_on_a_record_both_migrate_across_runs() {
    let m = Migration::with_options(options(83));
    let (shot, trace) = (file(&m, "screenshot.png"), file(&m, "trace.log"));
    // trace.log is listed as a second screenshot.png of the same size, with
    // other bytes; on the first run Zephyr can't serve it.
    let names = HashMap::from([(trace.id, shot.name.clone())]);
    let first_run = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = first_run.clone();
    let size = usize::try_from(shot.size).unwrap();
    let z = Front::start(&m.mocks.zephyr_url(), move |call, up| {
        if call.is_listing() {
            return rename(up, &names);
        }
        (call.download() == Some(trace.id)).then(|| {
            match failing.load(std::sync::atomic::Ordering::SeqCst) {
                true => not_found(up),
                false => with_length(up, size, &up.body[..size]),
            }
        })
    });
    let o = through(&m, &z, None);
    let first = run(&m, &o, with(AttachmentOptions::default()));
    assert_eq!(first.failed, 1, "{first}\n{}", m.failures());
    first_run.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = run(&m, &o, with(AttachmentOptions::default()));
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(second.records["attachment"].created, 1, "{second}");
    let state = m.mocks.qtest_state();
    let shots: Vec<_> = state
        .attachments
        .iter()
        .filter(|f| f.name == shot.name)
        .map(|f| (f.size, f.sha256.clone()))
        .collect();
    assert_eq!(shots.len(), 2, "{shots:?}");
    assert!(
        shots[0].0 == shot.size && shots[1].0 == shot.size,
        "{shots:?}"
    );
    assert_ne!(shots[0].1, shots[1].1, "two different files");
}

// ---- a lookup against a big file of the same name on qTest ----

#[test]
fn a_lookup_never_reads_a_big_same_named_qtest_file_to_learn_its_size() {
    let mut opts = options(85);
    opts.qtest_max_body_bytes = 4_000_000;
    let mut m = Migration::with_options(opts);
    let trace = file(&m, "trace.log").id;
    // First, trace.log reaches qTest as a 2 MB file (Zephyr then served it
    // so), and the journal forgets it.
    let big = serving(&m, trace, |up| {
        let body: Vec<u8> = up.body.iter().copied().cycle().take(2_000_000).collect();
        with_length(up, body.len(), &body)
    });
    let first = run_through(&m, &big);
    assert!(first.is_complete(), "{first}\n{}", m.failures());
    forget_attachments(&m);
    // Then qTest serves its files slowly, and calls get 2 s: reading the
    // 2 MB file (2.5 s) to count it would fail the lookup.
    m.pool = crate::support::test_pool()
        .max_connections_per_host(4)
        .request_timeout(std::time::Duration::from_secs(1))
        .total_timeout(Some(std::time::Duration::from_secs(2)))
        .build()
        .unwrap();
    let q = Front::start(&m.mocks.qtest_url(), |call, up| {
        call.download().map(|_| {
            let mut wire = with_length(up, up.body.len(), &up.body);
            wire.pace = Some((40_000, std::time::Duration::from_millis(50)));
            wire
        })
    });
    let mut o = m.options();
    o.endpoints.qtest_url = q.url.clone();
    let hooks = RunHooks::default().sync(SyncOptions::default().full(true));
    let second = run(&m, &o, hooks);
    assert!(second.is_complete(), "{second}\n{}", m.failures());
    assert_eq!(
        second.records["attachment"].found,
        (files_to_migrate(&m) - 1) as u64,
        "{second}"
    );
    assert_eq!(second.records["attachment"].created, 1, "{second}");
    let sizes: Vec<u64> = m
        .mocks
        .qtest_state()
        .attachments
        .iter()
        .filter(|f| f.name == "trace.log")
        .map(|f| f.size)
        .collect();
    assert_eq!(sizes, [2_000_000, file(&m, "trace.log").size]);
}
