//! Reading and validating JSON request bodies; every problem is a 400 message.

use serde_json::{Map, Value};

use super::config::{Field, data_type};
use super::state::Property;

pub(crate) type Obj = Map<String, Value>;

/// The body as a JSON object.
pub(crate) fn object(body: &Value) -> Result<&Obj, String> {
    body.as_object()
        .ok_or_else(|| "Request body must be a JSON object".to_string())
}

/// A required non-empty string.
pub(crate) fn required_str(o: &Obj, key: &str) -> Result<String, String> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(format!("{key} is required")),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// An optional string; `null` and absent give "".
pub(crate) fn opt_str(o: &Obj, key: &str) -> Result<String, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// An optional id: a non-negative integer or a string of digits.
pub(crate) fn opt_id(o: &Obj, key: &str) -> Result<Option<u64>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => id_of(v)
            .map(Some)
            .ok_or_else(|| format!("{key} must be an id")),
    }
}

/// `{"id": n}` under `key`, required.
pub(crate) fn required_ref(o: &Obj, key: &str) -> Result<u64, String> {
    let inner = o
        .get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{key}.id is required"))?;
    opt_id(inner, "id")?.ok_or_else(|| format!("{key}.id is required"))
}

fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional array of objects.
pub(crate) fn opt_array<'a>(o: &'a Obj, key: &str) -> Result<Vec<&'a Obj>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_object()
                    .ok_or_else(|| format!("{key} must hold objects"))
            })
            .collect(),
        Some(_) => Err(format!("{key} must be an array")),
    }
}

/// A required date-time string.
pub(crate) fn required_date(o: &Obj, key: &str) -> Result<String, String> {
    let s = required_str(o, key)?;
    crate::mock::time::parse(&s)
        .map(|_| s.clone())
        .ok_or_else(|| format!("{key} must be a date-time, got '{s}'"))
}

/// Checks `properties` against the fields and fills in the defaults of optional fields left
/// out (the allowed value marked default, else the field's `default_value`). A required field
/// left out is refused, even when it has a default: the client must send it (but not a system
/// field the body's own keys set, such as `Name`).
pub(crate) fn properties(o: &Obj, fields: &[Field]) -> Result<Vec<Property>, String> {
    let mut out: Vec<Property> = Vec::new();
    for p in opt_array(o, "properties")? {
        let field_id = opt_id(p, "field_id")?.ok_or("properties[].field_id is required")?;
        let field = fields.iter().find(|f| f.id == field_id && f.active);
        let field =
            field.ok_or_else(|| format!("Field {field_id} does not exist or is inactive"))?;
        let value = match p.get("field_value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(format!(
                    "properties[].field_value of field {field_id} is required"
                ));
            }
        };
        check_value(field, &value)?;
        out.retain(|q| q.field_id != field_id);
        out.push(Property {
            field_id,
            field_value: value,
        });
    }
    for f in fields.iter().filter(|f| f.active) {
        if out.iter().any(|p| p.field_id == f.id) {
            continue;
        }
        if f.required && !is_body_field(f) {
            return Err(format!("Field '{}' is required", f.label));
        }
        let default = f.allowed_values.iter().find(|v| v.is_default);
        let default = default
            .map(|d| d.value.to_string())
            .or_else(|| f.default_value.clone());
        if let Some(value) = default {
            out.push(Property {
                field_id: f.id,
                field_value: value,
            });
        }
    }
    Ok(out)
}

/// Whether a system field takes its value from the create body's own keys (`name`, ...),
/// not from `properties`.
pub(crate) fn is_body_field(f: &Field) -> bool {
    f.system_field
        && super::config::BODY_FIELDS
            .iter()
            .any(|(label, _, _)| f.label == *label)
}

/// A value must fit its field's data type: allowed value ids for choice fields (a JSON array
/// of them, or one, for multi-value fields), a number, or a date-time.
fn check_value(field: &Field, value: &str) -> Result<(), String> {
    let unfit = |what: &str| {
        format!(
            "'{value}' is not {what} for field '{}' (data type {})",
            field.label, field.data_type
        )
    };
    if !field.allowed_values.is_empty() {
        let trimmed = value.trim();
        let ids: Vec<&str> = match trimmed.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some(_) if !field.multiple => return Err(unfit("a single allowed value")),
            Some(inner) => inner.split(',').map(str::trim).collect(),
            None => vec![trimmed],
        };
        let known = |id: &str| {
            id.parse::<u64>()
                .ok()
                .is_some_and(|v| field.allowed_values.iter().any(|a| a.value == v))
        };
        return match !ids.is_empty() && ids.iter().all(|id| known(id)) {
            true => Ok(()),
            false => Err(format!(
                "'{value}' is not an allowed value of field '{}'",
                field.label
            )),
        };
    }
    match field.data_type {
        data_type::NUMBER if value.trim().parse::<f64>().is_err() => Err(unfit("a number")),
        data_type::DATE | data_type::DATE_TIME if crate::mock::time::parse(value).is_none() => {
            Err(unfit("a date-time"))
        }
        _ => Ok(()),
    }
}

/// The display name of a property's value: the allowed value's label, or the value itself.
pub(crate) fn value_name(fields: &[Field], p: &Property) -> (String, String) {
    let field = fields.iter().find(|f| f.id == p.field_id);
    let label = field.map(|f| f.label.clone()).unwrap_or_default();
    let name = field
        .and_then(|f| {
            f.allowed_values
                .iter()
                .find(|a| a.value.to_string() == p.field_value)
        })
        .map_or_else(|| p.field_value.clone(), |a| a.label.clone());
    (label, name)
}
