//! Tamper evidence for the audit log. Append-only triggers stop the application
//! from editing history; they do not stop someone with the database's keys.
//!
//! Each event is linked into its chain (one per Organization; events of no
//! Organization form the chain `""`) by its place, `chain_seq`, and a SHA-256
//! hash over its content, its place and the hash before it, `chain_hash`. An
//! edited, deleted, inserted or reordered row breaks the links from there on.
//! Someone who rewrites a chain whole, hashes recomputed, is caught by the
//! checkpoints: at intervals each chain's head (place, hash, time) is signed
//! with an Ed25519 key the operator holds (`CHANCERY_AUDIT_SIGNING_KEY`), and a
//! chain must still pass through every signed head. What was recorded after
//! the last checkpoint is only as safe as the database.

use std::collections::BTreeMap;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection as _, FromRow};

use super::{
    actor::Actor,
    audit::{csv_cell, csv_text},
    authz,
    db::Db,
};
use crate::{error::AppResult, ids::OrgId, time::Timestamp};

/// The hash before a chain's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Written first in every hashed event and signed checkpoint: a new format gets a new tag.
const FORMAT: &str = "chancery-audit-v1";

/// What an event says, as recorded: everything the hash covers but its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct Content {
    pub org_id: Option<String>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub details: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
}

impl Content {
    /// The chain this event belongs to.
    pub fn chain(&self) -> &str {
        self.org_id.as_deref().unwrap_or("")
    }

    /// The hash linking this content at place `seq`, after `prev`. The fields
    /// go in as one JSON array: unambiguous, whatever text they hold.
    pub fn link_hash(&self, seq: i64, prev: &str) -> String {
        let fields = (
            FORMAT,
            seq,
            &self.org_id,
            &self.actor_type,
            &self.actor_id,
            &self.actor_label,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.details,
            &self.ip,
            self.created_at,
        );
        let mut hasher = Sha256::new();
        hasher.update(prev.as_bytes());
        hasher.update(serde_json::to_vec(&fields).unwrap_or_default());
        hex::encode(hasher.finalize())
    }
}

/// An event as stored: its row id, content, place and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct ChainedEvent {
    pub id: i64,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub content: Content,
    pub chain_seq: Option<i64>,
    pub chain_hash: Option<String>,
}

/// A chain's head signed by the operator's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct Checkpoint {
    pub chain: String,
    pub seq: i64,
    pub head_hash: String,
    /// Milliseconds since the epoch.
    pub signed_at: i64,
    /// The signer's public key, base64: which key to ask the operator about.
    pub public_key: String,
    /// Ed25519 over [`Checkpoint::message`], base64.
    pub signature: String,
}

impl Checkpoint {
    fn message(chain: &str, seq: i64, head_hash: &str, signed_at: i64) -> Vec<u8> {
        format!("{FORMAT} checkpoint\n{chain}\n{seq}\n{head_hash}\n{signed_at}").into_bytes()
    }

    /// Whether `key` signed exactly this.
    pub fn signed_by(&self, key: &VerifyingKey) -> bool {
        let Some(signature) = BASE64
            .decode(&self.signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .map(|bytes| Signature::from_bytes(&bytes))
        else {
            return false;
        };
        let message = Self::message(&self.chain, self.seq, &self.head_hash, self.signed_at);
        key.verify_strict(&message, &signature).is_ok()
    }
}

/// The operator's checkpoint key (boxed: it is large, and rides in the command line's arguments).
#[derive(Clone)]
pub struct AuditSigner(Box<SigningKey>);

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AuditSigner").field(&self.public_key()).finish()
    }
}

