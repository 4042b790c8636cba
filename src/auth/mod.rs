//! Who is asking: passwords, the session cookie, CSRF tokens, login throttling, and the
//! extractors that turn a request into a logged-in user of a given role.

pub mod csrf;
pub mod extractors;
// The old name, for src/routes/admin/upload.rs until the upload move switches it to
// `auth::extractors`; then this line goes.
pub use extractors as middleware;
pub mod password;
pub mod session;
pub mod throttle;
