//! etcd's access control for towerlock: one user and role per staked
//! identity, each limited to that identity's keys; a read-only user; root.
//!
//! With `--client-cert-auth`, etcd takes the user of a request from the
//! client certificate's common name. So a validator presenting the
//! certificate of identity `A` (CN `A`) is user `A`, whose role `A` grants
//! read and write on the key range `<prefix>A/` only: it cannot read or
//! write another identity's tower or fence. The reader's role grants read on
//! the whole `<prefix>` range. `root` (CN `root`) keeps the administrator's
//! rights, which setting access up again needs once auth is on.
//!
//! Every step is idempotent: users and roles that exist are kept, grants
//! that exist are granted again, enabling auth twice is allowed. Users have
//! no password: only their certificates authenticate them.

use etcd_client::{Client, Permission, UserAddOptions};

/// etcd's administrator user and role.
pub const ROOT: &str = "root";

/// Who gets access to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPlan {
    /// `--etcd-key-prefix`: every towerlock key starts with it.
    pub key_prefix: String,
    /// Staked identities (base-58 pubkeys): each becomes a user and a role
    /// with read and write on `<key_prefix><identity>/`.
    pub identities: Vec<String>,
    /// The read-only user (the reader certificate's common name), with read
    /// on `<key_prefix>`; `None`: no reader.
    pub reader: Option<String>,
}

impl AccessPlan {
    /// The key range (as a prefix) of `identity`.
    pub fn identity_prefix(&self, identity: &str) -> String {
        format!("{}{identity}/", self.key_prefix)
    }
}

/// What [`setup_access`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessReport {
    /// Users created by this run (those that existed are not listed).
    pub users_added: Vec<String>,
    /// Roles created by this run.
    pub roles_added: Vec<String>,
    /// Every grant made (again): `(role, description of the range)`.
    pub grants: Vec<(String, String)>,
}

/// Creates the users and roles of `plan` through `client` (connected as
/// `root`, or as anyone while auth is still off), grants each its range,
/// makes `root` an administrator, and enables authentication.
pub async fn setup_access(
    client: &mut Client,
    plan: &AccessPlan,
) -> Result<AccessReport, etcd_client::Error> {
    let mut report = AccessReport::default();
    let users = client.user_list().await?.users().to_vec();
    let roles = client.role_list().await?.roles().to_vec();

    add_user(client, &users, ROOT, &mut report).await?;
    client.user_grant_role(ROOT, ROOT).await?;

    for identity in &plan.identities {
        let prefix = plan.identity_prefix(identity);
        add_role(client, &roles, identity, &mut report).await?;
        client
            .role_grant_permission(
                identity.as_str(),
                Permission::read_write(prefix.as_str()).with_prefix(),
            )
            .await?;
        report
            .grants
            .push((identity.clone(), format!("read and write on {prefix}*")));
        add_user(client, &users, identity, &mut report).await?;
        client
            .user_grant_role(identity.as_str(), identity.as_str())
            .await?;
    }

    if let Some(reader) = &plan.reader {
        add_role(client, &roles, reader, &mut report).await?;
        let permission = if plan.key_prefix.is_empty() {
            Permission::read(Vec::<u8>::new()).with_all_keys()
        } else {
            Permission::read(plan.key_prefix.as_str()).with_prefix()
        };
        client
            .role_grant_permission(reader.as_str(), permission)
            .await?;
        report
            .grants
            .push((reader.clone(), format!("read on {}*", plan.key_prefix)));
        add_user(client, &users, reader, &mut report).await?;
        client
            .user_grant_role(reader.as_str(), reader.as_str())
            .await?;
    }

    client.auth_enable().await?;
    Ok(report)
}

async fn add_user(
    client: &mut Client,
    existing: &[String],
    name: &str,
    report: &mut AccessReport,
) -> Result<(), etcd_client::Error> {
    if !existing.iter().any(|u| u == name) {
        client
            .user_add(name, "", Some(UserAddOptions::new().with_no_pwd()))
            .await?;
        report.users_added.push(name.to_string());
    }
    Ok(())
}

async fn add_role(
    client: &mut Client,
    existing: &[String],
    name: &str,
    report: &mut AccessReport,
) -> Result<(), etcd_client::Error> {
    if !existing.iter().any(|r| r == name) {
        client.role_add(name).await?;
        report.roles_added.push(name.to_string());
    }
    Ok(())
}
