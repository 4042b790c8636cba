//! `private-media token …`: API tokens from the command line (README: "Scripting"). `create`
//! prints the new token alone on stdout (a script can take it with `$(…)`), everything else
//! goes to stderr; only its digest is stored.

use chrono::Utc;
use clap::Subcommand;

use crate::db::Db;
use crate::db::models::api_token::{TokenRow, audit_detail as token_detail};
use crate::db::models::user::User;
use crate::domain::{TokenExpiry, TokenId, Username, token_name};

use super::{CliError, record_change};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token for a user and print it (shown only this once).
    Create {
        username: String,
        /// What the token is for, to tell it apart later.
        #[arg(long, value_name = "NAME", default_value = "command line")]
        name: String,
        /// How long it works: 30d, 90d, 12h… or `never`.
        #[arg(long, value_name = "DURATION", default_value = "90d")]
        expires: String,
    },
    /// List the tokens of a user, or of every user: id, user, name, created, last used,
    /// expiry and state.
    List { username: Option<String> },
    /// Revoke a token by its id (as `token list` shows it); it stops working at once.
    Revoke {
        #[arg(value_name = "TOKEN_ID")]
        token_id: String,
    },
}

fn shown(t: Option<chrono::NaiveDateTime>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "never".to_owned())
}

pub fn run(db: &Db, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            username,
            name,
            expires,
        } => {
            let username = Username::parse(&username)?;
            let expiry = TokenExpiry::parse(&expires)
                .map_err(|e| CliError::Input(format!("--expires: {e}")))?;
            let name = token_name(&name);
            if name.is_empty() {
                return Err(CliError::Input("--name must not be empty".to_owned()));
            }
            let user = User::get_by_username(&mut *db.get()?, &username)?;
            if !user.is_active {
                return Err(CliError::Input(format!(
                    "`{username}` is deactivated: a token of theirs would not work"
                )));
            }
            let issued = TokenRow::issue(
                &mut *db.get()?,
                &user.id,
                &name,
                expiry,
                Utc::now().naive_utc(),
            )?;
            record_change(
                db,
                "token_created",
                token_detail(&issued.id, &name, &username),
            )?;
            println!("{}", issued.token.expose());
            eprintln!(
                "created token {} “{name}” for `{username}`, expires {}; it is shown only this once",
                issued.id,
                shown(issued.expires_at)
            );
        }
        TokenCommand::List { username } => {
            let user = match username {
                Some(name) => {
                    let name = Username::parse(&name)?;
                    Some(User::get_by_username(&mut *db.get()?, &name)?.id)
                }
                None => None,
            };
            let tokens = TokenRow::list(&mut *db.get()?, user.as_ref())?;
            let now = Utc::now().naive_utc();
            println!(
                "{:<32} {:<20} {:<24} {:<16} {:<16} {:<16} STATE",
                "ID", "USER", "NAME", "CREATED", "LAST USED", "EXPIRES"
            );
            for listed in tokens {
                let t = &listed.token;
                println!(
                    "{:<32} {:<20} {:<24} {:<16} {:<16} {:<16} {}",
                    t.id,
                    listed.username.as_str(),
                    crate::logging::Escaped(&t.name).to_string(),
                    shown(Some(t.created_at)),
                    shown(t.last_used_at),
                    shown(t.expires_at),
                    t.state(now).as_str()
                );
            }
        }
        TokenCommand::Revoke { token_id } => {
            let id = TokenId::parse(&token_id).map_err(|_| {
                CliError::Input(format!("there is no token with the id `{token_id}`"))
            })?;
            let found = TokenRow::find(&mut *db.get()?, &id)?
                .ok_or_else(|| CliError::Input(format!("there is no token with the id `{id}`")))?;
            if TokenRow::revoke(&mut *db.get()?, &id, Utc::now().naive_utc())? {
                record_change(
                    db,
                    "token_revoked",
                    token_detail(&id, &found.token.name, &found.username),
                )?;
                println!(
                    "revoked token {id} “{}” of `{}`",
                    found.token.name, found.username
                );
            } else {
                println!("token {id} was already revoked");
            }
        }
    }
    Ok(())
}
