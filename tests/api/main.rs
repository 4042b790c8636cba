//! The integration suite: the real app on 127.0.0.1:0, talked to over HTTP.

// Test code may unwrap: a panic is a failed test (`[lints]` in Cargo.toml denies it elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod admin_ux;
mod caching;
mod cli;
mod crash;
mod csrf;
mod display;
mod downloads;
mod helpers;
mod limits;
mod listing;
mod login;
mod nginx;
mod pages;
mod pipelining;
mod rows;
mod s3;
mod s3_server;
mod scale_out;
mod slow_clients;
mod symlink_race;
mod throttle;
mod traversal;
mod uploads;
mod users_admin;
