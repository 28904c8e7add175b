//! Attachments: each file of a migrated case or execution is streamed from
//! Zephyr into the matching qTest object (a case's files to the test case, an
//! execution's to its test log; steps' files, see [`super::step_files`]),
//! through the one record path
//! ([`Shared::ensure`]): journaled by `owner/attachment id`, looked up on the
//! qTest object by name and size before an upload, and an upload whose
//! outcome is unknown is looked up again, never blindly repeated.
//!
//! Once all of an owner's files are done (migrated, found, or deliberately
//! skipped), a marker (`owner/all`) is journaled, so a re-run doesn't list
//! the owner's attachments again.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{self, Read};

use super::shared::{Fresh, PlanInfo, Shared};
use crate::error::{Error, Result};
use crate::http::Streamed;
use crate::migrate::record::{RecordKind, Target, attachment_key};
use crate::qtest::{AttachmentTarget, QtestAttachment, header_safe};
use crate::zephyr::{Attachment, AttachmentOwner};

/// What a run does with attachments. Defaults to migrating files up to
/// [`DEFAULT_MAX_ATTACHMENT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttachmentOptions {
    /// Whether attachments are migrated at all (`--no-attachments` turns
    /// them off). Defaults to `true`.
    pub enabled: bool,
    /// Files larger than this are not migrated (reported as skipped).
    /// Defaults to [`DEFAULT_MAX_ATTACHMENT_BYTES`]; qTest answers 413 above
    /// its own limit, which is reported as a failure.
    pub max_bytes: u64,
    /// Whether the files of test steps and execution step results are
    /// migrated too. Zephyr lists them one step at a time, so on a project
    /// that doesn't use them this doubles its Zephyr requests;
    /// `--no-step-attachments` turns them off. Defaults to `true`.
    pub steps: bool,
}

/// 50 MiB.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 50 * 1024 * 1024;

impl Default for AttachmentOptions {
    fn default() -> Self {
        AttachmentOptions {
            enabled: true,
            max_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            steps: true,
        }
    }
}

impl AttachmentOptions {
    /// No attachments.
    pub fn off() -> Self {
        AttachmentOptions {
            enabled: false,
            ..Default::default()
        }
    }

    /// Attachments migrated (`true`) or left out.
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    pub(crate) fn migrates_steps(&self) -> bool {
        self.enabled && self.steps
    }

    /// The files of steps and step results migrated (`true`) or left out.
    pub fn steps(mut self, on: bool) -> Self {
        self.steps = on;
        self
    }