impl AuditSigner {
    /// A new key from the system's random source.
    pub fn generate() -> Self {
        let mut seed = [0_u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        Self(Box::new(SigningKey::from_bytes(&seed)))
    }

    /// A key as `chancery audit keygen` writes it: 32 bytes, base64.
    pub fn parse(text: &str) -> Option<Self> {
        let seed = BASE64.decode(text.trim()).ok()?;
        Some(Self(Box::new(SigningKey::from_bytes(&<[u8; 32]>::try_from(seed).ok()?))))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    pub fn public_key(&self) -> String {
        BASE64.encode(self.verifying_key().to_bytes())
    }

    fn sign(&self, chain: &str, seq: i64, head_hash: &str, signed_at: i64) -> Checkpoint {
        let signature = self.0.sign(&Checkpoint::message(chain, seq, head_hash, signed_at));
        Checkpoint {
            chain: chain.to_string(),
            seq,
            head_hash: head_hash.to_string(),
            signed_at,
            public_key: self.public_key(),
            signature: BASE64.encode(signature.to_bytes()),
        }
    }
}

/// A public key as `chancery audit keygen` prints it (base64).
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes).ok()?).ok()
}

/// Takes the next place in `content`'s chain and returns it with the event's
/// hash. Runs in the caller's transaction (a savepoint of it): the head's row
/// stays locked until the event is committed, so places follow commits.
pub(super) async fn link(conn: &mut AnyConnection, content: &Content) -> Result<(i64, String), sqlx::Error> {
    let mut tx = conn.begin().await?;
    let chain = content.chain();
    // The first write of the step: on SQLite it takes the write lock at once.
    let (seq, prev): (i64, String) = sqlx::query_as(
        "INSERT INTO audit_chain_heads (chain, seq, hash) VALUES ($1, 1, $2)
         ON CONFLICT (chain) DO UPDATE SET seq = audit_chain_heads.seq + 1
         RETURNING seq, hash",
    )
    .bind(chain)
    .bind(GENESIS)
    .fetch_one(&mut *tx)
    .await?;
    let hash = content.link_hash(seq, &prev);
    sqlx::query("UPDATE audit_chain_heads SET hash = $2 WHERE chain = $1")
        .bind(chain)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((seq, hash))
}

const EVENT_COLUMNS: &str = "id, org_id, actor_type, actor_id, actor_label, action, target_type, target_id, \
                             details, ip, created_at, chain_seq, chain_hash";

/// Links the events recorded before chaining began (see the migration
/// `0034_audit_chain`), oldest first, once: the first start after the upgrade
/// does it, and nothing recorded later is ever linked this way.
#[tracing::instrument(name = "audit_chain::link_earlier_events", skip_all, err(level = "debug"))]
pub async fn link_earlier_events(db: &Db) -> Result<u64, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let (up_to,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(up_to_id) FROM audit_chain_backfill").fetch_one(&mut *tx).await?;
    let Some(up_to) = up_to else { return Ok(0) };
    let events: Vec<ChainedEvent> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events WHERE chain_hash IS NULL AND id <= $1 ORDER BY id"
    ))
    .bind(up_to)
    .fetch_all(&mut *tx)
    .await?;
    for event in &events {
        let (seq, hash) = link(&mut tx, &event.content).await?;
        sqlx::query("UPDATE audit_events SET chain_seq = $1, chain_hash = $2 WHERE id = $3")
            .bind(seq)
            .bind(hash)
            .bind(event.id)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM audit_chain_backfill").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(events.len() as u64)
}

/// Signs the head of every chain that grew since its last checkpoint; returns
/// how many were signed.
#[tracing::instrument(name = "audit_chain::sign_checkpoints", skip_all, err(level = "debug"))]
pub async fn sign_checkpoints(db: &Db, signer: &AuditSigner, now: Timestamp) -> Result<usize, sqlx::Error> {
    let heads: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT h.chain, h.seq, h.hash FROM audit_chain_heads h
         WHERE h.seq > COALESCE((SELECT MAX(c.seq) FROM audit_checkpoints c WHERE c.chain = h.chain), 0)
         ORDER BY h.chain",
    )
    .fetch_all(db.pool())
    .await?;
    for (chain, seq, hash) in &heads {
        let checkpoint = signer.sign(chain, *seq, hash, now.0);
        sqlx::query(
            "INSERT INTO audit_checkpoints (chain, seq, head_hash, signed_at, public_key, signature)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&checkpoint.chain)
        .bind(checkpoint.seq)
        .bind(&checkpoint.head_hash)
        .bind(checkpoint.signed_at)
        .bind(&checkpoint.public_key)
        .bind(&checkpoint.signature)
        .execute(db.pool())
        .await?;
    }
    Ok(heads.len())
}

