//! `GET /`: the operator's dashboard, one self-contained page (`index.html`: HTML,
//! CSS and JS in one file, compiled into the binary). The page holds no data: its
//! script polls `/v1/overview`, `/v1/monitoring` and `/v1/controller` with the API
//! key the operator types in (kept in `sessionStorage`), so the route is open.
//!
//! The `Content-Security-Policy` allows nothing from outside: no other origin for
//! anything, and only the page's own inline script and style, named by their
//! SHA-256 hashes (so an injected script or style would not run either).

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The page.
const PAGE: &str = include_str!("index.html");

/// The text between the first `<tag>` and its closing tag in `html` (empty if none).
fn inline_block<'a>(html: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    html.split_once(open.as_str())
        .and_then(|(_, rest)| rest.split_once(close.as_str()))
        .map_or("", |(inside, _)| inside)
}

/// Standard base64 with padding (what CSP hash sources use).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A CSP hash source for an inline block.
fn hash_source(block: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(block.as_bytes())))
}

/// The policy for `html`: its own inline script and style by hash, fetches to its
/// own origin, and nothing else (the icon is an empty `data:` URL, so the browser
/// asks for no `/favicon.ico`).
pub(crate) fn content_security_policy(html: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash_source(inline_block(html, "script")),
        hash_source(inline_block(html, "style")),
    )
}

/// `GET /`.
#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    summary = "The dashboard: one self-contained HTML page (open: it holds no data and asks for a key)",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
pub(crate) async fn page() -> Response {
    static POLICY: OnceLock<String> = OnceLock::new();
    let policy = POLICY.get_or_init(|| content_security_policy(PAGE));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, policy.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn the_policy_names_the_hash_of_the_inline_script_and_style() {
        let html = "<style>p{}</style><script>alert(1)</script>";
        let policy = content_security_policy(html);
        // sha256("alert(1)") and sha256("p{}"), base64.
        assert!(
            policy.contains("script-src 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"),
            "{policy}"
        );
        assert!(policy.contains("style-src 'sha256-"), "{policy}");
        assert!(policy.starts_with("default-src 'none'"));
    }

    #[test]
    fn the_page_has_one_inline_script_and_one_inline_style() {
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert_eq!(PAGE.matches("<style").count(), 1);
        assert!(!inline_block(PAGE, "script").is_empty());
        assert!(!inline_block(PAGE, "style").is_empty());
    }
}
