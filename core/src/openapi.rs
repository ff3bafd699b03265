//! The OpenAPI schema of `Email` (feature `openapi`), a string in JSON: its
//! two fields are not its shape, so it cannot derive one. The other types
//! derive theirs next to their definitions.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::model::Email;

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .description(Some("An email address, compared case-insensitively"))
            .examples([serde_json::json!("alice@acme.com")])
            .into()
    }
}

impl ToSchema for Email {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Email")
    }
}
