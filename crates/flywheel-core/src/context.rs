//! The request's context: where and when a list is asked for (device, page, hour of
//! day). It is passed with a recommendation request, logged on the impression and
//! turned into ranking features, so training recomputes exactly what serving saw.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::time::Timestamp;

/// The longest `device` or `page` value, in bytes.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 64;

/// Where and when a recommendation list was asked for. Every field is optional: an
/// empty context is what older clients (and older logs) have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestContext {
    /// The client's device, e.g. `mobile`, `desktop`, `tablet` (free text, bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The page the list is shown on, e.g. `home`, `item`, `cart` (free text, bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// The hour of day (0–23) the client gave; unset, the hour (UTC) of the request
    /// time is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<u8>,
}

impl RequestContext {
    /// A validated context: `device` and `page` non-empty, at most
    /// [`MAX_CONTEXT_VALUE_BYTES`] bytes, without control characters; `hour` in 0..=23.
    /// Each error names its field.
    pub fn new(device: Option<&str>, page: Option<&str>, hour: Option<i64>) -> Result<Self> {
        let hour = hour
            .map(|h| {
                u8::try_from(h)
                    .ok()
                    .filter(|h| *h < 24)
                    .ok_or_else(|| CoreError::InvalidValue {
                        field: "hour".into(),
                        reason: format!("must be an integer from 0 to 23, got {h}"),
                    })
            })
            .transpose()?;
        Ok(RequestContext {
            device: device.map(|d| checked_value("device", d)).transpose()?,
            page: page.map(|p| checked_value("page", p)).transpose()?,
            hour,
        })
    }

    /// Whether nothing was given.
    pub fn is_empty(&self) -> bool {
        self.device.is_none() && self.page.is_none() && self.hour.is_none()
    }

    /// The hour of day the features use: the given one, else the UTC hour of `now`.
    pub fn hour_at(&self, now: Timestamp) -> u8 {
        self.hour.unwrap_or_else(|| utc_hour(now))
    }

    /// The context of an event's free-form `context` map (`device`, `page`; the hour
    /// comes from the event's time). Values that a request could not carry are dropped.
    pub fn from_event_context(context: &std::collections::BTreeMap<String, String>) -> Self {
        let value = |key: &str| context.get(key).and_then(|v| checked_value(key, v).ok());
        RequestContext {
            device: value("device"),
            page: value("page"),
            hour: None,
        }
    }
}

/// The UTC hour of day of a moment, 0..=23.
pub fn utc_hour(now: Timestamp) -> u8 {
    let within_day = now.millis().rem_euclid(Timestamp::DAY);
    (within_day / Timestamp::HOUR) as u8
}

fn checked_value(field: &str, value: &str) -> Result<String> {
    let invalid = |reason: String| CoreError::InvalidValue {
        field: field.into(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if value.len() > MAX_CONTEXT_VALUE_BYTES {
        return Err(invalid(format!(
            "must be at most {MAX_CONTEXT_VALUE_BYTES} bytes, got {}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_are_kept_and_bad_ones_name_their_field() {
        let ok = RequestContext::new(Some("mobile"), Some("home"), Some(23)).unwrap();
        assert_eq!(ok.device.as_deref(), Some("mobile"));
        assert_eq!(ok.hour, Some(23));
        for (device, page, hour, field) in [
            (Some(""), None, None, "device"),
            (None, Some("a\nb"), None, "page"),
            (None, None, Some(24), "hour"),
            (None, None, Some(-1), "hour"),
        ] {
            let err = RequestContext::new(device, page, hour).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let long = "x".repeat(MAX_CONTEXT_VALUE_BYTES + 1);
        let err = RequestContext::new(Some(&long), None, None).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn the_hour_is_the_given_one_or_the_utc_hour_of_the_request() {
        let now = Timestamp::from_millis(3 * Timestamp::DAY + 5 * Timestamp::HOUR + 59_000);
        assert_eq!(RequestContext::default().hour_at(now), 5);
        let given = RequestContext::new(None, None, Some(20)).unwrap();
        assert_eq!(given.hour_at(now), 20);
        assert_eq!(utc_hour(Timestamp::from_millis(-1)), 23);
    }

    #[test]
    fn an_old_impression_context_decodes_as_empty() {
        let empty: RequestContext = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
    }
}
