//! Writing a Zephyr value into a qTest field of some data type, and rendering
//! values that have no field as description text.

use serde_json::Value;

use crate::migrate::mapping::same_name;
use crate::qtest::Field;

/// What a qTest field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// One of the allowed values, or several for a multi-value field.
    Choice { multiple: bool },
    /// Free text (text box, text area, rich text, URL).
    Text,
    /// A number.
    Number,
    /// A date or date-time.
    Date,
    /// A qTest user: Jira account ids can't be mapped to those.
    User,
}

/// Classifies a field by the spec's `data_type` codes: 3 combo box, 8 check
/// box and 17 multi-select are choices (8 and 17 multi-value, whatever
/// `multiple` says), 4 and 9 dates, 5 users, 7 numbers; 1, 2, 6 and 12 are
/// text. A field with allowed values is a choice whatever its code; an unknown
/// code is treated as text, which qTest validates itself.
pub(crate) fn kind(field: &Field) -> FieldKind {
    if !field.allowed_values.is_empty() || matches!(field.data_type, Some(3 | 8 | 17)) {
        return FieldKind::Choice {
            multiple: field.is_multi_value(),
        };
    }
    match field.data_type {
        Some(4 | 9) => FieldKind::Date,
        Some(5) => FieldKind::User,
        Some(7) => FieldKind::Number,
        _ => FieldKind::Text,
    }
}

/// The value a field gets when Zephyr has none: its `default_value` (for a
/// choice field an allowed value's id, or its label), else the active allowed
/// value marked default. `Err` says why a default doesn't fit.
pub(crate) fn default_value(field: &Field) -> Result<Option<String>, String> {
    if let Some(default) = field
        .default_value
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        if let FieldKind::Choice { .. } = kind(field) {
            let by_id = active(field).find(|v| v.value == default.trim());
            if let Some(v) = by_id {
                return Ok(Some(match kind(field) {
                    FieldKind::Choice { multiple: true } => format!("[{}]", v.value),
                    _ => v.value.clone(),
                }));
            }
        }
        return format(field, &Value::String(default.to_owned()))
            .map_err(|why| format!("its default `{default}` doesn't fit: {why}"));
    }
    let marked = active(field).find(|v| v.is_default == Some(true));
    Ok(marked.map(|v| match kind(field) {
        FieldKind::Choice { multiple: true } => format!("[{}]", v.value),
        _ => v.value.clone(),
    }))
}

fn active(field: &Field) -> impl Iterator<Item = &crate::qtest::AllowedValue> {
    field
        .allowed_values
        .iter()
        .filter(|v| v.is_active != Some(false))
}

/// The property value for `value` in `field`: `Ok(None)` when there is
/// nothing to write (`null`, empty), `Err` with the reason when the value
/// does not fit the field.
pub(crate) fn format(field: &Field, value: &Value) -> Result<Option<String>, String> {
    if is_empty(value) {
        return Ok(None);
    }
    let out = match kind(field) {
        FieldKind::Choice { multiple } => choice(field, value, multiple)?,
        FieldKind::Text => display(value),
        FieldKind::Number => number(value)?,
        FieldKind::Date => value
            .as_str()
            .and_then(super::dates::date_field)
            .ok_or("not a yyyy-MM-dd date")?,
        FieldKind::User => return Err("Jira users can't be mapped to qTest users".into()),
    };
    Ok(Some(out))
}

/// Whether a value carries nothing: `null`, blank text, or only such items.
pub(crate) fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.iter().all(is_empty),
        _ => false,
    }
}

/// Matches labels without regard to case, among active values only. A
/// multi-value field's value is a JSON array of ids (`[1,2]`, the form qTest
/// documents for multi-value properties; GUESS: the spec only says "string").
fn choice(field: &Field, value: &Value, multiple: bool) -> Result<String, String> {
    let labels: Vec<String> = match value {
        Value::Array(items) => items.iter().filter(|v| !is_empty(v)).map(scalar).collect(),
        other => vec![scalar(other)],
    };
    if !multiple && labels.len() > 1 {
        return Err(format!("{} values for a single-choice field", labels.len()));
    }
    let mut ids = Vec::with_capacity(labels.len());
    for label in &labels {
        let found = active(field)
            .find(|v| same_name(&v.label, label))
            .ok_or_else(|| format!("no allowed value `{label}`"))?;
        ids.push(found.value.clone());
    }
    Ok(if multiple {
        format!("[{}]", ids.join(","))
    } else {
        ids.concat()
    })
}

fn number(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            Ok(s.trim().to_owned())
        }
        _ => Err("not a number".into()),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

