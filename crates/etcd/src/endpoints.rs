//! One client per endpoint, for a process that must keep using every member
//! of the cluster, those down when it started included.
//!
//! etcd-client balances one `Client` over several endpoints, but its balancer
//! misbehaves when one of them is down, and [`crate::connect`] leaves out the
//! endpoints that did not answer at connect. [`Endpoints`] instead makes a
//! client of its own for each endpoint (the same TLS: CA, client identity,
//! domain name); the caller picks the one each request goes through, and moves
//! to another when it fails. Which endpoint to use, and when to move, is the
//! caller's state: this type only knows how to reach each one.

use std::sync::Arc;

use etcd_client::Client;

use crate::config::EtcdConfig;
use crate::connect::{connect_one, endpoint_urls, options, Dial, TlsMaterial};
use crate::error::{classify, EtcdError};

/// Clients of the storage layer ask etcd to refuse a request at once when
/// the member has no leader (cut off from the quorum), so that it is moved
/// past within the deadline instead of holding every request until then.
const DIAL: Dial = Dial {
    with_identity: true,
    require_leader: true,
};

/// The endpoints of one etcd cluster and the means to reach each on its own.
#[derive(Clone)]
pub struct Endpoints {
    config: Arc<EtcdConfig>,
    material: TlsMaterial,
    urls: Vec<String>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("endpoints", &self.config.endpoints)
            .finish_non_exhaustive()
    }
}

impl Endpoints {
    /// Reads and checks the TLS files and the endpoints of `config`; no
    /// network I/O.
    pub fn new(config: &EtcdConfig) -> Result<Self, EtcdError> {
        let material = TlsMaterial::load(config)?;
        let urls = endpoint_urls(config)?;
        Ok(Self {
            config: Arc::new(config.clone()),
            material,
            urls,
        })
    }

    /// How many endpoints there are (at least one).
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never true: [`Endpoints::new`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Endpoint `index` as configured (`HOST:PORT`).
    pub fn endpoint(&self, index: usize) -> &str {
        &self.config.endpoints[index]
    }

    /// The config these endpoints come from.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// A client of endpoint `index` that connects on its first request and
    /// reconnects by itself after a failure; no network I/O here, so it
    /// succeeds whether the endpoint is up or not.
    pub async fn client(&self, index: usize) -> Result<Client, EtcdError> {
        let options = options(&self.config, &self.material, DIAL);
        Client::connect([&self.urls[index]], Some(options))
            .await
            .map_err(|err| {
                let ctx = crate::connect::context(&self.config, self.endpoint(index), true);
                classify(&err, &ctx)
            })
    }

    /// Connects to endpoint `index` and verifies it with a `status` request,
    /// naming the cause when it fails (as [`crate::connect`] does).
    pub async fn check(&self, index: usize) -> Result<Client, EtcdError> {
        connect_one(
            &self.config,
            &self.material,
            DIAL,
            self.endpoint(index),
            &self.urls[index],
        )
        .await
    }

    /// [`Endpoints::check`] of every endpoint at once, in the order of the
    /// config: a member that does not answer costs one deadline, not one
    /// per member.
    pub async fn check_each(&self) -> Vec<Result<Client, EtcdError>> {
        let checks: Vec<_> = (0..self.len())
            .map(|index| {
                let endpoints = self.clone();
                tokio::spawn(async move { endpoints.check(index).await })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(checks.len());
        for (index, check) in checks.into_iter().enumerate() {
            outcomes.push(check.await.unwrap_or_else(|err| {
                Err(EtcdError::Unavailable {
                    endpoint: self.endpoint(index).to_string(),
                    detail: format!("the check did not finish: {err}"),
                })
            }));
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use towerlock_testsupport::EtcdProcess;

    use super::*;

    #[tokio::test]
    async fn an_endpoint_down_at_check_is_reached_once_it_is_back() {
        let mut etcd = EtcdProcess::start().await;
        // The lab links its own copy of this crate: its config is another type.
        let lab = etcd.config();
        let config = EtcdConfig::new(lab.endpoints, lab.ca_cert_file, lab.cert_file, lab.key_file)
            .with_timeout(Duration::from_millis(500));
        let endpoints = Endpoints::new(&config).unwrap();
        etcd.kill();
        let err = endpoints.check(0).await.err().unwrap();
        assert!(err.is_unreachable(), "{err:?}");
        // The lazy client is made while etcd is down, and used once it is up.
        let mut client = endpoints.client(0).await.unwrap();
        etcd.restart().await;
        client.put("k", "v", None).await.unwrap();
        let checked = endpoints.check_each().await;
        assert!(matches!(checked.as_slice(), [Ok(_)]));
    }

    #[test]
    fn no_endpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths =
            towerlock_certs::write_seed_certs(dir.path(), &towerlock_certs::CertOptions::default())
                .unwrap();
        let config = EtcdConfig::new(
            Vec::new(),
            paths.ca_cert(),
            paths.client_cert(),
            paths.client_key(),
        );
        let err = Endpoints::new(&config).unwrap_err();
        assert!(matches!(err, EtcdError::InvalidEndpoint { .. }), "{err:?}");
    }
}
