//! The node as the admin RPC sees it: requests become [`Command`]s for the
//! driver, answers come from what the driver publishes.

use std::{net::SocketAddr, sync::Arc, time::SystemTime};

use async_trait::async_trait;
use solana_keypair::Keypair;
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    driver::{AdminRequest, Published},
    machine::Command,
};
use crate::admin::{AdminError, AdminHandler, ContactInfoView, NodeStatus};

/// Replaces the log filter (a `tracing_subscriber` reload handle).
pub type LogFilterSetter = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub struct NodeHandle {
    commands: mpsc::Sender<AdminRequest>,
    published: watch::Receiver<Published>,
    start_time: SystemTime,
    rpc_addr: Option<SocketAddr>,
    set_log_filter: Option<LogFilterSetter>,
}

impl NodeHandle {
    pub fn new(
        commands: mpsc::Sender<AdminRequest>,
        published: watch::Receiver<Published>,
        rpc_addr: Option<SocketAddr>,
        set_log_filter: Option<LogFilterSetter>,
    ) -> Self {
        Self {
            commands,
            published,
            start_time: SystemTime::now(),
            rpc_addr,
            set_log_filter,
        }
    }

    async fn ask(&self, command: Command) -> Result<(), AdminError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send((command, reply))
            .await
            .map_err(|_| AdminError::Stopped)?;
        answer.await.map_err(|_| AdminError::Stopped)?
    }

    fn running(&self) -> Result<Published, AdminError> {
        let published = self.published.borrow().clone();
        if published.caught_up {
            Ok(published)
        } else {
            Err(AdminError::Starting)
        }
    }
}

#[async_trait]
impl AdminHandler for NodeHandle {
    async fn exit(&self) -> Result<(), AdminError> {
        self.ask(Command::Exit).await
    }

    fn start_time(&self) -> SystemTime {
        self.start_time
    }

    fn start_progress(&self) -> String {
        if self.published.borrow().caught_up {
            "Running".into()
        } else {
            "Initializing".into()
        }
    }

    async fn contact_info(&self) -> Result<ContactInfoView, AdminError> {
        self.running()?
            .contact
            .ok_or_else(|| AdminError::Failed("no contact info yet".into()))
    }

    async fn rpc_address(&self) -> Result<Option<SocketAddr>, AdminError> {
        Ok(self.rpc_addr)
    }

    async fn set_identity(&self, keypair: Keypair, require_tower: bool) -> Result<(), AdminError> {
        self.running()?;
        self.ask(Command::SetIdentity {
            keypair,
            require_tower,
        })
        .await
    }

    async fn add_authorized_voter(&self, keypair: Keypair) -> Result<(), AdminError> {
        self.ask(Command::AddAuthorizedVoter { keypair }).await
    }

    async fn remove_all_authorized_voters(&self) -> Result<(), AdminError> {
        self.ask(Command::RemoveAllAuthorizedVoters).await
    }

    async fn set_log_filter(&self, filter: String) -> Result<(), AdminError> {
        match &self.set_log_filter {
            Some(set) => set(&filter).map_err(AdminError::InvalidParams),
            None => Err(AdminError::Failed(
                "the log filter cannot be changed".into(),
            )),
        }
    }

    async fn status(&self) -> Result<NodeStatus, AdminError> {
        Ok(self.published.borrow().status.clone())
    }
}
