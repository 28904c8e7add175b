//! Description text: where Zephyr data without a qTest field ends up, so
//! nothing is dropped silently. qTest descriptions are HTML, and Zephyr
//! already writes `<br>` for line breaks, so values are copied as they are.

/// A line break in qTest rich text.
pub(crate) const BR: &str = "<br>";

/// The heading of the block of Zephyr values that have no qTest field.
pub(crate) const HEADING: &str = "Zephyr fields:";

/// Collects `name: value` lines for the description.
#[derive(Debug, Default)]
pub(crate) struct Extras(Vec<String>);

impl Extras {
    /// Adds a value that has no qTest field. Empty values add nothing.
    pub(crate) fn add(&mut self, name: &str, value: &str) {
        if !value.trim().is_empty() {
            self.0.push(format!("{name}: {value}"));
        }
    }

    /// Adds a value that a qTest field exists for but can't hold, with why.
    pub(crate) fn add_unfit(&mut self, name: &str, value: &str, field: &str, why: &str) {
        self.0.push(format!(
            "{name}: {value} (not set in qTest field `{field}`: {why})"
        ));
    }

    /// The block, `None` when there is nothing to say.
    pub(crate) fn block(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        Some(format!("{HEADING}{BR}{}", self.0.join(BR)))
    }
}

/// Joins the non-blank parts with `sep`.
pub(crate) fn join<'a>(sep: &str, parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    parts
        .into_iter()
        .flatten()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join(sep)
}

/// Joins paragraphs (objective, script, extras) with an empty line between.
pub(crate) fn paragraphs<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    join("<br><br>", parts)
}

/// A value short enough for a message: its first 60 characters.
pub(crate) fn excerpt(value: &str) -> String {
    const MAX: usize = 60;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_and_paragraphs() {
        let mut extras = Extras::default();
        assert_eq!(extras.block(), None);
        extras.add("Owner", "5b10");
        extras.add("Empty", " ");
        extras.add_unfit("Category", "Perf", "Category", "no allowed value `Perf`");
        let block = extras.block().unwrap();
        assert_eq!(
            block,
            "Zephyr fields:<br>Owner: 5b10<br>Category: Perf (not set in qTest field \
             `Category`: no allowed value `Perf`)"
        );
        assert_eq!(
            paragraphs([Some("Objective"), None, Some(" "), Some("x")]),
            "Objective<br><br>x"
        );
        assert_eq!(join(BR, [None, Some("a")]), "a");
    }
}
