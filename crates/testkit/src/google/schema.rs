//! Request bodies checked against the schemas of Google's published discovery documents (an extract of them is in
//! `data/google/*.schemas.json`), the way the services' proto3 JSON parser checks them: an unknown field name is an
//! error, not ignored; int64 may come as a JSON string or number, doubles as numbers or "NaN"/"Infinity", enums by
//! name or number, timestamps in RFC 3339; `null` means the field's default; the proto field name (`metric_kind`)
//! is accepted besides the JSON name (`metricKind`). The errors read like Google's front end's.

use serde_json::{Map, Value};

/// One bad field, as a `google.rpc.BadRequest` field violation.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub field: String,
    pub description: String,
}

/// The schemas of one discovery document (or of the extract of it).
pub(crate) struct Schemas {
    schemas: Map<String, Value>,
}

impl Schemas {
    pub fn load(json: &str) -> Schemas {
        let mut doc: Value = serde_json::from_str(json).expect("the committed schema extract is JSON");
        let Some(Value::Object(schemas)) = doc.get_mut("schemas").map(Value::take) else {
            panic!("the schema extract has no \"schemas\" object")
        };
        Schemas { schemas }
    }

    /// `body` checked against the schema named `root`, and returned normalised: JSON names, no nulls, enums by
    /// name, int64 as strings, int32 as numbers. Every violation is reported, not only the first.
    pub fn check(&self, root: &str, body: Value) -> Result<Value, Vec<Violation>> {
        let mut out = Vec::new();
        let schema = Value::String(root.to_string());
        let mut path = String::new();
        let v = self.walk(&serde_json::json!({ "$ref": schema }), body, &mut path, &mut out);
        if out.is_empty() { Ok(v.unwrap_or(Value::Object(Map::new()))) } else { Err(out) }
    }