    /// Files up to `max_bytes`.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// The files of case `key`, now on qTest as `target`.
pub(crate) fn of_case(s: &Shared, key: &str, target: Target) {
    let owner = Owner {
        key: format!("case/{key}"),
        zephyr: AttachmentOwner::Case(key.to_owned()),
        qtest: &|| Ok(Ok(AttachmentTarget::TestCase(target.id))),
    };
    owner.migrate(s);
}

/// The files of execution `id`, now on qTest as the test log `target`.
pub(crate) fn of_execution(s: &Shared, id: u64, target: Target) {
    let owner = Owner {
        key: format!("log/{id}"),
        zephyr: AttachmentOwner::Execution(id.to_string()),
        qtest: &|| Ok(Ok(AttachmentTarget::TestLog(target.id))),
    };
    owner.migrate(s);
}

/// The files of cycle `key` (its Zephyr key): qTest test cycles take no
/// attachments (the spec lists none for them), so each is reported as
/// skipped with its name, not silently dropped.
pub(crate) fn of_cycle(s: &Shared, key: &str) {
    let owner = Owner {
        key: format!("cycle/{key}"),
        zephyr: AttachmentOwner::Cycle(key.to_owned()),
        qtest: &|| {
            Ok(Err(
                "qTest test cycles take no attachments; left on Zephyr".into()
            ))
        },
    };
    owner.migrate(s);
}

/// Reports each image pasted into `texts` (rich text of the record `owner`,
/// e.g. `case/PROJ-T1`) as a skipped attachment: such images live behind a
/// CDN the API token can't read, so their links stay in the text as they are
/// and the report lists them for someone to move by hand, each link once per
/// record (an image pasted twice is one image to move).
pub(crate) fn inline_images(s: &Shared, owner: &str, texts: &[Option<&str>]) {
    if !s.attachment_options.enabled {
        return;
    }
    let mut seen = HashSet::new();
    let urls = texts
        .iter()
        .flatten()
        .flat_map(|t| image_sources(t))
        .filter(|url| seen.insert(url.clone()));
    for (n, url) in (1u32..).zip(urls) {
        let key = format!("{owner}/inline-{n}");
        let why =
            format!("image in rich text, kept as a link (the API token can't read it): {url}");
        s.skipped(RecordKind::Attachment, &key, &why);
    }
}

/// The `src` of each `<img>` in `html`, in order, as a browser reads it:
/// attribute names matched whole (not `data-src`), spaces allowed around
/// `=`, a `>` inside a quoted value not ending the tag, and character
/// references decoded (`&amp;` in a link is `&`).
fn image_sources(html: &str) -> Vec<String> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = find_ignore_case(&bytes[at..], b"<img") {
        let p = at + i + 4;
        // `<imgx` is another element.
        if bytes.get(p).is_some_and(|b| b.is_ascii_alphanumeric()) {
            at = p;
            continue;
        }
        let (attrs, end) = attributes(html, p);
        if let Some((_, url)) = attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case("src")) {
            let url = decode_entities(url.trim());
            if !url.is_empty() {
                out.push(url);
            }
        }
        at = end;
    }
    out
}