/// An Organization's chain, for one of its Admins to export and verify
/// elsewhere (`chancery audit verify --file`).
#[tracing::instrument(name = "audit_chain::org_chain", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn org_chain(db: &Db, actor: &Actor, org_id: OrgId) -> AppResult<ChainRecord> {
    authz::org_admin(&mut *db.pool().acquire().await?, actor, org_id).await?;
    Ok(ChainRecord::load(db, Some(&org_id.to_string())).await?)
}

/// Verifies an Organization's chain, for one of its Admins.
#[tracing::instrument(name = "audit_chain::verify_org", skip_all, fields(actor = actor.kind(), org_id = %org_id), err(level = "debug"))]
pub async fn verify_org(
    db: &Db,
    actor: &Actor,
    org_id: OrgId,
    key: Option<&VerifyingKey>,
) -> AppResult<ChainReport> {
    authz::org_admin(&mut *db.pool().acquire().await?, actor, org_id).await?;
    Ok(ChainRecord::verify_stored(db, Some(&org_id.to_string()), key).await?)
}

/// The header lines of the CSV export's three tables.
const CSV_EVENTS: [&str; 13] = [
    "seq",
    "hash",
    "id",
    "created_at_ms",
    "org_id",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "details",
    "ip",
];
const CSV_HEAD: [&str; 2] = ["head_seq", "head_hash"];
const CSV_CHECKPOINTS: [&str; 6] =
    ["checkpoint_chain", "checkpoint_seq", "head_hash", "signed_at_ms", "public_key", "signature"];

/// A chain's newest place and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// Everything needed to check one chain, from the database or from an export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainRecord {
    pub chain: String,
    /// Its events, in their places (unlinked ones last, by id).
    pub events: Vec<ChainedEvent>,
    /// The head as the database keeps it.
    pub head: Option<ChainHead>,
    pub checkpoints: Vec<Checkpoint>,
}

