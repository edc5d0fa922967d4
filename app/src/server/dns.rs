//! DNS lookups for verified domains: the TXT records at a name, from the
//! system's resolver or from one name server the operator chooses
//! (`CHANCERY_DNS_SERVER`; the tests point it at a server of their own).

use std::net::SocketAddr;

use hickory_resolver::{
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
    TokioResolver,
};

#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DNS lookup failed: {0}")]
pub struct DnsError(String);

impl Dns {
    /// The system's resolver (`/etc/resolv.conf`), or the name server at `server`.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, DnsError> {
        let builder = match server {
            None => TokioResolver::builder_tokio().map_err(|e| DnsError(e.to_string()))?,
            Some(server) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut connection| {
                        connection.port = server.port();
                        connection
                    })
                    .collect();
                let name_server = NameServerConfig::new(server.ip(), true, connections);
                let config = ResolverConfig::from_name_servers(vec![name_server]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
        };
        let mut builder = builder;
        let options = builder.options_mut();
        // A record just published must be seen at the next try.
        options.cache_size = 0;
        // An Admin waits on the answer: an unreachable server is reported in
        // seconds (the defaults took 15 s), and they can try again.
        options.timeout = std::time::Duration::from_secs(2);
        options.attempts = 1;
        Ok(Self { resolver: builder.build().map_err(|e| DnsError(e.to_string()))? })
    }

    /// The TXT strings at `name`; none if the name or the records do not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => {
                        Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect())
                    }
                    _ => None,
                })
                .collect()),
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => Ok(Vec::new()),
            Err(error) => Err(DnsError(error.to_string())),
        }
    }
}
