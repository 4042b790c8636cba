//! The value types the rest is built from: user and file ids, usernames, roles, access
//! rules, file types, storage keys, password hashes, the trusted proxies, the folded text file search
//! compares, share links' tokens and lifetimes, and API tokens. Each is parsed once where it comes in (a URL, a
//! form, the command line, a database row) and carried typed from there on, so nothing
//! further in can hold a bad one.
//!
//! The ground floor: no I/O and no framework. Nothing here uses actix, diesel, the database,
//! `auth`, `routes` or `storage`; `db::sql_types` is what reads and writes these types as
//! text columns.

mod access_rule;
mod api_token;
mod file_type;
mod ids;
mod password_hash;
mod role;
mod search_text;
mod share;
mod storage_key;
mod trusted_proxies;
mod username;

pub use access_rule::AccessRule;
pub use api_token::{ApiToken, InvalidExpiry, TokenExpiry, token_name};
pub use file_type::{FileType, TypeFamily};
pub use ids::{FileId, InvalidId, LinkId, TokenId, UserId};
pub use password_hash::PasswordHash;
pub use role::Role;
pub use search_text::{fold, search_text};
pub use share::{InvalidLifetime, LinkLifetime, ShareToken};
pub use storage_key::{DERIVED_FOLDER_SUFFIX, InvalidKey, StorageKey};
pub use trusted_proxies::TrustedProxies;
pub use username::{Username, UsernameError};
