//! The cluster's bank and gossip streams, reopened when they close.

use std::time::{Duration, Instant};

use towerlock_wire::{
    api::{BankNotification, SignedContactInfo, BANK_SUBSCRIBE, GOSSIP_SUBSCRIBE},
    client::{ClientError, Subscription},
};

use super::{
    driver::bounded,
    machine::{Event, Stream},
};

/// How long the node tries to reopen a dropped subscription before exiting.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// The cluster's bank and gossip streams.
pub(super) struct Streams {
    ws_url: String,
    banks: Subscription,
    gossip: Subscription,
}

impl Streams {
    pub(super) async fn open(ws_url: String) -> Result<Self, String> {
        let open = |method| bounded(method, Subscription::open(&ws_url, method));
        let banks = open(BANK_SUBSCRIBE).await?;
        let gossip = open(GOSSIP_SUBSCRIBE).await?;
        Ok(Self {
            ws_url: ws_url.clone(),
            banks,
            gossip,
        })
    }

    /// Reopens a stream (the cluster replays what is live, which the fork
    /// view absorbs), retrying for [`RECONNECT_FOR`].
    pub(super) async fn reopen(&mut self, stream: Stream) -> Result<(), String> {
        let method = match stream {
            Stream::Banks => BANK_SUBSCRIBE,
            Stream::Gossip => GOSSIP_SUBSCRIBE,
        };
        let until = Instant::now() + RECONNECT_FOR;
        let subscription = loop {
            match bounded(method, Subscription::open(&self.ws_url, method)).await {
                Ok(subscription) => break subscription,
                Err(err) if Instant::now() >= until => {
                    return Err(format!(
                        "reopening {method} for {RECONNECT_FOR:?} failed: {err}"
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        tracing::info!(method, "subscription restored");
        match stream {
            Stream::Banks => self.banks = subscription,
            Stream::Gossip => self.gossip = subscription,
        }
        Ok(())
    }

    /// The next event from either stream; banks first, so a node thawed
    /// after a takeover meets the fence on its next vote before it reads
    /// the gossip that announced the takeover.
    pub(super) async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            bank = self.banks.next::<BankNotification>() => match bank {
                Ok(bank) => Some(Event::Bank(bank)),
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable bank notification");
                    None
                }
                Err(e) => Some(Event::StreamClosed { stream: Stream::Banks, reason: e.to_string() }),
            },
            contact = self.gossip.next::<SignedContactInfo>() => match contact {
                Ok(contact) => Some(Event::Contact(contact)),
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable contact info");
                    None
                }
                Err(e) => Some(Event::StreamClosed { stream: Stream::Gossip, reason: e.to_string() }),
            },
        }
    }
}
