//! private-media keeps private media files and serves them only to the people allowed to
//! see them.
//!
//! Layers, top to bottom: `cli` and `startup` build the app from `config::Settings`;
//! `routes` parse requests into typed values and call `auth` and `db`; `html`
//! renders pages; `access` decides who may read what; `storage` holds the bytes and
//! `delivery` sends them. Under them all, `domain` holds the typed values (ids, usernames,
//! roles, access rules, storage keys) with no I/O and no framework. Request flow reads
//! straight down: route → auth extractor → database → access → template or delivery.
//!
//! Error policy: domain modules return their own `thiserror` enums; handlers turn them into
//! `error::AppError`, which alone decides status codes and pages and logs server faults once.
//! The CLI prints any error as one line and exits non-zero. Nothing panics on input, I/O or
//! configuration.

pub mod access;
pub mod access_log;
pub mod audit;
pub mod auth;
pub mod cache_control;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod db;
pub mod delivery;
pub mod display;
pub mod domain;
pub mod error;
pub mod error_pages;
pub mod html;
pub mod ids;
pub mod limits;
pub mod logging;
pub mod operations;
pub mod routes;
pub mod secret;
pub mod share_tally;
pub mod startup;
pub mod state;
pub mod storage;
pub mod thumbnails;
pub mod upload;
