//! Closed sets stored as Postgres `text`: with the `sqlx` feature, [`sql_text!`] binds an enum
//! as its name and decodes it with its parser, so a stored value outside the set fails the read
//! instead of passing for another. Every closed set the services store goes through it
//! (conversation status, offer and item states, message direction and author kind, presence), so
//! a row field is simply typed as the enum.

/// Implements sqlx's `Type`, `Encode` and `Decode` for `$name` as `text`, through its
/// `as_str(self) -> &'static str` and `$parse: |&str| -> Result<Self, impl Display>`.
macro_rules! sql_text {
    ($name:ident, |$text:ident| $parse:expr) => {
        #[cfg(feature = "sqlx")]
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut sqlx::postgres::PgArgumentBuffer) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl sqlx::Decode<'_, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
                let $text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                $parse.map_err(|e| e.to_string().into())
            }
        }
    };
}
pub(crate) use sql_text;
