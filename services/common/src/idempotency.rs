//! The idempotency contract between a client and auditservice's `POST /append`: one logical
//! append carries one key, and a retry with the same key is stored once.

/// The request header naming one logical append.
pub const KEY_HEADER: &str = "idempotency-key";
/// Set on the answer to a retry: the row is the one the first attempt stored.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted (a UUID is 36).
pub const MAX_KEY_CHARS: usize = 200;

/// A fresh key: 128 random bits as hex.
pub fn new_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}