/// The position of `needle` (ASCII) in `hay`, ignoring ASCII case.
fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// The attributes of the tag whose attributes start at `from` in `html`
/// (name, raw value), and where the tag ends. Every delimiter is ASCII, so
/// each slice falls on a character boundary.
fn attributes(html: &str, from: usize) -> (Vec<(&str, &str)>, usize) {
    let b = html.as_bytes();
    let mut p = from;
    let mut attrs = Vec::new();
    let skip_ws = |mut p: usize| {
        while b.get(p).is_some_and(u8::is_ascii_whitespace) {
            p += 1;
        }
        p
    };
    loop {
        p = skip_ws(p);
        match b.get(p) {
            None => return (attrs, p),
            Some(b'>') => return (attrs, p + 1),
            Some(b'/') => {
                p += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_start = p;
        while b
            .get(p)
            .is_some_and(|c| !c.is_ascii_whitespace() && !matches!(c, b'=' | b'>' | b'/'))
        {
            p += 1;
        }
        let name = &html[name_start..p];
        let after = skip_ws(p);
        if b.get(after) != Some(&b'=') {
            attrs.push((name, ""));
            continue;
        }
        p = skip_ws(after + 1);
        let value = match b.get(p) {
            Some(&q @ (b'"' | b'\'')) => {
                let start = p + 1;
                let end = b[start..]
                    .iter()
                    .position(|&c| c == q)
                    .map_or(b.len(), |e| start + e);
                p = (end + 1).min(b.len());
                &html[start..end]
            }
            _ => {
                let start = p;
                while b
                    .get(p)
                    .is_some_and(|c| !c.is_ascii_whitespace() && *c != b'>')
                {
                    p += 1;
                }
                &html[start..p]
            }
        };
        attrs.push((name, value));
    }
}

/// `text` with HTML character references (`&amp;`, `&#38;`, `&#x26;`, and
/// the few named ones a link holds) decoded; anything else kept as is.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&e| e <= 10).and_then(|e| {
            let c = match &rest[1..e] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                r => {
                    let n = match r.strip_prefix("#x").or_else(|| r.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => r.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    char::from_u32(n?)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where an owner's files go on qTest: the object, or why there is none
/// (each file is then reported as skipped, with the reason).
pub(crate) type Destination = std::result::Result<AttachmentTarget, String>;

/// A Zephyr record with files and the qTest object they go to.
pub(crate) struct Owner<'a> {
    /// Journal key prefix: `case/PROJ-T1`, `log/10100`, `step/PROJ-T1/1000002`.
    pub(crate) key: String,
    pub(crate) zephyr: AttachmentOwner,
    /// Where the files go; asked only when the owner has a file, so an owner
    /// without files costs no qTest read.
    pub(crate) qtest: &'a dyn Fn() -> Result<Destination>,
}

impl Owner<'_> {
    /// Moves the owner's files; whether all of them are done (journaled
    /// with the owner's marker).
    pub(crate) fn migrate(&self, s: &Shared) -> bool {
        if !s.attachment_options.enabled || s.cancel.is_cancelled() {
            return false;
        }
        let done = attachment_key(&self.key, None);
        if s.journal.get(RecordKind::Attachment, &done).is_some() {
            return true;
        }
        let files = match s.patiently(|| s.zephyr.attachments(&self.zephyr)) {
            Ok(files) => files,
            Err(e) => {
                s.failed(RecordKind::Attachment, &done, &e);
                return false;
            }
        };
        let destination = match files.is_empty() {
            true => Err(String::new()),
            false => match (self.qtest)() {
                Ok(d) => d,
                Err(e) => {
                    s.failed(RecordKind::Attachment, &done, &e);
                    return false;
                }
            },
        };
        let existing = Existing::default();
        // The qTest files that files of this record journaled are theirs: a
        // file of the same name and size is never "found" as one of them.
        for id in files.iter().filter_map(|f| f.id) {
            let key = attachment_key(&self.key, Some(id));
            if let Some(target) = s.journal.get(RecordKind::Attachment, &key) {
                existing.taken.borrow_mut().insert(target.id);
            }
        }
        let mut all_done = true;
        for file in &files {
            if s.cancel.is_cancelled() {
                return false;
            }
            all_done &= self.file(s, file, &destination, &existing);
        }
        if all_done && !s.dry_run() {
            let count = u64::try_from(files.len()).unwrap_or(u64::MAX);
            if let Err(e) = s
                .journal
                .record(RecordKind::Attachment, &done, Target::id(count))
            {
                // Not journaled: a re-run lists the files again and finds them.
                log::warn!("{}", crate::error::error_chain(&e));
            }
        }
        all_done
    }

    /// One file; whether it is done (on qTest, or deliberately left out).
    fn file(
        &self,
        s: &Shared,
        file: &Attachment,
        destination: &Destination,
        existing: &Existing,
    ) -> bool {
        let Some(id) = file.id else {
            let key = format!("{}/unnamed", self.key);
            s.skipped(
                RecordKind::Attachment,
                &key,
                "listed without an id: can't be downloaded",
            );
            return true;
        };
        let key = attachment_key(&self.key, Some(id));
        if s.journaled(RecordKind::Attachment, &key).is_some() {
            return true;
        }
        let name = file
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("attachment-{id}"));
        let target = match destination {
            Ok(target) => *target,
            Err(why) => {
                s.skipped(RecordKind::Attachment, &key, &format!("{name}: {why}"));
                return true;
            }
        };
        if s.dry_run() {
            let info = PlanInfo {
                parent: format!("{target:?}"),
                name: &name,
                body: &name,
            };
            let nothing = |_: Fresh| -> Result<Option<Target>> { Ok(None) };
            s.ensure(RecordKind::Attachment, &key, info, &nothing, &|| {
                Err(Error::Cancelled)
            });
            return true;
        }
        // Open the download first: its length is what a lookup compares. A
        // download is one attempt (its body streams): a failure that may
        // pass gets the rounds of any read, and an outage is waited out.
        let max = s.attachment_options.max_bytes;
        let download = match s.patiently(|| s.zephyr.download(&self.zephyr, id, Some(max))) {
            Ok(d) => d,
            Err(e) => {
                s.failed(RecordKind::Attachment, &key, &e);
                return false;
            }
        };
        let over = |size: &str| {
            let why = format!("{name}: {size}, over the limit of {max} (max_attachment_bytes)");
            s.skipped(RecordKind::Attachment, &key, &why);
            true
        };
        let content_type = download
            .header("content-type")
            .filter(|t| !t.is_empty())
            .map_or_else(|| content_type_of(&name).to_owned(), str::to_owned);
        // The length is what a lookup compares and what the upload announces:
        // a download that doesn't announce it is measured first (read to the
        // limit and dropped), then read again for the upload.
        let (len, first) = match download.content_length() {
            Some(n) if n > max => return over(&format!("{n} bytes")),
            Some(n) => (n, Some(download)),
            None => {
                let opened = RefCell::new(Some(download));
                let measured = s.patiently(|| {
                    let body = match opened.borrow_mut().take() {
                        Some(d) => d,
                        None => s.zephyr.download(&self.zephyr, id, Some(max))?,
                    };
                    measure(body, max)
                });
                match measured {
                    Ok(Some(n)) => (n, None),
                    Ok(None) => return over("more bytes (its size was not announced)"),
                    Err(e) => {
                        s.failed(RecordKind::Attachment, &key, &e);
                        return false;
                    }
                }
            }
        };
        let pending = RefCell::new(first);
        let find = |fresh: Fresh| existing.find(s, target, &name, len, fresh);
        let create = || -> Result<Target> {
            let download = match pending.borrow_mut().take() {
                Some(d) => d,
                // A later round (after a failure the lookup found no trace
                // of): the file is read again.
                None => s.patiently(|| s.zephyr.download(&self.zephyr, id, Some(max)))?,
            };
            let mut body = Exact::new(download, len, &name);
            let made = s
                .qtest
                .upload(target, &name, &content_type, &mut body, Some(len))
                // A download cut midway is Zephyr's failure, with its rounds.
                .map_err(|e| body.failure.take().unwrap_or(e))
                .map_err(|e| too_large_for_qtest(e, &name))?;
            existing.add(made.clone(), body.read);
            Ok(Target::id(made.id))
        };
        let info = PlanInfo {
            parent: format!("{target:?}"),
            name: &name,
            body: &name,
        };
        s.ensure(RecordKind::Attachment, &key, info, &find, &create)
            .is_some()
    }
}

/// A 413 to an upload, said in words in the report: the file is over
/// qTest's own limit, which no re-run changes.
fn too_large_for_qtest(e: Error, name: &str) -> Error {
    match e {
        Error::Status(mut status) if status.status == 413 => {
            status.body = format!(
                "{name} is too large for qTest (over its own limit, below max_attachment_bytes); \
                 move it by hand. qTest said: {}",
                status.body
            );
            Error::Status(status)
        }
        e => e,
    }
}

/// The qTest object's attachments, read at most once per owner unless a
/// fresh look is needed, with the sizes learnt so far, and those that are
/// already another file's (found or made for it): two files of one name and
/// size are two files.
#[derive(Default)]
struct Existing {
    listed: RefCell<Option<Vec<WithSize>>>,
    taken: RefCell<HashSet<u64>>,
}

/// A listed attachment and its size, once counted.
type WithSize = (QtestAttachment, Option<u64>);

impl Existing {
    /// The attachment named `name` (as sent, or as listed back: see
    /// [`same_name`]) of `len` bytes, if `target` has one.
    fn find(
        &self,
        s: &Shared,
        target: AttachmentTarget,
        name: &str,
        len: u64,
        fresh: Fresh,
    ) -> Result<Option<Target>> {
        let mut listed = self.listed.borrow_mut();
        if listed.is_none() || fresh == Fresh::Live {
            let all = s.qtest.attachments(target)?;
            *listed = Some(all.into_iter().map(|a| (a, None)).collect());
        }
        let Some(items) = listed.as_mut() else {
            return Ok(None);
        };
        let mut taken = self.taken.borrow_mut();
        let candidates = items
            .iter_mut()
            .filter(|(a, _)| same_name(&a.name, name) && !taken.contains(&a.id));
        for (item, size) in candidates {
            if size.is_none() {
                *size = Some(s.qtest.attachment_size(target, item.id, len)?);
            }
            if *size == Some(len) {
                taken.insert(item.id);
                return Ok(Some(Target::id(item.id)));
            }
        }
        Ok(None)
    }

    fn add(&self, made: QtestAttachment, size: u64) {
        self.taken.borrow_mut().insert(made.id);
        if let Some(items) = self.listed.borrow_mut().as_mut() {
            items.push((made, Some(size)));
        }
    }
}

/// Whether qTest's `listed` name is the file `name` an upload sent: the
/// name as is, or as its `File-Name` header carried it (partly
/// percent-encoded: [`header_safe`]), which a server may store undecoded.
fn same_name(listed: &str, name: &str) -> bool {
    listed == name || listed == header_safe(name)
}

/// The size of a download that announced none: its bytes counted as they
/// arrive and dropped, `None` once there are more than `max`.
fn measure(mut body: Streamed, max: u64) -> Result<Option<u64>> {
    let counted = io::copy(
        &mut (&mut body).take(max.saturating_add(1)),
        &mut io::sink(),
    )
    .map_err(|e| body.read_error(e))?;
    Ok((counted <= max).then_some(counted))
}

/// A download read into an upload that announced `len` bytes: the upload
/// fails (before its last byte) if the download ends early or runs longer,
/// so a file that changed or was cut short is never stored as complete.
struct Exact<'a> {
    inner: Streamed,
    len: u64,
    name: &'a str,
    read: u64,
    /// The download's own failure, as Zephyr's (the upload only says its
    /// body's reader failed).
    failure: Option<Error>,
}

