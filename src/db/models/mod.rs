pub mod audit_event;
pub mod file;
pub mod login_failure;
pub mod pending_upload;
pub mod session;
pub mod share_link;
pub mod user;
pub mod user_removal;
