//! Streaming JSON for untrusted bodies: read as it arrives, validated as strictly as
//! serde_json validates, held in bounded memory whatever it holds.
//!
//! [`Input`] is the body as UTF-8 text, read in chunks (invalid UTF-8 becomes U+FFFD, and is
//! reported). Its readers consume one token or one whole value at a time: a string is decoded
//! with only its first `cap` bytes kept (its full length is counted), a number is copied as
//! sent, a value is skipped or copied as compact JSON into a [`Bounded`] buffer that stops
//! growing at its cap. Nesting is tracked with one bit per level, so depth costs nothing
//! either. Escaped lone UTF-16 surrogates (valid JSON, not Unicode) are read as U+FFFD.
//!
//! Bounds: the read buffer holds at most one chunk plus what a caller asks to look ahead at;
//! a string costs its `cap`; a copied value costs its buffer's cap.

pub mod input;
pub mod lossy;
pub mod text;
pub mod types;

pub use input::Input;
pub use lossy::parse_lossy;
pub use text::{next_special, prefix, write_capped, write_str, write_str_body};
pub use types::{Bounded, Error, Flags, Str};