impl ChainRecord {
    /// One chain as the database holds it: `None` for events of no Organization.
    #[tracing::instrument(name = "audit_chain::load", skip_all, err(level = "debug"))]
    pub async fn load(db: &Db, org_id: Option<&str>) -> Result<Self, sqlx::Error> {
        let record = Self::load_without_events(db, org_id).await?;
        let events: Vec<ChainedEvent> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE COALESCE(org_id, '') = $1
             ORDER BY chain_seq IS NULL, chain_seq, id"
        ))
        .bind(&record.chain)
        .fetch_all(db.pool())
        .await?;
        Ok(Self { events, ..record })
    }

    /// A chain's head and checkpoints.
    async fn load_without_events(db: &Db, org_id: Option<&str>) -> Result<Self, sqlx::Error> {
        let chain = org_id.unwrap_or("");
        let head: Option<ChainHead> =
            sqlx::query_as("SELECT seq, hash FROM audit_chain_heads WHERE chain = $1")
                .bind(chain)
                .fetch_optional(db.pool())
                .await?;
        let checkpoints: Vec<Checkpoint> = sqlx::query_as(
            "SELECT chain, seq, head_hash, signed_at, public_key, signature FROM audit_checkpoints
             WHERE chain = $1 ORDER BY seq, id",
        )
        .bind(chain)
        .fetch_all(db.pool())
        .await?;
        Ok(Self { chain: chain.to_string(), events: Vec::new(), head, checkpoints })
    }

    /// Every chain in the database: each Organization's, and the one of no Organization.
    #[tracing::instrument(name = "audit_chain::chains", skip_all, err(level = "debug"))]
    pub async fn chains(db: &Db) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT COALESCE(org_id, '') FROM audit_events
             UNION SELECT chain FROM audit_chain_heads
             UNION SELECT chain FROM audit_checkpoints",
        )
        .fetch_all(db.pool())
        .await?;
        let mut chains: Vec<String> = rows.into_iter().map(|(chain,)| chain).collect();
        chains.sort();
        Ok(chains)
    }

    /// The record as CSV that verifies offline like the JSON export: a table of
    /// events (every hashed column, with its place and hash; an empty cell is an
    /// absent value, Chancery records no empty text), then the head's, then the
    /// signed checkpoints' table, each under its own header line.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let mut line = |cells: &[&str]| {
            let cells: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
            out += &cells.join(",");
            out += "\r\n";
        };
        line(&CSV_EVENTS);
        for event in &self.events {
            let (seq, id, at) = (
                event.chain_seq.map(|s| s.to_string()),
                event.id.to_string(),
                event.content.created_at.to_string(),
            );
            let c = &event.content;
            let text = |value: &Option<String>| value.as_deref().unwrap_or("").to_owned();
            line(&[
                seq.as_deref().unwrap_or(""),
                event.chain_hash.as_deref().unwrap_or(""),
                &id,
                &at,
                &text(&c.org_id),
                &c.actor_type,
                &text(&c.actor_id),
                &c.actor_label,
                &c.action,
                &c.target_type,
                &text(&c.target_id),
                &text(&c.details),
                &text(&c.ip),
            ]);
        }
        line(&[]);
        line(&CSV_HEAD);
        if let Some(head) = &self.head {
            line(&[&head.seq.to_string(), &head.hash]);
        }
        line(&[]);
        line(&CSV_CHECKPOINTS);
        for c in &self.checkpoints {
            line(&[
                &c.chain,
                &c.seq.to_string(),
                &c.head_hash,
                &c.signed_at.to_string(),
                &c.public_key,
                &c.signature,
            ]);
        }
        out
    }

    /// Reads back what [`ChainRecord::to_csv`] wrote; the chain is its
    /// events' Organization (or its checkpoints').
    pub fn from_csv(text: &str) -> Result<Self, String> {
        let mut reader =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
        let mut record = Self::default();
        let mut table = None;
        for (number, row) in reader.records().enumerate() {
            let row = row.map_err(|err| format!("line {}: {err}", number + 1))?;
            let cells: Vec<&str> = row.iter().map(csv_text).collect();
            if cells.iter().all(|cell| cell.is_empty()) {
                continue;
            }
            let at = |what: &str| format!("line {}: {what}", number + 1);
            let number_in =
                |cell: &str| cell.parse::<i64>().map_err(|_| at(&format!("{cell:?} is not a number")));
            let optional = |cell: &str| (!cell.is_empty()).then(|| cell.to_string());
            let tables =
                [(&CSV_EVENTS[..], "events"), (&CSV_HEAD[..], "head"), (&CSV_CHECKPOINTS[..], "checkpoints")];
            if let Some((_, name)) = tables.iter().find(|(header, _)| cells == *header) {
                table = Some(*name);
                continue;
            }
            match (table, &cells[..]) {
                (
                    Some("events"),
                    [seq, hash, id, at_ms, org, actor_type, actor_id, label, action, target_type, target_id, details, ip],
                ) => {
                    record.events.push(ChainedEvent {
                        id: number_in(id)?,
                        content: Content {
                            org_id: optional(org),
                            actor_type: actor_type.to_string(),
                            actor_id: optional(actor_id),
                            actor_label: label.to_string(),
                            action: action.to_string(),
                            target_type: target_type.to_string(),
                            target_id: optional(target_id),
                            details: optional(details),
                            ip: optional(ip),
                            created_at: number_in(at_ms)?,
                        },
                        chain_seq: optional(seq).map(|seq| number_in(&seq)).transpose()?,
                        chain_hash: optional(hash),
                    });
                }
                (Some("head"), [seq, hash]) => {
                    record.head = Some(ChainHead { seq: number_in(seq)?, hash: hash.to_string() });
                }
                (Some("checkpoints"), [chain, seq, head_hash, signed_at, public_key, signature]) => {
                    record.checkpoints.push(Checkpoint {
                        chain: chain.to_string(),
                        seq: number_in(seq)?,
                        head_hash: head_hash.to_string(),
                        signed_at: number_in(signed_at)?,
                        public_key: public_key.to_string(),
                        signature: signature.to_string(),
                    });
                }
                (None, _) => return Err(at("not an audit log export (no header line)")),
                (Some(table), cells) => {
                    return Err(at(&format!("{} cells where the {table} table has others", cells.len())))
                }
            }
        }
        let first = record.events.first().and_then(|e| e.content.org_id.clone());
        record.chain =
            first.or_else(|| record.checkpoints.first().map(|c| c.chain.clone())).unwrap_or_default();
        Ok(record)
    }

    /// Walks the chain from its first place and names the first break; checks
    /// each checkpoint's signature with `key` (without one, signatures are not
    /// checked and only the links are).
    pub fn verify(&self, key: Option<&VerifyingKey>) -> ChainReport {
        let head = self.head.clone().map(|head| (head.seq, head.hash));
        let mut walk = Walk::new(&self.chain, head, &self.checkpoints, key);
        for event in &self.events {
            if walk.step(event.clone()) {
                break;
            }
        }
        walk.finish()
    }

    /// Verifies one chain as the database holds it, a page of events at a
    /// time: memory stays small whatever the chain's length.
    #[tracing::instrument(name = "audit_chain::verify_stored", skip_all, err(level = "debug"))]
    pub async fn verify_stored(
        db: &Db,
        org_id: Option<&str>,
        key: Option<&VerifyingKey>,
    ) -> Result<ChainReport, sqlx::Error> {
        const PAGE: i64 = 5_000;
        let Self { chain, head, checkpoints, .. } = Self::load_without_events(db, org_id).await?;
        let mut walk = Walk::new(&chain, head.map(|head| (head.seq, head.hash)), &checkpoints, key);
        // Linked events in their places, then any that were never linked.
        let (mut seq, mut id) = (i64::MIN, i64::MIN);
        loop {
            let page: Vec<ChainedEvent> = sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events
                 WHERE COALESCE(org_id, '') = $1 AND chain_seq IS NOT NULL
                   AND (chain_seq > $2 OR (chain_seq = $2 AND id > $3))
                 ORDER BY chain_seq, id LIMIT $4"
            ))
            .bind(&chain)
            .bind(seq)
            .bind(id)
            .bind(PAGE)
            .fetch_all(db.pool())
            .await?;
            let full = page.len() as i64 == PAGE;
            for event in page {
                (seq, id) = (event.chain_seq.unwrap_or_default(), event.id);
                if walk.step(event) {
                    return Ok(walk.finish());
                }
            }
            if !full {
                break;
            }
        }
        let unlinked: Option<ChainedEvent> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE COALESCE(org_id, '') = $1 AND chain_seq IS NULL
             ORDER BY id LIMIT 1"
        ))
        .bind(&chain)
        .fetch_optional(db.pool())
        .await?;
        if let Some(event) = unlinked {
            walk.step(event);
        }
        Ok(walk.finish())
    }
}

