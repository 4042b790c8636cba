mod access;
mod cli;
mod helpers;
mod listing;
mod login;
mod pages;
mod uploads;
