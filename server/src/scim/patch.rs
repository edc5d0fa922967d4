//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON, and the
//! equality filters identity providers list with (§3.4.2.2).
//!
//! A PATCH is applied to the resource as the provider sees it, and the result
//! read back as a replacement: one path for PUT and PATCH. Identity providers
//! differ, so this reads them all: attribute names in any case, `op` in any
//! case (Entra sends `Replace`), operations without a path whose value names
//! attributes (Okta's `{"op": "replace", "value": {"active": false}}`, Entra's
//! `"name.givenName"` keys), value filters on multi-valued attributes
//! (`members[value eq "..."]`, `emails[type eq "work"].value`), and removal of
//! listed members (`{"op": "remove", "path": "members", "value": [...]}`).

use app::{error::AppResult, AppError};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Where an operation applies: `attribute`, `attribute.sub`,
/// `attribute[sub eq "value"]` or `attribute[sub eq "value"].sub`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Path {
    attribute: String,
    filter: Option<(String, Value)>,
    sub: Option<String>,
}

/// Applies the `Operations` of PATCH `body` to `resource`, in order.
pub fn apply(resource: &mut Map<String, Value>, body: &Value) -> AppResult<()> {
    let operations = field(body.as_object(), "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| AppError::invalid("Operations", "A PATCH needs an Operations list."))?;
    for operation in operations {
        let operation = operation
            .as_object()
            .ok_or_else(|| AppError::invalid("Operations", "Each operation is an object."))?;
        let op = match field(Some(operation), "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            _ => return Err(AppError::invalid("op", "op must be add, replace or remove.")),
        };
        let path = field(Some(operation), "path").and_then(Value::as_str).map(parse_path).transpose()?;
        let value = field(Some(operation), "value").cloned();
        match (op, path, value) {
            (Op::Remove, None, _) => return Err(AppError::invalid("path", "remove needs a path.")),
            (Op::Remove, Some(path), value) => remove(resource, &path, value.as_ref()),
            (_, _, None) => return Err(AppError::invalid("value", "add and replace need a value.")),
            (op, Some(path), Some(value)) => set(resource, &path, value, op)?,
            (op, None, Some(Value::Object(values))) => {
                for (name, value) in values {
                    set(resource, &parse_path(&name)?, value, op)?;
                }
            }
            (_, None, Some(_)) => {
                return Err(AppError::invalid(
                    "value",
                    "Without a path, the value names the attributes to set.",
                ))
            }
        }
    }
    Ok(())
}

/// The attribute and value of an `attribute eq "value"` list filter, the
/// only kind identity providers send when they look people and groups up.
pub fn equality_filter(filter: &str) -> AppResult<(String, String)> {
    let invalid =
        || AppError::invalid("filter", "Only filters of the form attribute eq \"value\" are supported.");
    let (attribute, rest) = filter.trim().split_once(char::is_whitespace).ok_or_else(invalid)?;
    let (operator, value) = rest.trim_start().split_once(char::is_whitespace).ok_or_else(invalid)?;
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(invalid());
    }
    let value = match parse_value(value.trim()).ok_or_else(invalid)? {
        Value::String(text) => text,
        other => other.to_string(),
    };
    Ok((without_schema(attribute).to_string(), value))
}

/// An attribute name without the schema URN it may be qualified with.
pub fn without_schema(name: &str) -> &str {
    if name.to_ascii_lowercase().starts_with("urn:") {
        name.rsplit_once(':').map_or(name, |(_, attribute)| attribute)
    } else {
        name
    }
}

fn parse_path(path: &str) -> AppResult<Path> {
    let invalid = || AppError::invalid("path", format!("Cannot read the path {path:?}."));
    let (head, filter_and_rest) = match path.split_once('[') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let head = without_schema(head.trim());
    let (attribute, mut sub) = match head.split_once('.') {
        Some((attribute, sub)) => (attribute, Some(sub.to_string())),
        None => (head, None),
    };
    let filter = match filter_and_rest {
        None => None,
        Some(rest) => {
            let (filter, after) = rest.rsplit_once(']').ok_or_else(invalid)?;
            if let Some(after_sub) = after.strip_prefix('.') {
                sub = Some(after_sub.to_string());
            } else if !after.is_empty() {
                return Err(invalid());
            }
            let mut words = filter.trim().splitn(3, char::is_whitespace);
            let (Some(name), Some(operator), Some(value)) = (words.next(), words.next(), words.next()) else {
                return Err(invalid());
            };
            if !operator.eq_ignore_ascii_case("eq") {
                return Err(AppError::invalid("path", "Only eq filters are supported in paths."));
            }
            Some((name.to_string(), parse_value(value.trim()).ok_or_else(invalid)?))
        }
    };
    if attribute.is_empty() || sub.as_deref().is_some_and(str::is_empty) {
        return Err(invalid());
    }
    Ok(Path { attribute: attribute.to_string(), filter, sub })
}

