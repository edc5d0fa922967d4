//! Typed identifiers. Each wraps a UUID, travels as its string form in JSON and
//! is stored as TEXT, so a `UserId` can never be passed where an `OrgId` is meant.

macro_rules! uuid_id {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        #[cfg(feature = "ssr")]
        impl $name {
            /// A fresh random id; ids are only minted on the server.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        #[cfg(feature = "ssr")]
        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        #[cfg(feature = "ssr")]
        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, sqlx::Any>>::encode(self.0.to_string(), buf)
            }
        }

        #[cfg(feature = "ssr")]
        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(Self(text.parse()?))
            }
        }
    )+};
}

uuid_id! {
    /// A person's account.
    UserId;
    /// An Organization: members, workspaces, billing, policies.
    OrgId;
    /// A Workspace inside one Organization.
    WorkspaceId;
    /// An Enterprise Account: links Organizations, managed in the Backoffice.
    EnterpriseId;
    /// An Admin API key (its row, not its secret).
    AdminKeyId;
    /// A user group of one Organization.
    GroupId;
    /// A workspace API key (its row, not its secret).
    ApiKeyId;
    /// A SCIM provisioning token of one Organization (its row, not its secret).
    ScimTokenId;
    /// A service account: a non-human member of one workspace that owns API keys.
    ServiceAccountId;
}
