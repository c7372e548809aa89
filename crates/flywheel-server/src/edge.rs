//! The edge of the API: what is checked before a handler runs, and the guarantee that
//! every error leaves as the JSON error.
//!
//! - [`guard`] answers 414 and 431 (as JSON) for a request target or headers over
//!   their limits, and turns any error response that is not JSON (axum's own
//!   rejections are plain text) into the JSON error with the same status.
//! - [`IdPath`] is a path id whose rejection (a bad percent-encoding) is the JSON error.
//! - [`query_pairs`] decodes a query string strictly: a bad percent-encoding, a
//!   non-UTF-8 value or a repeated parameter is a 400.
//!
//! hyper answers some malformed requests itself, before any of this runs, with an
//! empty body: a request target over 65,534 bytes (414), a head over hyper's buffer
//! (about 400 KiB) or with more than 100 headers (431), and an unparsable request
//! line or header (400).

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::error::{clip, error_body, json_response, ApiError};
use crate::routes::AppState;

/// How much of a non-JSON error body becomes the JSON error's message, in bytes.
const NET_MESSAGE_BYTES: usize = 1024;

/// Bytes the request head's headers take (names, values, `: ` and CRLF).
fn header_bytes(request: &Request) -> usize {
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Middleware: request target and header limits, and JSON for every error.
pub(crate) async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target > app.options.max_uri_bytes {
        return ApiError::UriTooLong {
            limit: app.options.max_uri_bytes,
        }
        .into_response();
    }
    if header_bytes(&request) > app.options.max_header_bytes {
        return ApiError::HeadersTooLarge {
            limit: app.options.max_header_bytes,
        }
        .into_response();
    }
    as_json_error(next.run(request).await).await
}

/// A code for an error status that was not produced by [`ApiError`].
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// An error response whose body is not JSON, rewritten as the JSON error.
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let limited = http_body_util::Limited::new(response.into_body(), NET_MESSAGE_BYTES * 4);
    let text = match limited.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        clip(&text, NET_MESSAGE_BYTES)
    };
    json_response(status, error_body(code_for(status), &message, &[], 0, None))
}

/// A path id (`/v1/items/{id}`); a bad percent-encoding is a 400 `invalid_id`.
pub(crate) struct IdPath(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(IdPath(id)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_id",
                format!("the id in the path is invalid: {}", rejection.body_text()),
            )),
        }
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component strictly.
fn decode(component: &str) -> Result<String, String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let byte = bytes
                    .get(i + 1)
                    .and_then(|&h| hex(h))
                    .zip(bytes.get(i + 2).and_then(|&l| hex(l)))
                    .map(|(h, l)| (h << 4) | l)
                    .ok_or_else(|| {
                        format!("`{}` has a bad percent-encoding", clip(component, 64))
                    })?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{}` is not UTF-8", clip(component, 64)))
}

/// The query's parameters, decoded strictly; a parameter given twice is an error.
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_parameter", message);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = decode(name).map_err(|e| invalid(format!("parameter name {e}")))?;
        let value = decode(value).map_err(|e| invalid(format!("parameter `{name}`: {e}")))?;
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(invalid(format!(
                "parameter `{}` is given more than once",
                clip(&name, 64)
            )));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_strictly() {
        let pairs = query_pairs(Some("a=b%20c&d=e+f&g=%C3%A9&h")).unwrap();
        assert_eq!(
            pairs,
            [("a", "b c"), ("d", "e f"), ("g", "é"), ("h", "")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        for bad in ["a=%", "a=%G0", "a=%FF", "a=1&a=2", "%ZZ=1"] {
            assert!(query_pairs(Some(bad)).is_err(), "{bad}");
        }
        assert!(query_pairs(None).unwrap().is_empty());
    }
}