/// A filter's comparison value: a JSON string, number, boolean or null.
fn parse_value(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().filter(|v: &Value| !v.is_array() && !v.is_object())
}

/// The value of `name` in `object`, attribute names compared without case.
pub fn field<'a>(object: Option<&'a Map<String, Value>>, name: &str) -> Option<&'a Value> {
    object?.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
}

/// The key `object` stores `name` under, or `name` for a new one.
fn key(object: &Map<String, Value>, name: &str) -> String {
    object.keys().find(|key| key.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_string())
}

/// Whether element `item` of a multi-valued attribute passes `filter`.
fn matches(item: &Value, (name, wanted): &(String, Value)) -> bool {
    match (field(item.as_object(), name), wanted) {
        (Some(Value::String(have)), Value::String(want)) => have.eq_ignore_ascii_case(want),
        (Some(have), want) => have == want,
        (None, _) => false,
    }
}

fn set(resource: &mut Map<String, Value>, path: &Path, value: Value, op: Op) -> AppResult<()> {
    let key = key(resource, &path.attribute);
    match (&path.filter, &path.sub) {
        (None, None) => {
            match (op, resource.get_mut(&key)) {
                // Adding to a multi-valued attribute adds values (RFC 7644 §3.5.2.1).
                (Op::Add, Some(Value::Array(items))) => match value {
                    Value::Array(values) => items.extend(values),
                    value => items.push(value),
                },
                _ => {
                    resource.insert(key, value);
                }
            }
        }
        (None, Some(sub)) => match resource.entry(key).or_insert_with(|| Value::Object(Map::new())) {
            Value::Object(object) => {
                let sub_key = self::key(object, sub);
                object.insert(sub_key, value);
            }
            Value::Array(items) if !items.is_empty() => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    let sub_key = self::key(item, sub);
                    item.insert(sub_key, value.clone());
                }
            }
            other => *other = serde_json::json!({ sub: value }),
        },
        (Some(filter), sub) => {
            let items = match resource.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items,
                other => {
                    *other = Value::Array(Vec::new());
                    other.as_array_mut().expect("just made an array")
                }
            };
            let mut found = false;
            for item in items.iter_mut().filter(|item| matches(item, filter)) {
                found = true;
                match (sub, item.as_object_mut()) {
                    (Some(sub), Some(object)) => {
                        let sub_key = self::key(object, sub);
                        object.insert(sub_key, value.clone());
                    }
                    _ => *item = value.clone(),
                }
            }
            // Nothing matched: the element the filter describes is added.
            if !found {
                let mut item = Map::new();
                item.insert(filter.0.clone(), filter.1.clone());
                match (sub, value) {
                    (Some(sub), value) => {
                        item.insert(sub.clone(), value);
                    }
                    (None, Value::Object(fields)) => item.extend(fields),
                    (None, _) => return Err(AppError::invalid("value", "A filtered path takes an object.")),
                }
                items.push(Value::Object(item));
            }
        }
    }
    Ok(())
}

