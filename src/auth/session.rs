//! The typed session: what the encrypted session cookie holds, and nothing else touches its keys.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chrono::Utc;
use std::future::{Ready, ready};

use crate::db::models::user::User;
use crate::domain::{FileId, LinkId};
use crate::ids;

const SESSION_ID: &str = "sid";
const USER_ID: &str = "uid";
const EPOCH: &str = "epoch";
const AUTH_AT: &str = "auth_at";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const SHARES: &str = "shares";
const NEW_LINK: &str = "new_link";
const NEW_TOKEN: &str = "new_token";

/// How many share links' grants one session keeps (the newest): the cookie must stay well
/// under the 4 KiB a browser keeps.
const MAX_SHARE_GRANTS: usize = 8;

/// What a browser was granted for one share link, each until a Unix time (0: not granted):
/// the right password was given; a counted download was taken, so later ranges of it (a
/// resumed download) are served even once the link is used up.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ShareGrant {
    link: String,
    password_until: i64,
    resume_until: i64,
}

/// How long a login lasts, checked on the server: the cookie's own expiry is only advice to
/// the browser, and a copied cookie would otherwise live forever.
pub const SESSION_MAX_AGE_SECS: i64 = 14 * 24 * 3600;

/// What a logged-in session claims; `middleware` checks it against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    /// Random per login, so a logout can end exactly this session.
    pub session_id: String,
    pub user_id: String,
    pub epoch: i64,
    pub authenticated_at: i64,
}

impl SessionIdentity {
    pub fn expires_at(&self) -> i64 {
        self.authenticated_at + SESSION_MAX_AGE_SECS
    }

    pub fn is_expired(&self) -> bool {
        Utc::now().timestamp() > self.expires_at()
    }
}

pub struct TypedSession(Session);

impl TypedSession {
    pub fn from_request(req: &HttpRequest) -> Self {
        Self(req.get_session())
    }

    /// Starts a fresh login: a new session (no fixation), and a new CSRF token.
    pub fn log_in(&self, user: &User) -> Result<(), actix_session::SessionInsertError> {
        self.0.renew();
        self.0.clear();
        self.0.insert(SESSION_ID, ids::random_token())?;
        self.0.insert(USER_ID, user.id.as_str())?;
        self.0.insert(EPOCH, user.session_epoch)?;
        self.0.insert(AUTH_AT, Utc::now().timestamp())?;
        self.0.insert(CSRF, ids::random_token())?;
        Ok(())
    }

    /// A message for the next page this session sees ("Deleted report.pdf").
    /// The message shown once on the next page. It travels in the session cookie, which the
    /// browser limits to about 4 KiB: a long one (a long title quoted in it) is shortened in
    /// the middle, keeping how it starts and ends, rather than failing the response after the
    /// change it reports was made.
    pub fn set_flash(&self, message: impl Into<String>) {
        // A String always serialises; a lost flash message is not worth failing a request.
        let _ = self.0.insert(FLASH, shortened_flash(message.into()));
    }

    pub fn take_flash(&self) -> Option<String> {
        self.0.remove_as::<String>(FLASH).and_then(Result::ok)
    }

    /// The full URL of a share link just made for `file`, for that file's page to show once.
    pub fn set_new_link(&self, file: &FileId, url: &str) {
        let _ = self.0.insert(NEW_LINK, (file.as_str(), url));
    }

    /// The URL `set_new_link` kept, if it was made for `file`; it is then gone.
    pub fn take_new_link(&self, file: &FileId) -> Option<String> {
        let (for_file, url) = self.0.get::<(String, String)>(NEW_LINK).ok().flatten()?;
        if for_file != file.as_str() {
            return None;
        }
        self.0.remove(NEW_LINK);
        Some(url)
    }

    /// An API token just made, for `/account/tokens` to show once (the cookie is encrypted).
    pub fn set_new_token(&self, token: &str) {
        let _ = self.0.insert(NEW_TOKEN, token);
    }

    /// The token `set_new_token` kept, if any; it is then gone.
    pub fn take_new_token(&self) -> Option<String> {
        self.0.remove_as::<String>(NEW_TOKEN).and_then(Result::ok)
    }

