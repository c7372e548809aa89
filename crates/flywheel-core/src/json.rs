//! A small validating reader over a JSON object: every accessor names the field in
//! its error, and unknown fields are rejected.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::error::{CoreError, Result};
use crate::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::time::Timestamp;

/// The longest piece of client text an error message quotes, in bytes.
const QUOTED_BYTES: usize = 64;

/// Client text to quote in an error message, clipped (on a character boundary) so
/// that an error never grows with the input.
pub(crate) fn quoted(text: &str) -> String {
    if text.len() <= QUOTED_BYTES {
        return text.to_string();
    }
    let mut end = QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The error of a string field longer than its limit.
fn too_long(field: String, len: usize, max: usize) -> CoreError {
    CoreError::InvalidValue {
        field,
        reason: format!("must be at most {max} bytes, got {len}"),
    }
}

/// A short English name of a JSON value's type, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads typed fields out of one JSON object.
pub(crate) struct ObjectReader<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> ObjectReader<'a> {
    /// Checks that `value` is an object whose fields are all in `allowed`.
    pub(crate) fn new(value: &'a Value, allowed: &[&str], prefix: &'a str) -> Result<Self> {
        let map = value.as_object().ok_or(CoreError::NotAnObject {
            found: kind_of(value),
        })?;
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(CoreError::UnknownField {
                field: format!("{prefix}{}", quoted(unknown)),
                allowed: allowed.join(", "),
            });
        }
        Ok(Self { map, prefix })
    }

    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn wrong(&self, field: &str, expected: &'static str, found: &Value) -> CoreError {
        CoreError::WrongType {
            field: self.name(field),
            expected,
            found: kind_of(found),
        }
    }

    pub(crate) fn required<T>(
        &self,
        field: &str,
        read: impl Fn(&Self, &str) -> Result<Option<T>>,
    ) -> Result<T> {
        read(self, field)?.ok_or_else(|| CoreError::MissingField {
            field: self.name(field),
        })
    }

    pub(crate) fn string(&self, field: &str) -> Result<Option<String>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(field, "a string", other)),
        }
    }

    /// A string or a number (ids are sometimes numeric in exported data).
    pub(crate) fn id_text(&self, field: &str) -> Result<Option<String>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            Some(other) => Err(self.wrong(field, "a string", other)),
        }
    }

    pub(crate) fn number(&self, field: &str) -> Result<Option<f64>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.invalid(field, "must be a finite number")),
            },
            Some(other) => Err(self.wrong(field, "a number", other)),
        }
    }

    pub(crate) fn unsigned(&self, field: &str) -> Result<Option<u32>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.invalid(field, "must be a non-negative integer")),
            Some(other) => Err(self.wrong(field, "a non-negative integer", other)),
        }
    }

    pub(crate) fn boolean(&self, field: &str) -> Result<Option<bool>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong(field, "a boolean", other)),
        }
    }

    pub(crate) fn timestamp(&self, field: &str) -> Result<Option<Timestamp>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() > QUOTED_BYTES => {
                Err(self.invalid(field, "is too long to be an RFC 3339 time"))
            }
            Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
                .map(Some)
                .map_err(|reason| self.invalid(field, &reason)),
            Some(Value::Number(n)) => n
                .as_f64()
                .and_then(Timestamp::from_secs_f64)
                .map(Some)
                .ok_or_else(|| {
                    self.invalid(
                        field,
                        "as a number it must be seconds since 1970, before 2200",
                    )
                }),
            Some(other) => {
                Err(self.wrong(field, "an RFC 3339 string or seconds since 1970", other))
            }
        }
    }

    /// A string of at most `max` bytes.
    pub(crate) fn bounded_string(&self, field: &str, max: usize) -> Result<Option<String>> {
        let text = self.string(field)?;
        match &text {
            Some(s) if s.len() > max => Err(too_long(self.name(field), s.len(), max)),
            _ => Ok(text),
        }
    }

    /// An array of at most `max_items` strings of at most `max_bytes` each.
    pub(crate) fn string_list(
        &self,
        field: &str,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<String>> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(values)) => {
                self.check_count(field, values.len(), max_items)?;
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) if s.len() > max_bytes => Err(too_long(
                            format!("{}[{i}]", self.name(field)),
                            s.len(),
                            max_bytes,
                        )),
                        Value::String(s) => Ok(s.clone()),
                        other => Err(CoreError::WrongType {
                            field: format!("{}[{i}]", self.name(field)),
                            expected: "a string",
                            found: kind_of(other),
                        }),
                    })
                    .collect()
            }
            Some(other) => Err(self.wrong(field, "an array of strings", other)),
        }
    }

    /// An array of at most `max_len` numbers, each stored as an `f32`: a number JSON
    /// can carry but an `f32` cannot (beyond ±3.4e38) is refused, never stored as
    /// infinity.
    pub(crate) fn float_list(&self, field: &str, max_len: usize) -> Result<Option<Vec<f32>>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(values)) => {
                self.check_count(field, values.len(), max_len)?;
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let name = || format!("{}[{i}]", self.name(field));
                        match v.as_f64() {
                            Some(x) if (x as f32).is_finite() => Ok(x as f32),
                            Some(_) => Err(CoreError::InvalidValue {
                                field: name(),
                                reason: format!(
                                    "must fit a 32-bit float (at most {:e} in magnitude)",
                                    f32::MAX
                                ),
                            }),
                            None => Err(CoreError::WrongType {
                                field: name(),
                                expected: "a finite number",
                                found: kind_of(v),
                            }),
                        }
                    })
                    .collect::<Result<Vec<f32>>>()
                    .map(Some)
            }
            Some(other) => Err(self.wrong(field, "an array of numbers", other)),
        }
    }

    /// An object of at most `max_entries` scalar attributes (strings, numbers,
    /// booleans); keys and string values are bounded by [`MAX_KEY_BYTES`] and
    /// [`MAX_VALUE_BYTES`].
    pub(crate) fn attributes(
        &self,
        field: &str,
        max_entries: usize,
    ) -> Result<BTreeMap<String, Value>> {
        match self.get(field) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => {
                self.check_count(field, map.len(), max_entries)?;
                for (key, value) in map {
                    self.check_key(field, key)?;
                    let name = || format!("{}.{key}", self.name(field));
                    match value {
                        Value::Array(_) | Value::Object(_) => {
                            return Err(CoreError::WrongType {
                                field: name(),
                                expected: "a string, number, boolean or null",
                                found: kind_of(value),
                            })
                        }
                        Value::String(s) if s.len() > MAX_VALUE_BYTES => {
                            return Err(too_long(name(), s.len(), MAX_VALUE_BYTES))
                        }
                        _ => {}
                    }
                }
                Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            Some(other) => Err(self.wrong(field, "an object", other)),
        }
    }

    /// An object of at most `max_entries` string values; keys and values are bounded
    /// by [`MAX_KEY_BYTES`] and [`MAX_VALUE_BYTES`].
    pub(crate) fn string_map(
        &self,
        field: &str,
        max_entries: usize,
    ) -> Result<BTreeMap<String, String>> {
        match self.get(field) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => {
                self.check_count(field, map.len(), max_entries)?;
                map.iter()
                    .map(|(k, v)| {
                        self.check_key(field, k)?;
                        match v {
                            Value::String(s) if s.len() > MAX_VALUE_BYTES => Err(too_long(
                                format!("{}.{k}", self.name(field)),
                                s.len(),
                                MAX_VALUE_BYTES,
                            )),
                            Value::String(s) => Ok((k.clone(), s.clone())),
                            other => Err(CoreError::WrongType {
                                field: format!("{}.{k}", self.name(field)),
                                expected: "a string",
                                found: kind_of(other),
                            }),
                        }
                    })
                    .collect()
            }
            Some(other) => Err(self.wrong(field, "an object of strings", other)),
        }
    }

    fn check_count(&self, field: &str, count: usize, max: usize) -> Result<()> {
        if count > max {
            return Err(self.invalid(
                field,
                &format!("must hold at most {max} entries, got {count}"),
            ));
        }
        Ok(())
    }

    /// A key too long is reported on the object (the key itself is not echoed).
    fn check_key(&self, field: &str, key: &str) -> Result<()> {
        if key.len() > MAX_KEY_BYTES {
            return Err(self.invalid(
                field,
                &format!(
                    "keys must be at most {MAX_KEY_BYTES} bytes, got one of {}",
                    key.len()
                ),
            ));
        }
        Ok(())
    }

    /// The `id` of a body sent to `PUT /…/:id`: taken from the path when the body has
    /// none, and required to match it when it has one.
    pub(crate) fn id_with_path(&self, id_from_path: Option<&str>) -> Result<String> {
        match (self.id_text("id")?, id_from_path) {
            (Some(body), Some(path)) if body != path => Err(self.invalid(
                "id",
                &format!(
                    "`{}` differs from the id in the path `{}`",
                    quoted(&body),
                    quoted(path)
                ),
            )),
            (Some(body), _) => Ok(body),
            (None, Some(path)) => Ok(path.to_string()),
            (None, None) => self.required("id", ObjectReader::id_text),
        }
    }

    /// The field's JSON value as it is (absent or null: `None`), for nested readers.
    pub(crate) fn raw(&self, field: &str) -> Option<&'a Value> {
        self.get(field)
    }

    pub(crate) fn invalid(&self, field: &str, reason: &str) -> CoreError {
        CoreError::InvalidValue {
            field: self.name(field),
            reason: reason.to_string(),
        }
    }
}