fn remove(resource: &mut Map<String, Value>, path: &Path, value: Option<&Value>) {
    let key = key(resource, &path.attribute);
    match (&path.filter, &path.sub) {
        (None, None) => match (resource.get_mut(&key), value) {
            // Entra removes listed members: `"value": [{"value": "<id>"}]`.
            (Some(Value::Array(items)), Some(Value::Array(listed))) => {
                items.retain(|item| !listed.iter().any(|gone| same_value(item, gone)));
            }
            _ => {
                resource.remove(&key);
            }
        },
        (None, Some(sub)) => match resource.get_mut(&key) {
            Some(Value::Object(object)) => {
                let sub_key = self::key(object, sub);
                object.remove(&sub_key);
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    let sub_key = self::key(item, sub);
                    item.remove(&sub_key);
                }
            }
            _ => {}
        },
        (Some(filter), sub) => {
            if let Some(Value::Array(items)) = resource.get_mut(&key) {
                match sub {
                    None => items.retain(|item| !matches(item, filter)),
                    Some(sub) => {
                        for item in items.iter_mut().filter(|item| matches(item, filter)) {
                            if let Some(object) = item.as_object_mut() {
                                let sub_key = self::key(object, sub);
                                object.remove(&sub_key);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn same_value(item: &Value, gone: &Value) -> bool {
    let value = |v: &Value| field(v.as_object(), "value").cloned();
    value(item).is_some() && value(item) == value(gone)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patched(resource: Value, body: Value) -> AppResult<Value> {
        let mut resource = resource.as_object().unwrap().clone();
        apply(&mut resource, &body)?;
        Ok(Value::Object(resource))
    }

    #[test]
    fn okta_deactivates_with_a_value_naming_the_attribute() {
        let body = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
        assert_eq!(patched(json!({"userName": "a", "active": true}), body).unwrap()["active"], json!(false));
    }

    #[test]
    fn entra_writes_op_in_capitals_and_dotted_or_filtered_paths() {
        let body = json!({"Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.com"},
            {"op": "Add", "value": {"name.givenName": "Ada"}},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "Ada L"},
        ]});
        let user = patched(json!({"userName": "a", "emails": [{"value": "a@x.com", "type": "work"}]}), body)
            .unwrap();
        assert_eq!(user["active"], json!("False"), "coerced when read back, not here");
        assert_eq!(user["emails"], json!([{"value": "b@x.com", "type": "work"}]));
        assert_eq!(user["name"], json!({"givenName": "Ada"}));
        assert_eq!(user["displayName"], json!("Ada L"));
    }

    #[test]
    fn a_filter_that_matches_nothing_adds_the_element_it_describes() {
        let body = json!({"Operations": [{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@x.com"}]});
        let user = patched(json!({"emails": [{"value": "a@x.com", "primary": true}]}), body).unwrap();
        assert_eq!(
            user["emails"],
            json!([{"value": "a@x.com", "primary": true}, {"type": "work", "value": "b@x.com"}])
        );
    }

    #[test]
    fn members_are_added_and_removed_in_each_providers_way() {
        let group = json!({"displayName": "g", "members": [{"value": "1"}, {"value": "2"}]});
        let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "3"}]}]});
        let group = patched(group, add).unwrap();
        assert_eq!(group["members"], json!([{"value": "1"}, {"value": "2"}, {"value": "3"}]));
        let okta = json!({"Operations": [{"op": "remove", "path": "members[value eq \"1\"]"}]});
        let group = patched(group, okta).unwrap();
        let entra = json!({"Operations": [{"op": "Remove", "path": "members", "value": [{"value": "3"}]}]});
        let group = patched(group, entra).unwrap();
        assert_eq!(group["members"], json!([{"value": "2"}]));
        let all = json!({"Operations": [{"op": "remove", "path": "members"}]});
        assert_eq!(patched(group, all).unwrap().get("members"), None);
    }

    #[test]
    fn bad_operations_name_what_is_wrong() {
        let field_of = |body: Value| match patched(json!({}), body) {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(json!({})), "Operations");
        assert_eq!(field_of(json!({"Operations": [{"op": "move", "path": "a"}]})), "op");
        assert_eq!(field_of(json!({"Operations": [{"op": "remove"}]})), "path");
        assert_eq!(field_of(json!({"Operations": [{"op": "add", "path": "a"}]})), "value");
        assert_eq!(field_of(json!({"Operations": [{"op": "add", "path": "a[b gt 1]", "value": 1}]})), "path");
        assert_eq!(field_of(json!({"Operations": [{"op": "add", "path": "a[b eq]", "value": 1}]})), "path");
    }

    #[test]
    fn list_filters_are_equalities() {
        assert_eq!(
            equality_filter("userName eq \"Ada@X.com\"").unwrap(),
            ("userName".into(), "Ada@X.com".into())
        );
        assert_eq!(equality_filter("externalId EQ \"00u1\"").unwrap(), ("externalId".into(), "00u1".into()));
        assert_eq!(
            equality_filter("urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a b\"").unwrap(),
            ("userName".into(), "a b".into())
        );
        assert!(equality_filter("userName sw \"a\"").is_err());
        assert!(equality_filter("userName eq").is_err());
        assert!(equality_filter("userName eq \"a\" and active eq true").is_err());
    }
}
