pub mod file;
pub mod session;
pub mod user;
