pub mod file;
pub mod pending_upload;
pub mod session;
pub mod user;