    fn walk(&self, schema: &Value, v: Value, path: &mut String, out: &mut Vec<Violation>) -> Option<Value> {
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            let target = self.schemas.get(name).unwrap_or_else(|| panic!("schema {name} missing from the extract"));
            return self.walk(target, v, path, out);
        }
        let ty = schema.get("type").and_then(Value::as_str).unwrap_or("any");
        let format = schema.get("format").and_then(Value::as_str);
        match ty {
            "any" => Some(v),
            "object" => {
                let Value::Object(fields) = v else {
                    out.push(bad_value(path, "TYPE_MESSAGE", &v));
                    return None;
                };
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    let mut norm = Map::new();
                    for (key, value) in fields {
                        if value.is_null() {
                            continue;
                        }
                        let name = if props.contains_key(&key) {
                            key.clone()
                        } else if key.contains('_') && props.contains_key(&lower_camel(&key)) {
                            lower_camel(&key)
                        } else {
                            out.push(Violation {
                                field: path.clone(),
                                description: if path.is_empty() {
                                    format!("Invalid JSON payload received. Unknown name {key:?}: Cannot find field.")
                                } else {
                                    format!(
                                        "Invalid JSON payload received. Unknown name {key:?} at '{path}': Cannot find field."
                                    )
                                },
                            });
                            continue;
                        };
                        let len = path.len();
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(&snake(&name));
                        if let Some(v) = self.walk(&props[&name], value, path, out) {
                            norm.insert(name, v);
                        }
                        path.truncate(len);
                    }
                    Some(Value::Object(norm))
                } else if let Some(item) = schema.get("additionalProperties") {
                    let mut norm = Map::new();
                    for (key, value) in fields {
                        let len = path.len();
                        path.push_str(&format!("[{key:?}]"));
                        if let Some(v) = self.walk(item, value, path, out) {
                            norm.insert(key, v);
                        }
                        path.truncate(len);
                    }
                    Some(Value::Object(norm))
                } else {
                    Some(Value::Object(fields))
                }
            }
            "array" => {
                let Value::Array(items) = v else {
                    out.push(bad_value(path, "TYPE_MESSAGE", &v));
                    return None;
                };
                let item = &schema["items"];
                let mut norm = Vec::with_capacity(items.len());
                for (i, value) in items.into_iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if let Some(v) = self.walk(item, value, path, out) {
                        norm.push(v);
                    }
                    path.truncate(len);
                }
                Some(Value::Array(norm))
            }
            "boolean" => match v {
                Value::Bool(_) => Some(v),
                _ => {
                    out.push(bad_value(path, "TYPE_BOOL", &v));
                    None
                }
            },
            "integer" => match integer(&v).filter(|n| match format {
                Some("uint32") => (0..=u32::MAX as i128).contains(n),
                _ => (i32::MIN as i128..=i32::MAX as i128).contains(n),
            }) {
                Some(n) => Some(Value::from(n as i64)),
                None => {
                    out.push(bad_value(path, if format == Some("uint32") { "TYPE_UINT32" } else { "TYPE_INT32" }, &v));
                    None
                }
            },
            "number" => {
                let ok = match &v {
                    Value::Number(_) => true,
                    Value::String(s) => {
                        matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") || s.parse::<f64>().is_ok()
                    }
                    _ => false,
                };
                if ok {
                    Some(v)
                } else {
                    out.push(bad_value(path, if format == Some("float") { "TYPE_FLOAT" } else { "TYPE_DOUBLE" }, &v));
                    None
                }
            }
            "string" => {
                if let Some(values) = schema.get("enum").and_then(Value::as_array) {
                    let name = match &v {
                        Value::String(s) if values.iter().any(|e| e == s) => Some(s.clone()),
                        Value::Number(_) => integer(&v).and_then(|n| enum_by_number(values, n)),
                        _ => None,
                    };
                    if name.is_none() {
                        out.push(bad_value(path, "TYPE_ENUM", &v));
                    }
                    return name.map(Value::String);
                }
                match format {
                    Some("int64") | Some("uint64") => {
                        let ok = integer(&v).filter(|n| match format {
                            Some("uint64") => (0..=u64::MAX as i128).contains(n),
                            _ => (i64::MIN as i128..=i64::MAX as i128).contains(n),
                        });
                        match ok {
                            Some(n) => Some(Value::String(n.to_string())),
                            None => {
                                let t = if format == Some("int64") { "TYPE_INT64" } else { "TYPE_UINT64" };
                                out.push(bad_value(path, t, &v));
                                None
                            }
                        }
                    }
                    Some("google-datetime") => match v.as_str().map(chrono::DateTime::parse_from_rfc3339) {
                        Some(Ok(_)) => Some(v),
                        _ => {
                            out.push(bad_value(path, "type.googleapis.com/google.protobuf.Timestamp", &v));
                            None
                        }
                    },
                    Some("google-duration") => {
                        let ok = v
                            .as_str()
                            .and_then(|s| s.strip_suffix('s'))
                            .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok_and(f64::is_finite));
                        if ok {
                            Some(v)
                        } else {
                            out.push(bad_value(path, "type.googleapis.com/google.protobuf.Duration", &v));
                            None
                        }
                    }
                    _ => match v {
                        Value::String(_) => Some(v),
                        _ => {
                            out.push(bad_value(path, "TYPE_STRING", &v));
                            None
                        }
                    },
                }
            }
            other => panic!("schema type {other} is not handled"),
        }
    }
}

/// A whole number given as a JSON number or a decimal string, as proto3 JSON allows for every integer type.
fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e19).map(|f| f as i128)),
        Value::String(s) => s.parse::<i128>().ok(),
        _ => None,
    }
}

/// An enum value given by number. Discovery documents list the names without their numbers; they are in number
/// order except for `LogSeverity` (0, 100, ..., 800) and `LaunchStage`, whose numbers are known here.
fn enum_by_number(values: &[Value], n: i128) -> Option<String> {
    let index = match values.first().and_then(Value::as_str) {
        Some("DEFAULT") if n % 100 == 0 => n / 100,
        Some("LAUNCH_STAGE_UNSPECIFIED") => match n {
            0 => 0,
            6 => 1,
            7 => 2,
            1..=5 => n + 2,
            _ => return None,
        },
        Some("DEFAULT") => return None,
        _ => n,
    };
    usize::try_from(index).ok().and_then(|i| values.get(i)).and_then(Value::as_str).map(str::to_string)
}

fn bad_value(path: &str, ty: &str, v: &Value) -> Violation {
    Violation { field: path.to_string(), description: format!("Invalid value at '{path}' ({ty}), {v}") }
}

/// `metric_kind` -> `metricKind`.
pub(crate) fn lower_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `metricKind` -> `metric_kind`: Google's errors name fields by their proto names.
pub(crate) fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