/// A value as description text: strings as they are (Zephyr already uses
/// `<br>` for line breaks), lists joined with commas, objects as JSON.
pub(crate) fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(display)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(data_type: Option<i64>, multiple: bool, values: &[(&str, &str, bool)]) -> Field {
        serde_json::from_value(json!({
            "id": 1, "label": "F", "data_type": data_type, "multiple": multiple,
            "allowed_values": values.iter().map(|(v, l, active)|
                json!({"value": v, "label": l, "is_active": active})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn kinds_from_allowed_values_and_codes() {
        assert_eq!(
            kind(&field(Some(1), true, &[("1", "a", true)])),
            FieldKind::Choice { multiple: true }
        );
        assert_eq!(kind(&field(Some(1), false, &[])), FieldKind::Text);
        assert_eq!(kind(&field(None, false, &[])), FieldKind::Text);
        assert_eq!(kind(&field(Some(4), false, &[])), FieldKind::Date);
        assert_eq!(kind(&field(Some(5), false, &[])), FieldKind::User);
        assert_eq!(kind(&field(Some(7), false, &[])), FieldKind::Number);
        assert_eq!(kind(&field(Some(9), false, &[])), FieldKind::Date);
        assert_eq!(kind(&field(Some(6), false, &[])), FieldKind::Text);
        assert_eq!(kind(&field(Some(12), false, &[])), FieldKind::Text);
        // Check boxes and multi-selects hold several values even when `multiple` is left out.
        for code in [8, 17] {
            assert_eq!(
                kind(&field(Some(code), false, &[("1", "a", true)])),
                FieldKind::Choice { multiple: true },
                "{code}"
            );
        }
        assert_eq!(
            kind(&field(Some(3), false, &[])),
            FieldKind::Choice { multiple: false }
        );
    }

    #[test]
    fn defaults_by_default_value_then_the_marked_value() {
        let mut f = field(
            Some(3),
            false,
            &[("1", "Unit", true), ("2", "System", true)],
        );
        assert_eq!(default_value(&f), Ok(None));
        f.allowed_values[0].is_default = Some(true);
        assert_eq!(default_value(&f), Ok(Some("1".into())));
        f.default_value = Some("2".into());
        assert_eq!(default_value(&f), Ok(Some("2".into())));
        f.default_value = Some("system".into());
        assert_eq!(default_value(&f), Ok(Some("2".into())));
        f.default_value = Some("Nope".into());
        assert!(default_value(&f).unwrap_err().contains("Nope"));
        let mut multi = field(Some(17), true, &[("7", "Web", true)]);
        multi.default_value = Some("7".into());
        assert_eq!(default_value(&multi), Ok(Some("[7]".into())));
        let mut text = field(Some(1), false, &[]);
        text.default_value = Some("QA".into());
        assert_eq!(default_value(&text), Ok(Some("QA".into())));
        let mut number = field(Some(7), false, &[]);
        number.default_value = Some("many".into());
        assert!(default_value(&number).is_err());
    }

    #[test]
    fn choices_by_label_among_active_values() {
        let single = field(
            Some(3),
            false,
            &[("712", "High", true), ("9", "Old", false)],
        );
        assert_eq!(format(&single, &json!("high")), Ok(Some("712".into())));
        assert_eq!(format(&single, &json!(["High"])), Ok(Some("712".into())));
        assert!(format(&single, &json!("Old")).unwrap_err().contains("Old"));
        assert!(format(&single, &json!(["High", "High"])).is_err());
        let multi = field(Some(3), true, &[("1", "Perf", true), ("2", "Func", true)]);
        assert_eq!(
            format(&multi, &json!(["Perf", "func"])),
            Ok(Some("[1,2]".into()))
        );
        assert_eq!(format(&multi, &json!("Perf")), Ok(Some("[1]".into())));
        let numeric = field(Some(3), false, &[("5", "20", true)]);
        assert_eq!(format(&numeric, &json!(20)), Ok(Some("5".into())));
    }

    #[test]
    fn scalars_by_data_type() {
        let text = field(Some(1), false, &[]);
        assert_eq!(format(&text, &json!(20)), Ok(Some("20".into())));
        assert_eq!(format(&text, &json!(["a", "b"])), Ok(Some("a, b".into())));
        assert_eq!(format(&text, &json!(null)), Ok(None));
        assert_eq!(format(&text, &json!("  ")), Ok(None));
        assert_eq!(format(&text, &json!([])), Ok(None));
        let number = field(Some(7), false, &[]);
        assert_eq!(format(&number, &json!(1.5)), Ok(Some("1.5".into())));
        assert_eq!(format(&number, &json!(" 42 ")), Ok(Some("42".into())));
        assert!(format(&number, &json!("many")).is_err());
        assert!(format(&number, &json!(true)).is_err());
        let date = field(Some(4), false, &[]);
        assert_eq!(
            format(&date, &json!("2020-01-01")),
            Ok(Some("2020-01-01T00:00:00Z".into()))
        );
        assert!(format(&date, &json!("soon")).is_err());
        let checkbox = field(Some(8), true, &[("4", "Web", true), ("5", "iOS", true)]);
        assert_eq!(
            format(&checkbox, &json!(["web", "iOS"])),
            Ok(Some("[4,5]".into()))
        );
        assert!(format(&checkbox, &json!(true)).is_err());
        assert!(format(&field(Some(5), false, &[]), &json!("5b10")).is_err());
    }

    #[test]
    fn display_text() {
        assert_eq!(display(&json!("a<br>b")), "a<br>b");
        assert_eq!(display(&json!(["Perf", null, 2])), "Perf, 2");
        assert_eq!(display(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(display(&json!(false)), "false");
        assert_eq!(display(&json!(null)), "");
    }
}
