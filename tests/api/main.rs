mod access;
mod cli;
mod helpers;
mod login;
mod pages;
