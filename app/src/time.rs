//! Points in time, UTC, stored as Unix milliseconds (BIGINT on every backend).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    #[cfg(feature = "ssr")]
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// `2026-11-23 14:05 UTC`: what people read in tables.
    pub fn display(self) -> String {
        self.to_datetime().format("%Y-%m-%d %H:%M UTC").to_string()
    }

    /// RFC 3339, for APIs and exports.
    pub fn rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

#[cfg(feature = "ssr")]
mod sql {
    use super::Timestamp;
    use sqlx::{any::AnyTypeInfo, Any, Decode, Encode, Type};

    impl Type<Any> for Timestamp {
        fn type_info() -> AnyTypeInfo {
            <i64 as Type<Any>>::type_info()
        }
        fn compatible(ty: &AnyTypeInfo) -> bool {
            <i64 as Type<Any>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Any> for Timestamp {
        fn encode_by_ref(
            &self,
            buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
        ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
            <i64 as Encode<'q, Any>>::encode(self.0, buf)
        }
    }

    impl<'r> Decode<'r, Any> for Timestamp {
        fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
            <i64 as Decode<'r, Any>>::decode(value).map(Timestamp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_people_and_machines() {
        let t = Timestamp(1_795_000_000_123);
        assert_eq!(t.rfc3339(), "2026-11-18T11:06:40.123Z");
        assert_eq!(t.display(), "2026-11-18 11:06 UTC");
    }
}
