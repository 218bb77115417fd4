//! The cluster's bank and gossip streams, reopened when they close.

use std::time::{Duration, Instant};

use towerlock_wire::{
    api::{BankNotification, SignedContactInfo, BANK_SUBSCRIBE, GOSSIP_SUBSCRIBE},
    client::{ClientError, Subscription},
    votor::{VotorNotification, VOTOR_SUBSCRIBE},
};

use super::{
    driver::bounded,
    machine::{Event, Stream},
};

/// How long the node tries to reopen a dropped subscription before exiting.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// The cluster's bank and gossip streams, and Votor's on Alpenglow.
pub(super) struct Streams {
    ws_url: String,
    banks: Subscription,
    gossip: Subscription,
    votor: Option<Subscription>,
}

impl Streams {
    /// Opens the streams; Votor's too when `votor`.
    pub(super) async fn open(ws_url: String, votor: bool) -> Result<Self, String> {
        let open = |method| bounded(method, Subscription::open(&ws_url, method));
        let banks = open(BANK_SUBSCRIBE).await?;
        let gossip = open(GOSSIP_SUBSCRIBE).await?;
        let votor = match votor {
            true => Some(open(VOTOR_SUBSCRIBE).await?),
            false => None,
        };
        Ok(Self {
            ws_url: ws_url.clone(),
            banks,
            gossip,
            votor,
        })
    }

    /// Reopens a stream (the cluster replays what is live, which the fork
    /// view absorbs), retrying for [`RECONNECT_FOR`].
    pub(super) async fn reopen(&mut self, stream: Stream) -> Result<(), String> {
        let method = match stream {
            Stream::Banks => BANK_SUBSCRIBE,
            Stream::Gossip => GOSSIP_SUBSCRIBE,
            Stream::Votor => VOTOR_SUBSCRIBE,
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
            Stream::Votor => self.votor = Some(subscription),
        }
        Ok(())
    }

    /// The next event from any stream; banks and Votor's first, so a node
    /// thawed after a takeover meets the fence on its next vote before it
    /// reads the gossip that announced the takeover.
    pub(super) async fn next(&mut self) -> Option<Event> {
        let votor = &mut self.votor;
        let votor = async move {
            match votor {
                Some(votor) => votor.next::<VotorNotification>().await,
                None => std::future::pending().await,
            }
        };
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
            notification = votor => match notification {
                Ok(notification) => Some(Event::Votor(notification)),
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable Votor notification");
                    None
                }
                Err(e) => Some(Event::StreamClosed { stream: Stream::Votor, reason: e.to_string() }),
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
