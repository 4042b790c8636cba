//! The `domain` value types in and out of TEXT columns, on SQLite, PostgreSQL and `DbConn`
//! alike (no schema change: the columns stay text).
//!
//! The impls are written out here rather than derived on the types, so that `domain` does not
//! depend on diesel at all; they use nothing but diesel's public traits:
//!
//! - writing is the value's text: `ToSql` and `AsExpression` hand diesel the `&str` (or, owned,
//!   the `String`) the value already is, and the backend's own text binding does the rest;
//! - reading parses: `FromSql` reads the text and runs the type's own `parse`, so a row whose
//!   column does not parse (a bad key, rule, id or name) fails its query with a
//!   deserialization error naming the value: never a value, never a fallback, never a panic.
//!
//! Each impl is generic over the backend, so one serves SQLite, PostgreSQL and the
//! `MultiBackend` of `DbConn` (whose queries are checked against both) alike.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

use crate::domain::{AccessRule, FileId, LinkId, StorageKey, TokenId, UserId, Username};

/// A column's text that is not a valid value of its type.
#[derive(Debug, thiserror::Error)]
#[error("the database holds an invalid {what} {value:?}: {reason}")]
pub struct InvalidValue {
    what: &'static str,
    value: String,
    reason: String,
}

impl InvalidValue {
    /// At most this many characters of the bad value go into the message.
    const SHOWN_CHARS: usize = 100;

    fn new(what: &'static str, text: &str, reason: String) -> Self {
        let mut value: String = text.chars().take(Self::SHOWN_CHARS).collect();
        if value.len() < text.len() {
            value.push('…');
        }
        Self {
            what,
            value,
            reason,
        }
    }
}

/// Reads `ty` from a text column with `parse` (`&str` to `Result<ty, String>`), and writes it
/// as the `&str` (or, owned, the `String`) its `as_str` (`into_string`) gives.
macro_rules! text_column {
    ($ty:ty, $what:literal, $parse:expr) => {
        text_column!(@write $ty);
        text_column!(@read $ty, $what, $parse);

        impl AsExpression<Text> for $ty {
            type Expression = <String as AsExpression<Text>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<Text>::as_expression(self.into_string())
            }
        }
    };
    // Reading: the text, parsed by the type's own rule.
    (@read $ty:ty, $what:literal, $parse:expr) => {
        impl<DB> FromSql<Text, DB> for $ty
        where
            DB: Backend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, DB>>::from_sql(bytes)?;
                let parse: fn(&str) -> Result<$ty, String> = $parse;
                parse(&text).map_err(|reason| InvalidValue::new($what, &text, reason).into())
            }
        }

        /// So a lone column loads as the type (`.select(users::username)`).
        impl<DB> Queryable<Text, DB> for $ty
        where
            DB: Backend,
            Self: FromSql<Text, DB>,
        {
            type Row = Self;

            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }
    };
    // What `AccessRule` shares with the others: written from a borrowed `as_str`.
    (@write $ty:ty) => {
        /// For values diesel keeps as they are (`eq_any`'s lists).
        impl<DB> ToSql<Text, DB> for $ty
        where
            DB: Backend,
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                <str as ToSql<Text, DB>>::to_sql(self.as_str(), out)
            }
        }

        impl<'a> AsExpression<Text> for &'a $ty {
            type Expression = <&'a str as AsExpression<Text>>::Expression;

            fn as_expression(self) -> Self::Expression {
                AsExpression::<Text>::as_expression(self.as_str())
            }
        }
    };
}

text_column!(UserId, "user id", |s| UserId::parse(s)
    .map_err(|e| e.to_string()));
text_column!(FileId, "file id", |s| FileId::parse(s)
    .map_err(|e| e.to_string()));
text_column!(LinkId, "link id", |s| LinkId::parse(s)
    .map_err(|e| e.to_string()));
text_column!(TokenId, "token id", |s| TokenId::parse(s)
    .map_err(|e| e.to_string()));
text_column!(Username, "username", |s| Username::parse(s)
    .map_err(|e| e.to_string()));
text_column!(StorageKey, "storage key", |s| StorageKey::parse(s)
    .map_err(|e| e.to_string()));

// An access rule is `Copy` and its text `'static` (no owned write); the CHECK constraint of
// `files.access` keeps other text out on both backends, and reading refuses it if some gets in.
text_column!(@read AccessRule, "access rule", |s| AccessRule::parse(s).ok_or_else(|| {
    let known: Vec<&str> = AccessRule::ALL.iter().map(|r| r.as_str()).collect();
    format!("not one of {}", known.join(", "))
}));
text_column!(@write AccessRule);

impl AsExpression<Text> for AccessRule {
    type Expression = <&'static str as AsExpression<Text>>::Expression;

    fn as_expression(self) -> Self::Expression {
        AsExpression::<Text>::as_expression(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named_and_bounded() {
        let message = InvalidValue::new("storage key", "../x", "a dot".into()).to_string();
        assert_eq!(
            message,
            "the database holds an invalid storage key \"../x\": a dot"
        );
        let long = InvalidValue::new("username", &"é".repeat(300), "too long".into());
        assert_eq!(long.value.chars().count(), InvalidValue::SHOWN_CHARS + 1);
        assert!(long.value.ends_with('…'));
    }
}
