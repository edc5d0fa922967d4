//! What this SCIM service provider supports (RFC 7644 §4): its configuration,
//! resource types and schemas. The User and Group schemas list only the
//! attributes Chancery keeps; others a provider sends are ignored.

use axum::{extract::Path, response::Response};
use http::StatusCode;
use serde_json::{json, Value};

use super::{groups, list_response, scim_json, users, Provider, ScimError};
use app::{server::scim::MAX_RESULTS, AppError};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

pub async fn service_provider_config(provider: Provider) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [SPC_SCHEMA],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "SCIM token",
                "description": "A token an Admin makes in the Admin Panel (Settings, Provisioning), sent as Authorization: Bearer.",
                "primary": true,
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", provider.base)},
        }),
    )
}

pub async fn resource_types(provider: Provider) -> Response {
    let all = resource_type_list(&provider.base);
    list_response(all.len() as i64, 1, all)
}

pub async fn resource_type(provider: Provider, Path(id): Path<String>) -> Result<Response, ScimError> {
    resource_type_list(&provider.base)
        .into_iter()
        .find(|resource_type| resource_type["id"] == id.as_str())
        .map(|resource_type| scim_json(StatusCode::OK, &resource_type))
        .ok_or_else(|| AppError::NotFound.into())
}

pub async fn schemas(provider: Provider) -> Response {
    let all = schema_list(&provider.base);
    list_response(all.len() as i64, 1, all)
}

pub async fn schema(provider: Provider, Path(id): Path<String>) -> Result<Response, ScimError> {
    schema_list(&provider.base)
        .into_iter()
        .find(|schema| schema["id"] == id.as_str())
        .map(|schema| scim_json(StatusCode::OK, &schema))
        .ok_or_else(|| AppError::NotFound.into())
}

fn resource_type_list(base: &str) -> Vec<Value> {
    [
        ("User", "/Users", users::SCHEMA, "People of the Organization"),
        ("Group", "/Groups", groups::SCHEMA, "Groups the identity provider manages"),
    ]
    .into_iter()
    .map(|(name, endpoint, schema, description)| {
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": name,
            "name": name,
            "description": description,
            "endpoint": endpoint,
            "schema": schema,
            "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
        })
    })
    .collect()
}

/// An attribute definition (RFC 7643 §7) with the defaults, changed by `extra`.
fn attribute(name: &str, kind: &str, description: &str, extra: Value) -> Value {
    let mut attribute = json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    });
    if let (Some(attribute), Value::Object(extra)) = (attribute.as_object_mut(), extra) {
        attribute.extend(extra);
    }
    attribute
}

fn schema_resource(base: &str, id: &str, name: &str, description: &str, attributes: Vec<Value>) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

