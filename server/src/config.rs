//! Configuration: command-line flags, each with an environment variable and a default
//! that runs Chancery on this machine with nothing else installed.

use std::{net::SocketAddr, time::Duration};

use app::server::audit_chain::AuditSigner;
use clap::Args;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/chancery.db?mode=rwc";

#[derive(Clone, Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path?mode=rwc` (created and migrated on first start)
    /// or `postgres://user@host:5432/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address and port to listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// The URL people use to reach Chancery (links in emails; `https://` turns on Secure cookies).
    /// Defaults to `http://<listen address>`.
    #[arg(long, env = "CHANCERY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Mark the session cookie `Secure` (sent over HTTPS only). Defaults to true when the
    /// public URL is `https://`.
    #[arg(long, env = "CHANCERY_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,

    /// How many proxies of yours stand in front of Chancery. With N, the client address is the
    /// N-th `X-Forwarded-For` entry from the right (what your outermost proxy saw); entries a client
    /// adds to the left are ignored. 0: the socket peer is the client.
    #[arg(long, env = "CHANCERY_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: u8,

    /// SMTP server that delivers emails (invitations...): `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host:465`, or `smtp://host:25` for a local relay. Without it, emails
    /// stay in the outbox (`chancery outbox`).
    #[arg(long, env = "CHANCERY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// An OpenAI-compatible API the gateway forwards model calls to, up to `/v1`
    /// (e.g. `https://api.mistral.ai/v1`). Without it, a built-in mock provider answers.
    #[arg(long, env = "CHANCERY_UPSTREAM_URL")]
    pub upstream_url: Option<String>,

    /// The API key for the upstream.
    #[arg(long, env = "CHANCERY_UPSTREAM_KEY", hide_env_values = true, default_value = "")]
    pub upstream_key: String,

    /// The longest the upstream may take to answer a request, in seconds. A request
    /// that runs out is answered 504 and billed its whole hold.
    #[arg(long, env = "CHANCERY_UPSTREAM_TIMEOUT_SECS", default_value_t = 120)]
    pub upstream_timeout_secs: u64,

    /// The longest a streamed answer may take, first byte to last, in seconds.
    #[arg(long, env = "CHANCERY_UPSTREAM_STREAM_TIMEOUT_SECS", default_value_t = 600)]
    pub upstream_stream_timeout_secs: u64,

    /// Where the gateway spools usage before the database has it, so a crash loses none;
    /// replayed at the next start. One directory per running process.
    #[arg(long, env = "CHANCERY_SPOOL_DIR", default_value = "data/spool")]
    pub spool_dir: std::path::PathBuf,

    /// Usage events held in memory on their way to the database; beyond, the spool
    /// alone keeps them until the meter reads them back.
    #[arg(long, env = "CHANCERY_METER_QUEUE", default_value_t = app::server::gateway::meter::QUEUE_CAPACITY)]
    pub meter_queue: usize,

    /// Who may create an account on their own: `open` (anyone), `invite-only`, or
    /// `domains:example.com,example.org` (addresses there). Invitations and single
    /// sign-on make accounts whatever it is.
    #[arg(long = "signup", env = "CHANCERY_SIGNUP", default_value = "open")]
    pub sign_up: app::model::SignUpPolicy,

    /// The DNS server that verifies domains' TXT records (`host:port`); the system's
    /// resolver without it.
    #[arg(long, env = "CHANCERY_DNS_SERVER")]
    pub dns_server: Option<std::net::SocketAddr>,

    /// The key that seals secrets Chancery must read back (identity providers' client
    /// secrets), created on the first start. Keep it out of database backups; give every
    /// replica the same file. Lost, those secrets must be entered again.
    #[arg(long, env = "CHANCERY_SECRET_KEY_FILE", default_value = "data/secret.key")]
    pub secret_key_file: std::path::PathBuf,

    /// The sender of emails.
    #[arg(long, env = "CHANCERY_MAIL_FROM", default_value = "Chancery <chancery@localhost>")]
    pub mail_from: String,

    /// Redis holding the gateway's rate and spend counters, shared by every replica:
    /// `redis://host:6379`. Without it each process counts alone, right for one replica.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// The Ed25519 key that signs the audit log's checkpoints (`chancery audit keygen` makes
    /// one). Without it the log is still chained, but a chain rewritten whole would not show.
    #[arg(long, env = "CHANCERY_AUDIT_SIGNING_KEY", hide_env_values = true, value_parser = audit_signer)]
    pub audit_signing_key: Option<AuditSigner>,

    /// Days raw usage rows are kept; hourly roll-ups (reports, budgets) stay.
    #[arg(long, env = "CHANCERY_USAGE_RETENTION_DAYS", default_value_t = app::server::housekeeping::USAGE_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub usage_retention_days: u32,

    /// A token that lets Prometheus read `/metrics` on the main address
    /// (`Authorization: Bearer <token>`). Without it (and without
    /// `--metrics-listen`) there is no `/metrics`.
    #[arg(long, env = "CHANCERY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// An address of its own for `/metrics`, with no token (keep it internal):
    /// `127.0.0.1:9100`.
    #[arg(long, env = "CHANCERY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How often each audit chain's newest event is signed, in seconds.
    #[arg(long, env = "CHANCERY_AUDIT_CHECKPOINT_SECS", default_value_t = 300)]
    pub audit_checkpoint_secs: u64,
}

/// A key as `chancery audit keygen` writes it.
pub fn audit_signer(text: &str) -> Result<AuditSigner, String> {
    AuditSigner::parse(text)
        .ok_or_else(|| "not a key made by `chancery audit keygen` (32 bytes, base64)".into())
}

impl ServeArgs {
    pub fn audit_checkpoint_every(&self) -> Duration {
        Duration::from_secs(self.audit_checkpoint_secs.max(1))
    }

    pub fn upstream(&self) -> Option<app::server::gateway::Upstream> {
        self.upstream_url.as_ref().map(|url| app::server::gateway::Upstream {
            timeout: Duration::from_secs(self.upstream_timeout_secs),
            stream_timeout: Duration::from_secs(self.upstream_stream_timeout_secs),
            ..app::server::gateway::Upstream::new(url, &self.upstream_key)
        })
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| self.public_url().starts_with("https://"))
    }
}
