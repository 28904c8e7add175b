//! The query language of `POST /search`: `=`, `~` (contains) and `!~` on Name, Id and field
//! labels, joined by AND. Comparisons ignore case.

use super::config::{Field, QtestConfig};
use super::state::{Cycle, Run, TestCase};

/// How a condition compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Contains,
    NotContains,
}

/// One `field op value` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub field: String,
    pub op: Op,
    pub value: String,
}

/// Parses a query such as `'Zephyr Key' = 'PROJ-T1' AND Name ~ pump`.
pub(crate) fn parse(query: &str) -> Result<Vec<Cond>, String> {
    let tokens = tokenize(query)?;
    let mut conds = Vec::new();
    let mut rest = tokens.as_slice();
    loop {
        let [Tok::Word(field), Tok::Op(op), Tok::Word(value), tail @ ..] = rest else {
            return Err(format!("Invalid query: {query}"));
        };
        conds.push(Cond {
            field: field.clone(),
            op: *op,
            value: value.clone(),
        });
        match tail {
            [] => return Ok(conds),
            [Tok::Word(and), more @ ..] if and.eq_ignore_ascii_case("and") => rest = more,
            _ => return Err(format!("Invalid query (only AND is supported): {query}")),
        }
    }
}

#[derive(Debug)]
enum Tok {
    Word(String),
    Op(Op),
}

fn tokenize(query: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            c if c.is_whitespace() => i += 1,
            '=' => (out.push(Tok::Op(Op::Eq)), i += 1).1,
            '~' => (out.push(Tok::Op(Op::Contains)), i += 1).1,
            '!' if chars.get(i + 1) == Some(&'~') => (out.push(Tok::Op(Op::NotContains)), i += 2).1,
            '\'' | '"' => {
                let quote = chars[i];
                let end = (i + 1..chars.len())
                    .find(|&j| chars[j] == quote)
                    .ok_or("Unterminated quote in query")?;
                out.push(Tok::Word(chars[i + 1..end].iter().collect()));
                i = end + 1;
            }
            _ => {
                let end = (i..chars.len())
                    .find(|&j| chars[j].is_whitespace() || "=~!'\"".contains(chars[j]));
                let end = end.unwrap_or(chars.len());
                out.push(Tok::Word(chars[i..end].iter().collect()));
                i = end.max(i + 1);
            }
        }
    }
    Ok(out)
}

/// Checks that every condition names a field of this object type.
pub(crate) fn check_fields(conds: &[Cond], fields: &[Field]) -> Result<(), String> {
    let known = |f: &str| {
        ["name", "id"].contains(&f.to_ascii_lowercase().as_str()) || find(fields, f).is_some()
    };
    match conds.iter().find(|c| !known(&c.field)) {
        Some(c) => Err(format!("Unknown field '{}'", c.field)),
        None => Ok(()),
    }
}

fn find<'a>(fields: &'a [Field], label: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.label.eq_ignore_ascii_case(label))
}

fn compare(op: Op, actual: &str, wanted: &str) -> bool {
    let (a, w) = (actual.to_lowercase(), wanted.to_lowercase());
    match op {
        Op::Eq => a == w,
        Op::Contains => a.contains(&w),
        Op::NotContains => !a.contains(&w),
    }
}

/// The values a field has on an object: for a choice field both the raw id and its label.
fn field_values(field: &Field, raw: Option<&str>) -> Vec<String> {
    let Some(raw) = raw else {
        return vec![String::new()];
    };
    let label = field
        .allowed_values
        .iter()
        .find(|a| a.value.to_string() == raw)
        .map(|a| a.label.clone());
    std::iter::once(raw.to_string()).chain(label).collect()
}

fn matches(
    c: &Cond,
    name: &str,
    id: u64,
    pid: &str,
    field: impl Fn(&str) -> Option<Vec<String>>,
) -> bool {
    let any = |vals: &[String]| match c.op {
        Op::NotContains => vals.iter().all(|v| compare(c.op, v, &c.value)),
        _ => vals.iter().any(|v| compare(c.op, v, &c.value)),
    };
    match c.field.to_ascii_lowercase().as_str() {
        "name" => compare(c.op, name, &c.value),
        "id" => any(&[id.to_string(), pid.to_string()]),
        _ => field(&c.field).is_some_and(|vals| any(&vals)),
    }
}

/// Whether a test case meets every condition.
pub(crate) fn case_matches(conds: &[Cond], cfg: &QtestConfig, c: &TestCase) -> bool {
    conds.iter().all(|cond| {
        matches(cond, &c.name, c.id, &c.pid, |label| {
            find(&cfg.case_fields, label).map(|f| field_values(f, c.property(f.id)))
        })
    })
}

/// Whether a test cycle meets every condition (Name and Id only: cycles have no fields here).
pub(crate) fn cycle_matches(conds: &[Cond], c: &Cycle) -> bool {
    conds
        .iter()
        .all(|cond| matches(cond, &c.name, c.id, &c.pid, |_| None))
}

/// Whether a test run meets every condition.
pub(crate) fn run_matches(conds: &[Cond], cfg: &QtestConfig, r: &Run) -> bool {
    let status = r
        .status_id
        .unwrap_or_else(|| cfg.default_status().id)
        .to_string();
    conds.iter().all(|cond| {
        matches(cond, &r.name, r.id, &r.pid, |label| {
            find(&cfg.run_fields, label)
                .map(|f| field_values(f, (f.label == "Status").then_some(status.as_str())))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_names_operators_and_and() {
        let q = parse("'Zephyr Key' = 'PROJ-T1' and Name ~ pump AND Id !~ \"TC-9\"").unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(
            (q[0].field.as_str(), q[0].op, q[0].value.as_str()),
            ("Zephyr Key", Op::Eq, "PROJ-T1")
        );
        assert_eq!((q[1].op, q[2].op), (Op::Contains, Op::NotContains));
        for bad in ["", "Name =", "Name = a OR Id = 1", "'open = x", "= x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
