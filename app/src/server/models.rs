//! The model catalogue: the models the gateway serves and their prices per
//! million input and output tokens. Set by the operator (`chancery models`);
//! the defaults are Mistral's public models.

use super::{
    actor::{Actor, Client},
    audit::{self, AuditEvent},
    authz,
    db::Db,
};
use crate::{
    error::{AppError, AppResult},
    model::{CatalogueModel, ModelKind},
    time::Timestamp,
};

type ModelRow = (String, String, i64, i64, Option<i64>);

fn model((id, kind, input, output, images): ModelRow) -> CatalogueModel {
    CatalogueModel {
        id,
        kind: ModelKind::parse(&kind).unwrap_or(ModelKind::Chat),
        input_micros_per_mtok: input,
        output_micros_per_mtok: output,
        image_max_tokens: images,
    }
}

/// Every model, by id.
#[tracing::instrument(name = "models::list", skip_all, err(level = "debug"))]
pub async fn list(db: &Db) -> AppResult<Vec<CatalogueModel>> {
    let rows: Vec<ModelRow> = sqlx::query_as(
        "SELECT id, kind, input_micros_per_mtok, output_micros_per_mtok, image_max_tokens FROM models ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(model).collect())
}

/// `ids` cleaned (trimmed, without repeats, in order), each a model of the
/// catalogue; an unknown one is refused by name.
#[tracing::instrument(name = "models::require_known", skip_all, err(level = "debug"))]
pub async fn require_known(db: &Db, field: &str, ids: &[String]) -> AppResult<Vec<String>> {
    let known = list(db).await?;
    let mut cleaned: Vec<String> = Vec::new();
    for id in ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
        if !known.iter().any(|m| m.id == id) {
            return Err(AppError::invalid(field, format!("Unknown model {id}.")));
        }
        if !cleaned.iter().any(|c| c == id) {
            cleaned.push(id.to_string());
        }
    }
    Ok(cleaned)
}

/// Adds a model or changes its prices (the operator only).
#[tracing::instrument(name = "models::set", skip_all, fields(actor = actor.kind()), err(level = "debug"))]
pub async fn set(db: &Db, actor: &Actor, client: &Client, input: CatalogueModel) -> AppResult<()> {
    let operator = authz::operator(actor)?;
    let id = input.id.trim();
    if id.is_empty() || id.len() > 100 || id.contains(',') || id.chars().any(char::is_whitespace) {
        return Err(AppError::invalid("id", "A model id is 1 to 100 characters, without spaces or commas."));
    }
    if input.input_micros_per_mtok < 0 || input.output_micros_per_mtok < 0 {
        return Err(AppError::invalid("price", "Prices cannot be negative."));
    }
    if input.image_max_tokens.is_some_and(|t| !(1..=1_000_000).contains(&t)) {
        return Err(AppError::invalid("image_max_tokens", "An image costs 1 to 1,000,000 tokens at most."));
    }
    if input.kind != ModelKind::Chat && input.image_max_tokens.is_some() {
        return Err(AppError::invalid("image_max_tokens", "Only chat models take images."));
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO models (id, kind, input_micros_per_mtok, output_micros_per_mtok, image_max_tokens, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,
            input_micros_per_mtok = excluded.input_micros_per_mtok,
            output_micros_per_mtok = excluded.output_micros_per_mtok,
            image_max_tokens = excluded.image_max_tokens",
    )
    .bind(id)
    .bind(input.kind.as_str())
    .bind(input.input_micros_per_mtok)
    .bind(input.output_micros_per_mtok)
    .bind(input.image_max_tokens)
    .bind(Timestamp::now())
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::new("model.price.update", "model", id).with_details(serde_json::json!({
        "kind": input.kind.as_str(),
        "input_micros_per_mtok": input.input_micros_per_mtok,
        "output_micros_per_mtok": input.output_micros_per_mtok,
        "image_max_tokens": input.image_max_tokens,
    }));
    audit::record(&mut tx, &operator, client, event).await?;
    tx.commit().await?;
    Ok(())
}
