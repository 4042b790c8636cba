//! Who is asking: passwords, the session cookie, CSRF tokens, login throttling, API tokens
//! (`bearer`, `token_throttle`), and the extractors that turn a request into a logged-in user of a given role.

pub mod bearer;
pub mod csrf;
pub mod extractors;
pub mod password;
pub mod session;
pub mod throttle;
pub mod token_throttle;
