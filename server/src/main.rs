//! `chancery`: the server binary and the operator's command line.

use app::{
    ids::{EnterpriseId, OrgId},
    model::{CatalogueModel, ModelKind},
    money::{format_usd, parse_usd},
    server::{
        actor::{Actor, Client},
        audit_chain::{self, AuditSigner, ChainRecord},
        domains, enterprise, mail, models, sso,
    },
};
use clap::{Parser, Subcommand};
use server::config::{DatabaseArgs, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "chancery",
    version,
    about = "Self-hosted administration plane and gateway for LLM API platforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web UI and APIs (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
    /// Print the newest emails (invitations...) and whether they were delivered.
    Outbox {
        #[command(flatten)]
        database: DatabaseArgs,
        /// How many messages, newest first.
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
    /// Operator commands for Enterprise Accounts.
    #[command(subcommand)]
    Enterprise(EnterpriseCommand),
    /// The model catalogue and its prices.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Operator commands for Organizations' verified domains.
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Operator commands for Organizations' single sign-on.
    #[command(subcommand)]
    Sso(SsoCommand),
    /// The tamper-evident audit log: its signing key and its verification.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Make an Ed25519 key to sign the audit log's checkpoints. Keep the key secret and give it
    /// to every replica as CHANCERY_AUDIT_SIGNING_KEY; give the public key to whoever verifies.
    Keygen,
    /// Check the audit log's chains, from the database or from an export: exits with 1 naming
    /// the first event modified, deleted, inserted or reordered.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Only this Organization's chain.
        #[arg(long, conflicts_with = "file")]
        org: Option<OrgId>,
        /// An Organization's export (`GET /api/admin/audit-logs/export`, JSON or `?format=csv`) instead of the database.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// The public key the checkpoints must be signed with (as `keygen` printed it).
        #[arg(long, env = "CHANCERY_AUDIT_PUBLIC_KEY")]
        public_key: Option<String>,
        /// Or the signing key itself, whose public half is then used.
        #[arg(long, env = "CHANCERY_AUDIT_SIGNING_KEY", hide_env_values = true, value_parser = server::config::audit_signer)]
        signing_key: Option<AuditSigner>,
    },
}

#[derive(Debug, Subcommand)]
enum SsoCommand {
    /// Break glass: let an Organization's members log in with passwords again
    /// when its identity provider is unreachable or misconfigured (Admins then
    /// fix or remove it). Audited as the operator.
    AllowPasswords {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The Organization's id (shown under Settings > Require single sign-on).
        #[arg(long)]
        org: OrgId,
    },
}

