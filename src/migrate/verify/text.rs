//! Text as compared and as shown in a difference.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How much of a value a difference shows.
const SHOWN: usize = 60;
/// How much text before the first differing character an excerpt keeps.
const CONTEXT: usize = 20;

/// Text as compared. qTest stores rich text and may rewrite line breaks
/// (`<br/>`, `<br />`, CRLF) or surrounding blanks; any other change counts.
pub(super) fn norm(text: &str) -> String {
    let text = text.trim().replace("\r\n", "\n");
    if !text.contains("<br") && !text.contains("<BR") {
        return text;
    }
    let mut out = text;
    for variant in ["<br />", "<br/>", "<BR />", "<BR/>", "<BR>"] {
        out = out.replace(variant, "<br>");
    }
    out
}

/// A value quoted and cut to a readable length.
pub(super) fn quote(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    cut(&chars, 0)
}

/// Two different texts, each quoted around the first character where they
/// differ, so a long description shows the part that matters.
pub(super) fn excerpts(expected: &str, actual: &str) -> (String, String) {
    let (e, a): (Vec<char>, Vec<char>) = (expected.chars().collect(), actual.chars().collect());
    let first = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let start = first.saturating_sub(CONTEXT);
    (cut(&e, start), cut(&a, start))
}

fn cut(chars: &[char], start: usize) -> String {
    let start = start.min(chars.len());
    let end = chars.len().min(start + SHOWN);
    let head = if start > 0 { "…" } else { "" };
    let tail = if end < chars.len() { "…" } else { "" };
    let body: String = chars[start..end].iter().collect();
    format!("\"{head}{body}{tail}\"")
}

/// Seconds since the epoch of an RFC 3339 timestamp; also accepts the
/// `+0000` offsets some Java services write. `None` when unreadable.
pub(super) fn instant(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at.unix_timestamp());
    }
    // `…+0000` -> `…+00:00`
    let (head, offset) = text.split_at_checked(text.len().checked_sub(5)?)?;
    if !(offset.starts_with(['+', '-']) && offset[1..].bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let colon = format!("{head}{}:{}", &offset[..3], &offset[3..]);
    OffsetDateTime::parse(&colon, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// An instant as `yyyy-MM-ddTHH:mm:ssZ`.
pub(super) fn show_instant(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_line_breaks_and_blanks_only() {
        assert_eq!(norm("  a<br />b<BR>c\r\nd "), "a<br>b<br>c\nd");
        assert_eq!(norm("a  b"), "a  b");
    }

    #[test]
    fn excerpts_show_where_texts_differ() {
        assert_eq!(quote("short"), "\"short\"");
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("\"{}…\"", "x".repeat(60)));
        let (e, a) = excerpts(&format!("{long}-expected"), &format!("{long}-actual"));
        assert_eq!(e, format!("\"…{}-expected\"", "x".repeat(19)));
        assert_eq!(a, format!("\"…{}-actual\"", "x".repeat(19)));
        assert_eq!(excerpts("ä", "äb"), ("\"ä\"".into(), "\"äb\"".into()));
    }

    #[test]
    fn instants_in_several_spellings() {
        let at = instant("2018-05-20T13:15:13Z").unwrap();
        assert_eq!(instant("2018-05-20T15:15:13+02:00"), Some(at));
        assert_eq!(instant("2018-05-20T13:15:13.000+0000"), Some(at));
        assert_eq!(show_instant(at), "2018-05-20T13:15:13Z");
        for bad in ["", "soon", "2018-05-20", "+0000"] {
            assert_eq!(instant(bad), None, "{bad}");
        }
    }
}