impl<'a> Exact<'a> {
    fn new(inner: Streamed, len: u64, name: &'a str) -> Self {
        Exact {
            inner,
            len,
            name,
            read: 0,
            failure: None,
        }
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            let failure = self.inner.read_error(e);
            let text = failure.to_string();
            self.failure = Some(failure);
            io::Error::other(text)
        })?;
        self.read += n as u64;
        let early = n == 0 && !buf.is_empty() && self.read < self.len;
        if early || self.read > self.len {
            return Err(io::Error::other(format!(
                "the download of {} gave {} bytes where {} were expected",
                self.name, self.read, self.len
            )));
        }
        Ok(n)
    }
}

/// A content type from a file name's extension, for a download that named none.
fn content_type_of(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sources_in_rich_text() {
        let html = r#"See <IMG alt="x" SRC="https://cdn.example/a.png"> and <img src='b.gif'/><img alt=1>"#;
        assert_eq!(
            image_sources(html),
            vec!["https://cdn.example/a.png", "b.gif"]
        );
        assert!(image_sources("no images <i>here</i>").is_empty());
        let odd = r#"<img data-src="lazy.png" src = 'r&amp;d.png?a=1&#38;b=&#x32;' alt="a > b"><imgx src="no.png"><img alt="x>y" src=bare.png/>"#;
        assert_eq!(image_sources(odd), vec!["r&d.png?a=1&b=2", "bare.png/"]);
        assert_eq!(
            decode_entities("a &unknown; &amp b &lt;"),
            "a &unknown; &amp b <"
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type_of("shot.PNG"), "image/png");
        assert_eq!(content_type_of("trace"), "application/octet-stream");
        assert_eq!(content_type_of("run.log"), "text/plain");
    }
}