#[derive(Debug, Subcommand)]
enum DomainsCommand {
    /// Verify a domain for an Organization without DNS (for installs without
    /// public DNS): claimed and verified at once, audited as the operator.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The Organization's id.
        #[arg(long)]
        org: OrgId,
        /// The domain, e.g. example.com.
        #[arg(long)]
        domain: String,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// List the models the gateway serves, with their prices.
    List(DatabaseArgs),
    /// Add a model or change its prices.
    Set {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The model id clients ask for, e.g. `mistral-large-latest`.
        #[arg(long)]
        id: String,
        /// `chat` or `embedding`.
        #[arg(long, default_value = "chat")]
        kind: String,
        /// US dollars per million input tokens, e.g. `2` or `0.1`.
        #[arg(long)]
        input_usd_per_mtok: String,
        /// US dollars per million output tokens.
        #[arg(long, default_value = "0")]
        output_usd_per_mtok: String,
        /// The most tokens one image costs on this model (a vision model's largest image);
        /// without it, requests with images are refused for this model.
        #[arg(long)]
        image_max_tokens: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum EnterpriseCommand {
    /// Create a company's first Enterprise Account, linking existing Organizations.
    Create {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The Enterprise Account's name.
        #[arg(long)]
        name: String,
        /// Id of an Organization to link (repeat for several).
        #[arg(long = "org", required = true)]
        orgs: Vec<OrgId>,
        /// Email of an admin of one of those Organizations: the first Enterprise Account admin.
        #[arg(long)]
        admin: String,
    },
    /// Link one more Organization to an Enterprise Account.
    LinkOrg {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The Enterprise Account's id.
        #[arg(long)]
        enterprise: EnterpriseId,
        /// The Organization's id.
        #[arg(long)]
        org: OrgId,
    },
}

/// `serve` with only its environment variables and defaults.
#[derive(Debug, Parser)]
struct DefaultServe {
    #[command(flatten)]
    args: ServeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let _tracing = server::telemetry::install_subscriber()?;
    // No command at all (as `cargo leptos serve` runs it) means `serve` with its defaults.
    let command = Cli::parse()
        .command
        .unwrap_or_else(|| Command::Serve(Box::new(DefaultServe::parse_from(["chancery"]).args)));
    match command {
        Command::Serve(args) => server::serve(*args).await,
        Command::Migrate(args) => {
            server::Db::connect_and_migrate(&args.database_url).await?;
            println!("Database is up to date.");
            Ok(())
        }
        Command::Outbox { database, limit } => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            for message in mail::outbox(&db, limit).await? {
                let delivery = match (message.sent_at, &message.last_error) {
                    (Some(sent), _) => format!("sent {}", sent.rfc3339()),
                    (None, Some(error)) => format!("not sent after {} tries: {error}", message.attempts),
                    (None, None) => "not sent (no SMTP server configured, or waiting)".into(),
                };
                println!(
                    "To: {}\nDate: {}\nSubject: {}\nDelivery: {delivery}\n\n{}\n",
                    message.to_email,
                    message.created_at.rfc3339(),
                    message.subject,
                    message.body
                );
            }
            Ok(())
        }
        Command::Models(ModelsCommand::List(database)) => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            println!(
                "{:<28} {:<10} {:>14} {:>14} {:>17}",
                "MODEL", "KIND", "INPUT $/MTOK", "OUTPUT $/MTOK", "IMAGE MAX TOKENS"
            );
            for m in models::list(&db).await? {
                let (input, output) =
                    (format_usd(m.input_micros_per_mtok), format_usd(m.output_micros_per_mtok));
                let images = m.image_max_tokens.map_or_else(|| "no images".to_string(), |t| t.to_string());
                println!("{:<28} {:<10} {input:>14} {output:>14} {images:>17}", m.id, m.kind.as_str());
            }
            Ok(())
        }
        Command::Models(ModelsCommand::Set {
            database,
            id,
            kind,
            input_usd_per_mtok,
            output_usd_per_mtok,
            image_max_tokens,
        }) => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            let kind =
                ModelKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("--kind must be chat or embedding"))?;
            let model = CatalogueModel {
                id: id.clone(),
                kind,
                input_micros_per_mtok: parse_usd("input_usd_per_mtok", &input_usd_per_mtok)?,
                output_micros_per_mtok: parse_usd("output_usd_per_mtok", &output_usd_per_mtok)?,
                image_max_tokens,
            };
            models::set(&db, &Actor::Operator, &Client::default(), model).await?;
            println!("Model {id} saved.");
            Ok(())
        }
        Command::Enterprise(EnterpriseCommand::Create { database, name, orgs, admin }) => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            let created =
                enterprise::create(&db, &Actor::Operator, &Client::default(), &name, &orgs, &admin).await?;
            println!("Created Enterprise Account {:?} with id {}.", created.name, created.id);
            Ok(())
        }
        Command::Enterprise(EnterpriseCommand::LinkOrg { database, enterprise: id, org }) => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            enterprise::link_org(&db, &Actor::Operator, &Client::default(), id, org).await?;
            println!("Linked Organization {org} to Enterprise Account {id}.");
            Ok(())
        }
        Command::Domains(DomainsCommand::Verify { database, org, domain }) => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            let verified = domains::verify_by_operator(&db, &Actor::Operator, org, &domain).await?;
            println!("Verified {} for Organization {org}.", verified.domain);
            Ok(())
        }
        Command::Audit(AuditCommand::Keygen) => {
            let signer = AuditSigner::generate();
            println!("CHANCERY_AUDIT_SIGNING_KEY={}", signer.to_base64());
            println!("CHANCERY_AUDIT_PUBLIC_KEY={}", signer.public_key());
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { database, org, file, public_key, signing_key }) => {
            let key = match (public_key, signing_key) {
                (Some(text), _) => Some(audit_chain::parse_public_key(&text).ok_or_else(|| {
                    anyhow::anyhow!("--public-key is not a key printed by `chancery audit keygen`")
                })?),
                (None, Some(signer)) => Some(signer.verifying_key()),
                (None, None) => None,
            };
            if key.is_none() {
                println!("No public key given: checkpoints' signatures are not checked, only the links.");
            }
            let reports = match file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
                    // The export's JSON or CSV form.
                    let record = if text.starts_with('{') {
                        serde_json::from_str::<ChainRecord>(&text).map_err(|err| err.to_string())
                    } else {
                        ChainRecord::from_csv(&text)
                    };
                    let record = record.map_err(|err| {
                        anyhow::anyhow!("{} is not an audit log export: {err}", path.display())
                    })?;
                    vec![record.verify(key.as_ref())]
                }
                None => {
                    let db = server::Db::connect_and_migrate(&database.database_url).await?;
                    let chains = match org {
                        Some(org) => vec![org.to_string()],
                        None => ChainRecord::chains(&db).await?,
                    };
                    let mut reports = Vec::with_capacity(chains.len());
                    for chain in chains {
                        let org = Some(chain.as_str()).filter(|c| !c.is_empty());
                        reports.push(ChainRecord::verify_stored(&db, org, key.as_ref()).await?);
                    }
                    reports
                }
            };
            let mut broken = 0;
            for report in &reports {
                let name = if report.chain.is_empty() {
                    "events of no Organization".into()
                } else {
                    format!("Organization {}", report.chain)
                };
                let signed = match &report.last_checkpoint {
                    Some(last) => format!(
                        "{} checkpoint(s), the last at event {} signed {}",
                        report.checkpoints_verified,
                        last.seq,
                        app::time::Timestamp(last.signed_at).rfc3339()
                    ),
                    None => "no checkpoint".into(),
                };
                match &report.problem {
                    None => println!("{name}: intact, {} events, {signed}.", report.events),
                    Some(problem) => {
                        broken += 1;
                        println!("{name}: TAMPERED ({:?}): {}", problem.kind, problem.message);
                    }
                }
            }
            anyhow::ensure!(broken == 0, "{broken} of {} audit chains are not intact", reports.len());
            Ok(())
        }
        Command::Sso(SsoCommand::AllowPasswords { database, org }) => {
            let db = server::Db::connect_and_migrate(&database.database_url).await?;
            sso::allow_passwords(&db, &Actor::Operator, &Client::default(), org).await?;
            println!("Members of Organization {org} may log in with passwords again.");
            Ok(())
        }
    }
}
