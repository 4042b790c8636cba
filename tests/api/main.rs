//! The integration suite: the real app on 127.0.0.1:0, talked to over HTTP.

// Test code may unwrap: a panic is a failed test (`[lints]` in Cargo.toml denies it elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_cache;
mod access_log;
mod account;
mod admin_conveniences;
mod audit_admin;
mod audit_log;
mod bulk_actions;
mod caching;
mod cli_commands;
mod cli_user_admin;
mod crash_recovery;
mod csrf;
mod downloads;
mod file_detail;
mod file_listing;
mod file_lists;
mod file_search;
mod form_bodies;
mod helpers;
mod login;
mod login_throttling;
mod nginx;
mod page_access;
mod pages_and_navigation;
mod path_traversal;
mod pipelining;
mod replace_races;
mod row_decoding;
mod s3;
mod scale_out;
mod security_headers_and_error_pages;
mod share_links;
mod slow_request_bodies;
mod spoofed_names;
mod stalled_downloads;
mod stalled_watcher;
mod symlink_race;
mod thumbnails;
mod upload_descriptors;
mod uploads;
mod user_deletion;
mod users_admin;