fn schema_list(base: &str) -> Vec<Value> {
    let read_only = json!({"mutability": "readOnly"});
    let text = |name: &str, description: &str| attribute(name, "string", description, read_only.clone());
    let flag = |name: &str, description: &str| attribute(name, "boolean", description, read_only.clone());
    let complex = |name: &str, description: &str, sub: Vec<Value>| {
        attribute(name, "complex", description, json!({"mutability": "readOnly", "subAttributes": sub}))
    };
    let supported = |name: &str, description: &str| {
        complex(name, description, vec![flag("supported", "Whether it is supported.")])
    };
    vec![
        schema_resource(base, users::SCHEMA, "User", "A person of the Organization", vec![
            attribute("userName", "string", "The provider's unique name for the person; their email if no emails are given.",
                json!({"required": true, "uniqueness": "server"})),
            attribute("displayName", "string", "The person's name; also their account's name when the account is the Organization's.", json!({})),
            attribute("emails", "complex", "The address the person logs in with (of several, the primary one). It changes only for accounts the provider created or in the Organization's verified domains.",
                json!({"multiValued": true, "required": true, "subAttributes": [
                    attribute("value", "string", "The email address.", json!({"required": true})),
                ]})),
            attribute("active", "boolean", "A member of the Organization while true; false deprovisions them (sessions, API keys and groups end).",
                json!({"required": true})),
        ]),
        schema_resource(base, groups::SCHEMA, "Group", "A group the identity provider manages; Admins decide what it grants", vec![
            attribute("displayName", "string", "The group's name, unique in the Organization.", json!({"required": true, "uniqueness": "server"})),
            attribute("members", "complex", "The people in the group.", json!({"multiValued": true, "subAttributes": [
                attribute("value", "string", "The id of a User.", json!({"mutability": "immutable"})),
                attribute("$ref", "reference", "The User's URI.", json!({"mutability": "immutable", "referenceTypes": ["User"]})),
            ]})),
        ]),
        schema_resource(base, SPC_SCHEMA, "ServiceProviderConfig", "What this service provider supports", vec![
            attribute("documentationUri", "reference", "Help about this service provider.", json!({"mutability": "readOnly", "referenceTypes": ["external"]})),
            supported("patch", "PATCH"),
            complex("bulk", "Bulk operations", vec![flag("supported", "Whether it is supported."),
                attribute("maxOperations", "integer", "Most operations in one request.", read_only.clone()),
                attribute("maxPayloadSize", "integer", "Largest request, in bytes.", read_only.clone())]),
            complex("filter", "Filtering", vec![flag("supported", "Whether it is supported."),
                attribute("maxResults", "integer", "Most resources in one answer.", read_only.clone())]),
            supported("changePassword", "Changing passwords"),
            supported("sort", "Sorting"),
            supported("etag", "ETags"),
            attribute("authenticationSchemes", "complex", "How to authenticate.", json!({"multiValued": true, "mutability": "readOnly", "subAttributes": [
                text("type", "The scheme's type."), text("name", "Its name."), text("description", "What it is."),
                flag("primary", "The preferred scheme."),
            ]})),
        ]),
        schema_resource(base, RESOURCE_TYPE_SCHEMA, "ResourceType", "A kind of resource this service provider serves", vec![
            text("id", "The resource type's id."),
            attribute("name", "string", "Its name.", json!({"mutability": "readOnly", "required": true})),
            text("description", "What it is."),
            attribute("endpoint", "reference", "Where its resources are.", json!({"mutability": "readOnly", "required": true, "referenceTypes": ["uri"]})),
            attribute("schema", "reference", "Its core schema.", json!({"mutability": "readOnly", "required": true, "caseExact": true, "referenceTypes": ["uri"]})),
            attribute("schemaExtensions", "complex", "Its schema extensions.", json!({"multiValued": true, "mutability": "readOnly", "subAttributes": [
                attribute("schema", "reference", "An extension's URI.", json!({"mutability": "readOnly", "required": true, "caseExact": true, "referenceTypes": ["uri"]})),
                flag("required", "Whether resources must have it."),
            ]})),
        ]),
        schema_resource(base, SCHEMA_SCHEMA, "Schema", "A schema: the attributes of a resource", vec![
            text("id", "The schema's URI."),
            text("name", "Its name."),
            text("description", "What it is."),
            attribute("attributes", "complex", "Its attributes.", json!({"multiValued": true, "mutability": "readOnly", "required": true, "subAttributes": [
                text("name", "The attribute's name."), text("type", "Its type."), flag("multiValued", "Whether it holds several values."),
                text("description", "What it is."), flag("required", "Whether it must be given."), flag("caseExact", "Whether case matters."),
                text("mutability", "Who may change it."), text("returned", "When it is returned."), text("uniqueness", "How it is unique."),
                attribute("canonicalValues", "string", "Its usual values.", json!({"multiValued": true, "mutability": "readOnly"})),
                attribute("referenceTypes", "string", "What it may refer to.", json!({"multiValued": true, "mutability": "readOnly"})),
                attribute("subAttributes", "complex", "Its sub-attributes, described alike.", json!({"multiValued": true, "mutability": "readOnly"})),
            ]})),
        ]),
    ]
}