/// A walk along one chain, event by event, keeping only what the next link
/// needs; stops at the first break.
struct Walk<'a> {
    head: Option<(i64, String)>,
    signed: BTreeMap<i64, &'a Checkpoint>,
    prev: String,
    expected: i64,
    last_checkpoint: i64,
    /// The event read but not checked yet: whether it is in order shows with the next.
    pending: Option<ChainedEvent>,
    report: ChainReport,
}

impl<'a> Walk<'a> {
    fn new(
        chain: &str,
        head: Option<(i64, String)>,
        checkpoints: &'a [Checkpoint],
        key: Option<&VerifyingKey>,
    ) -> Self {
        let mut walk = Self {
            signed: BTreeMap::new(),
            prev: GENESIS.to_string(),
            expected: 1,
            last_checkpoint: 0,
            pending: None,
            report: ChainReport {
                chain: chain.to_string(),
                events: 0,
                head_seq: head.as_ref().map_or(0, |(seq, _)| *seq),
                checkpoints: checkpoints.len(),
                checkpoints_verified: 0,
                last_checkpoint: None,
                signatures_checked: key.is_some(),
                problem: None,
            },
            head,
        };
        for checkpoint in checkpoints {
            if checkpoint.chain != chain || key.is_some_and(|key| !checkpoint.signed_by(key)) {
                walk.report.problem = Some(Tamper::at(
                    TamperKind::BadCheckpoint,
                    checkpoint.seq,
                    None,
                    format!(
                        "The checkpoint of event {} signed at {} does not carry the operator's signature.",
                        checkpoint.seq,
                        Timestamp(checkpoint.signed_at).rfc3339()
                    ),
                ));
                break;
            }
            walk.signed.insert(checkpoint.seq, checkpoint);
        }
        walk
    }

