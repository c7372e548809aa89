//! Size limits of the free-form fields, enforced by the `from_json` validators with
//! an error naming the field. They keep one record (and so one request, one log
//! record and one state entry) small whatever a client sends.

pub use crate::ids::MAX_ID_LEN;

/// The longest category path, in bytes.
pub const MAX_CATEGORY_BYTES: usize = 256;
/// The longest item title, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// The longest item description (`text`), in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The most tags an item may have.
pub const MAX_TAGS: usize = 64;
/// The longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 128;
/// The most numbers in an item's `embedding`.
pub const MAX_EMBEDDING_LEN: usize = 4096;
/// The most entries in the `attributes` of an item or a user.
pub const MAX_ATTRIBUTES: usize = 64;
/// The most entries in an event's `context`.
pub const MAX_CONTEXT_ENTRIES: usize = 32;
/// The longest key of `attributes` or `context`, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// The longest string value of `attributes` or `context`, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
