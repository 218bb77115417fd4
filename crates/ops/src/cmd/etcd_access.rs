//! `towerlock etcd setup-access`: etcd's access control, one user per staked
//! identity, limited to that identity's keys.

use std::process::ExitCode;

use towerlock_certs::{CertificateInfo, ROOT_COMMON_NAME};
use towerlock_etcd::{classify_request_error, connect, AccessPlan, EtcdArgs, EtcdConfig};

#[derive(Debug, clap::Args)]
#[command(mut_arg("etcd_endpoint", |arg| arg.required(true)))]
#[command(mut_arg("etcd_cert_file", |arg| {
    arg.help("PEM file of the certificate of etcd's root user (root.pem, CN root)")
}))]
#[command(mut_arg("etcd_key_file", |arg| arg.help("PEM file of its private key (root-key.pem)")))]
pub struct SetupAccessArgs {
    #[command(flatten)]
    etcd: EtcdArgs,

    /// A staked identity (base-58 pubkey, or its keypair file): its
    /// certificate (validator-<PUBKEY>.pem, CN the pubkey) may read and
    /// write the keys under <prefix><PUBKEY>/ and nothing else. Repeat for
    /// each identity; running again with more identities adds them.
    #[arg(long, value_name = "PUBKEY|KEYPAIR-FILE", required = true)]
    identity: Vec<String>,

    /// Common name of the read-only certificate (the sentinel's, fence
    /// status'): it may read every key under the prefix, write none.
    #[arg(long, value_name = "NAME", default_value = towerlock_certs::READER_COMMON_NAME)]
    reader_cn: String,
}

/// Creates the users and roles, makes `root` the administrator and turns
/// authentication on; prints what each certificate may do.
pub async fn setup_access(args: SetupAccessArgs) -> anyhow::Result<ExitCode> {
    let config = EtcdConfig::from(args.etcd);
    let cert = CertificateInfo::read(&config.cert_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    if cert.common_name != ROOT_COMMON_NAME {
        anyhow::bail!(
            "setup-access needs the certificate of etcd's root user (common name {ROOT_COMMON_NAME}, \
             root.pem from towerlock certs init), but {} has common name {:?}: once access control is \
             on, only root may change it",
            config.cert_file.display(),
            cert.common_name
        );
    }
    let mut identities = Vec::new();
    for identity in &args.identity {
        let pubkey = super::certs::identity_pubkey(identity)?;
        if !identities.contains(&pubkey) {
            identities.push(pubkey);
        }
    }
    let plan = AccessPlan {
        key_prefix: config.key_prefix.clone(),
        identities,
        reader: Some(args.reader_cn.trim().to_string()).filter(|r| !r.is_empty()),
    };
    let mut client = connect(&config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = towerlock_etcd::setup_access(&mut client, &plan)
        .await
        .map_err(|e| anyhow::anyhow!("{}", classify_request_error(&e, &config)))?;

    let list = |names: &[String]| {
        if names.is_empty() {
            "none (all existed)".to_string()
        } else {
            names.join(", ")
        }
    };
    println!("users added: {}", list(&report.users_added));
    println!("roles added: {}", list(&report.roles_added));
    for (role, range) in &report.grants {
        println!("  {role}: {range}");
    }
    println!("  {ROOT_COMMON_NAME}: everything (etcd's administrator)");
    println!(
        "access control is on: etcd takes each request's user from the client certificate's \
         common name; a certificate whose name is not a user above is refused"
    );
    Ok(ExitCode::SUCCESS)
}