    /// Takes the next event (in chain order); true once a break is found.
    fn step(&mut self, event: ChainedEvent) -> bool {
        if self.report.problem.is_some() {
            return true;
        }
        self.report.events += 1;
        if let Some(pending) = self.pending.take() {
            self.report.problem = self.check(&pending, Some(&event));
        }
        self.pending = Some(event);
        self.report.problem.is_some()
    }

    fn finish(mut self) -> ChainReport {
        if self.report.problem.is_none() {
            if let Some(last) = self.pending.take() {
                self.report.problem = self.check(&last, None);
            }
        }
        if self.report.problem.is_none() {
            self.report.problem = self.check_tail();
        }
        self.report
    }

    fn check(&mut self, event: &ChainedEvent, next: Option<&ChainedEvent>) -> Option<Tamper> {
        let expected = self.expected;
        let (Some(seq), Some(hash)) = (event.chain_seq, event.chain_hash.as_deref()) else {
            return Some(Tamper::at(
                TamperKind::Inserted,
                expected,
                Some(event.id),
                format!("Event {} ({}) is not linked into the chain.", event.id, event.content.action),
            ));
        };
        if seq < expected || self.head.as_ref().is_some_and(|(head, _)| seq > *head) {
            return Some(Tamper::at(
                TamperKind::Inserted,
                seq,
                Some(event.id),
                format!(
                    "Event {} ({}) claims place {seq}, which another event holds or the chain never reached.",
                    event.id, event.content.action
                ),
            ));
        }
        if seq > expected {
            return Some(missing(expected, seq - 1));
        }
        if let Some(next) = next.filter(|next| next.chain_seq.is_some() && next.id < event.id) {
            return Some(Tamper::at(
                TamperKind::Reordered,
                seq,
                Some(event.id),
                format!(
                    "Event {seq} was recorded after event {} (row {} before row {}): the events were reordered.",
                    seq + 1,
                    next.id,
                    event.id
                ),
            ));
        }
        if event.content.link_hash(seq, &self.prev) != hash {
            return Some(Tamper::at(
                TamperKind::Modified,
                seq,
                Some(event.id),
                format!("Event {seq} ({}) is not what was recorded.", event.content.action),
            ));
        }
        if let Some(checkpoint) = self.signed.get(&seq) {
            if checkpoint.head_hash != hash {
                let from = self.last_checkpoint + 1;
                return Some(Tamper::at(
                    TamperKind::Rewritten,
                    from,
                    None,
                    format!(
                        "Events {from} to {seq} are not those signed at {}: the chain was rewritten.",
                        Timestamp(checkpoint.signed_at).rfc3339()
                    ),
                ));
            }
            self.last_checkpoint = seq;
            self.report.checkpoints_verified += 1;
            self.report.last_checkpoint = Some(LastCheckpoint { seq, signed_at: checkpoint.signed_at });
        }
        self.prev = hash.to_string();
        self.expected += 1;
        None
    }

    /// After the last event: nothing the head or a checkpoint remembers is missing.
    fn check_tail(&self) -> Option<Tamper> {
        let last = self.expected - 1;
        let signed = self.signed.keys().next_back().copied();
        let tail = signed.into_iter().chain(self.head.as_ref().map(|(seq, _)| *seq)).max().unwrap_or(0);
        if tail > last {
            return Some(missing(last + 1, tail));
        }
        match &self.head {
            Some((seq, hash)) if *seq == last && *hash != self.prev => Some(Tamper::at(
                TamperKind::Modified,
                last,
                None,
                format!("Event {last} is not the one the chain's head recorded."),
            )),
            _ => None,
        }
    }
}