    pub fn grant_share_password(&self, link: &LinkId, until: i64) {
        self.update_share_grant(link, |g| g.password_until = until);
    }

    pub fn grant_share_resume(&self, link: &LinkId, until: i64) {
        self.update_share_grant(link, |g| g.resume_until = until);
    }

    pub fn share_password_given(&self, link: &LinkId) -> bool {
        let now = Utc::now().timestamp();
        self.share_grant(link)
            .is_some_and(|g| g.password_until > now)
    }

    pub fn share_may_resume(&self, link: &LinkId) -> bool {
        let now = Utc::now().timestamp();
        self.share_grant(link).is_some_and(|g| g.resume_until > now)
    }

    fn share_grants(&self) -> Vec<ShareGrant> {
        self.0
            .get::<Vec<ShareGrant>>(SHARES)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn share_grant(&self, link: &LinkId) -> Option<ShareGrant> {
        self.share_grants()
            .into_iter()
            .find(|g| g.link == link.as_str())
    }

    fn update_share_grant(&self, link: &LinkId, change: impl FnOnce(&mut ShareGrant)) {
        let now = Utc::now().timestamp();
        let mut grants = self.share_grants();
        let mut grant = match grants.iter().position(|g| g.link == link.as_str()) {
            Some(i) => grants.remove(i),
            None => ShareGrant {
                link: link.as_str().to_owned(),
                password_until: 0,
                resume_until: 0,
            },
        };
        change(&mut grant);
        grants.retain(|g| g.password_until > now || g.resume_until > now);
        grants.push(grant);
        let excess = grants.len().saturating_sub(MAX_SHARE_GRANTS);
        grants.drain(..excess);
        // Plain data always serialises; a lost grant only asks for the password again.
        let _ = self.0.insert(SHARES, grants);
    }

    pub fn log_out(&self) {
        self.0.purge();
    }

    pub fn identity(&self) -> Option<SessionIdentity> {
        let session_id = self.0.get::<String>(SESSION_ID).ok().flatten()?;
        let user_id = self.0.get::<String>(USER_ID).ok().flatten()?;
        let epoch = self.0.get::<i64>(EPOCH).ok().flatten()?;
        let authenticated_at = self.0.get::<i64>(AUTH_AT).ok().flatten()?;
        Some(SessionIdentity {
            session_id,
            user_id,
            epoch,
            authenticated_at,
        })
    }

    /// The session's CSRF token, if it has one (forms that need one call `csrf_token`).
    pub fn existing_csrf_token(&self) -> Option<String> {
        self.0.get::<String>(CSRF).ok().flatten()
    }

    /// The session's CSRF token, created on first use.
    pub fn csrf_token(&self) -> String {
        if let Some(token) = self.existing_csrf_token() {
            return token;
        }
        let token = ids::random_token();
        // Inserting a String cannot fail to serialise; if it somehow did, the form would
        // carry a token the session lacks, and the POST would get a clean 403.
        let _ = self.0.insert(CSRF, &token);
        token
    }
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::from_request(req)))
    }
}

/// Characters of a flash message kept at its start and at its end when it is too long.
const FLASH_HEAD_CHARS: usize = 160;
const FLASH_TAIL_CHARS: usize = 60;

fn shortened_flash(message: String) -> String {
    let count = message.chars().count();
    if count <= FLASH_HEAD_CHARS + FLASH_TAIL_CHARS + 1 {
        return message;
    }
    let head: String = message.chars().take(FLASH_HEAD_CHARS).collect();
    let tail: String = message.chars().skip(count - FLASH_TAIL_CHARS).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_flash_message_keeps_its_start_and_end() {
        let short = "Deleted “a.txt” and its stored object.".to_owned();
        assert_eq!(shortened_flash(short.clone()), short);
        let long = format!("Deleted “{}” and its stored object.", "ä".repeat(5000));
        let shown = shortened_flash(long);
        assert_eq!(
            shown.chars().count(),
            FLASH_HEAD_CHARS + 1 + FLASH_TAIL_CHARS
        );
        assert!(shown.starts_with("Deleted “ää"));
        assert!(shown.ends_with("ää” and its stored object."));
        assert!(shown.contains('…'));
    }
}