/// Events `from` to `to` are not there.
fn missing(from: i64, to: i64) -> Tamper {
    let which = if from == to { format!("{from} is") } else { format!("{from} to {to} are") };
    Tamper::at(TamperKind::Deleted, from, None, format!("The chain's event {which} missing."))
}

/// What checking one chain found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// The Organization's id; empty for events of no Organization.
    pub chain: String,
    pub events: usize,
    pub head_seq: i64,
    pub checkpoints: usize,
    /// Checkpoints the chain was found to pass through.
    pub checkpoints_verified: usize,
    pub last_checkpoint: Option<LastCheckpoint>,
    /// Whether checkpoints' signatures were checked (the operator's key was known).
    pub signatures_checked: bool,
    /// The first break, if any.
    pub problem: Option<Tamper>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheckpoint {
    pub seq: i64,
    pub signed_at: i64,
}

/// The first break found in a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tamper {
    pub kind: TamperKind,
    /// The place where the chain breaks.
    pub seq: i64,
    /// The row at fault, when there is one.
    pub event_id: Option<i64>,
    pub message: String,
}

impl Tamper {
    fn at(kind: TamperKind, seq: i64, event_id: Option<i64>, message: String) -> Self {
        Self { kind, seq, event_id, message }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TamperKind {
    /// An event's content or place differs from what was recorded.
    Modified,
    /// Events are missing from their places.
    Deleted,
    /// A row that was never recorded through the chain.
    Inserted,
    /// Events stored out of the order they were recorded in.
    Reordered,
    /// The links hold, but not through a signed head: the chain was rebuilt.
    Rewritten,
    /// A checkpoint the operator's key did not sign.
    BadCheckpoint,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, action: &str) -> Content {
        Content {
            org_id: Some("org".into()),
            actor_type: "user".into(),
            actor_id: Some("ada".into()),
            actor_label: "ada@example.com".into(),
            action: action.into(),
            target_type: "workspace".into(),
            target_id: Some(format!("w{id}")),
            details: None,
            ip: None,
            created_at: 1_000 + id,
        }
    }

    /// A chain of `n` events as `link` would have stored them, checkpointed at `signed`.
    fn chain(n: i64, signer: &AuditSigner, signed: &[i64]) -> ChainRecord {
        let mut prev = GENESIS.to_string();
        let mut events = Vec::new();
        let mut checkpoints = Vec::new();
        for seq in 1..=n {
            let content = event(seq, "workspace.create");
            let hash = content.link_hash(seq, &prev);
            if signed.contains(&seq) {
                checkpoints.push(signer.sign("org", seq, &hash, 5_000 + seq));
            }
            events.push(ChainedEvent {
                id: seq,
                content,
                chain_seq: Some(seq),
                chain_hash: Some(hash.clone()),
            });
            prev = hash;
        }
        ChainRecord { chain: "org".into(), events, head: Some(ChainHead { seq: n, hash: prev }), checkpoints }
    }

    fn broken(record: &ChainRecord, key: &VerifyingKey) -> Option<(TamperKind, i64)> {
        record.verify(Some(key)).problem.map(|p| (p.kind, p.seq))
    }

    #[test]
    fn the_csv_export_reads_back_as_written_and_still_shows_edits() {
        let signer = AuditSigner::generate();
        let mut record = chain(4, &signer, &[3]);
        // Texts a CSV or a spreadsheet could mangle.
        record.events[1].content.actor_label = "=HYPERLINK(\"x\"), 'o'brien\"\n-1".into();
        record.events[1].content.details = Some(r#"{"a":"b, c","q":"\"x\""}"#.into());
        record.events[2].content.ip = Some("192.0.2.1".into());
        let record = {
            // Relinked after the edits, as if recorded so.
            let mut prev = GENESIS.to_string();
            for event in &mut record.events {
                let hash = event.content.link_hash(event.chain_seq.unwrap(), &prev);
                event.chain_hash = Some(hash.clone());
                prev = hash;
            }
            record.head = Some(ChainHead { seq: 4, hash: prev });
            record.checkpoints =
                vec![signer.sign("org", 3, record.events[2].chain_hash.as_ref().unwrap(), 9)];
            record
        };
        let csv = record.to_csv();
        assert!(csv.starts_with("seq,hash,id,created_at_ms,org_id,"), "{csv}");
        let read = ChainRecord::from_csv(&csv).unwrap();
        assert_eq!(read, record);
        assert_eq!(read.verify(Some(&signer.verifying_key())).problem, None);
        let edited = csv.replace("ada@example.com", "eve@example.com");
        let read = ChainRecord::from_csv(&edited).unwrap();
        assert_eq!(broken(&read, &signer.verifying_key()), Some((TamperKind::Modified, 1)));
        assert!(ChainRecord::from_csv("a,b\r\n").unwrap_err().contains("no header line"));
    }

    #[test]
    fn an_untouched_chain_verifies_through_its_checkpoints() {
        let signer = AuditSigner::generate();
        let record = chain(5, &signer, &[2, 5]);
        let report = record.verify(Some(&signer.verifying_key()));
        assert_eq!(report.problem, None);
        assert_eq!((report.events, report.checkpoints_verified), (5, 2));
        assert_eq!(report.last_checkpoint.map(|c| c.seq), Some(5));
    }

    #[test]
    fn each_kind_of_tampering_is_named_where_it_begins() {
        let signer = AuditSigner::generate();
        let key = signer.verifying_key();
        let record = chain(6, &signer, &[3]);

        let mut edited = record.clone();
        edited.events[3].content.details = Some(r#"{"name":"forged"}"#.into());
        assert_eq!(broken(&edited, &key), Some((TamperKind::Modified, 4)));

        let mut deleted = record.clone();
        deleted.events.remove(2);
        assert_eq!(broken(&deleted, &key), Some((TamperKind::Deleted, 3)));

        let mut tail_cut = record.clone();
        tail_cut.events.truncate(4);
        assert_eq!(broken(&tail_cut, &key), Some((TamperKind::Deleted, 5)));

        let mut inserted = record.clone();
        inserted.events.push(ChainedEvent {
            id: 7,
            content: event(7, "user.log_in"),
            chain_seq: None,
            chain_hash: None,
        });
        assert_eq!(broken(&inserted, &key), Some((TamperKind::Inserted, 7)));

        let mut reordered = record.clone();
        reordered.events.swap(1, 2);
        reordered.events[1].chain_seq = Some(2);
        reordered.events[2].chain_seq = Some(3);
        assert_eq!(broken(&reordered, &key), Some((TamperKind::Reordered, 2)));
    }

    #[test]
    fn a_chain_rebuilt_with_fresh_hashes_misses_its_signed_head() {
        let signer = AuditSigner::generate();
        let record = chain(4, &signer, &[2, 4]);
        // Event 2 forged, and every hash from there recomputed: the links hold.
        let mut rebuilt = record.clone();
        rebuilt.events[1].content.action = "user.log_in".into();
        let mut prev = rebuilt.events[0].chain_hash.clone().unwrap();
        for event in &mut rebuilt.events[1..] {
            let hash = event.content.link_hash(event.chain_seq.unwrap(), &prev);
            event.chain_hash = Some(hash.clone());
            prev = hash;
        }
        rebuilt.head = Some(ChainHead { seq: 4, hash: prev });
        assert_eq!(broken(&rebuilt, &signer.verifying_key()), Some((TamperKind::Rewritten, 1)));

        // A checkpoint signed with another key is refused.
        let mut forged = record.clone();
        forged.checkpoints[1] = AuditSigner::generate().sign("org", 4, &forged.checkpoints[1].head_hash, 9);
        assert_eq!(broken(&forged, &signer.verifying_key()), Some((TamperKind::BadCheckpoint, 4)));
        // Without the key, only the links are checked.
        assert_eq!(forged.verify(None).problem, None);
    }

    #[test]
    fn keys_read_back_as_written() {
        let signer = AuditSigner::generate();
        let again = AuditSigner::parse(&signer.to_base64()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        assert_eq!(parse_public_key(&signer.public_key()), Some(signer.verifying_key()));
        assert!(AuditSigner::parse("not a key").is_none());
    }
}
