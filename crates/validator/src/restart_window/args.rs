//! The command line of `wait-for-restart-window`, parsed without IO; the
//! identity file is read later, by [`IdentitySource::pubkey`].

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use solana_pubkey::Pubkey;
use solana_signer::Signer;

/// agave's default slot time, used when the cluster's cannot be measured.
pub const DEFAULT_SLOT_TIME: Duration = Duration::from_millis(400);

/// Wait until it is a good moment to restart the node or fail over: the
/// identity has no leader slot for the idle time, the node is healthy and
/// little stake is delinquent. Exits 0 when it is, 1 when it cannot become
/// one in this epoch or `--timeout` passed.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitForRestartWindowArgs {
    /// Validator identity to watch, as a pubkey or a keypair file
    /// [default: the node's own identity]
    #[arg(long, value_name = "PUBKEY|KEYPAIR")]
    pub identity: Option<IdentitySource>,

    /// Minimum time the identity must have no leader slot, in minutes
    /// (fractions allowed)
    #[arg(long, value_name = "MINUTES", default_value_t = 10.0, value_parser = parse_minutes)]
    pub min_idle_time: f64,

    /// Minimum idle window in slots; wins over --min-idle-time
    #[arg(long, value_name = "N")]
    pub min_idle_slots: Option<u64>,

    /// Wait while at least this percentage of the stake is delinquent
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0, value_parser = parse_percent)]
    pub max_delinquent_stake: f64,

    /// Accepted for compatibility with agave. This validator takes no
    /// snapshots, so there is never a new snapshot to wait for; the
    /// delinquency check still applies
    #[arg(long)]
    pub skip_new_snapshot_check: bool,

    /// Do not wait for the node to be healthy
    #[arg(long)]
    pub skip_health_check: bool,

    /// Give up (exit 1) after this long, like `90s`, `5m`, `1h30m`, `500ms`;
    /// a bare number is seconds [default: wait as long as it takes]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// The node's JSON-RPC URL [default: asked from the admin socket]
    #[arg(long, value_name = "URL")]
    pub rpc_url: Option<String>,
}

impl WaitForRestartWindowArgs {
    /// The defaults with nothing on the command line.
    pub fn new() -> Self {
        Self {
            identity: None,
            min_idle_time: 10.0,
            min_idle_slots: None,
            max_delinquent_stake: 5.0,
            skip_new_snapshot_check: false,
            skip_health_check: false,
            timeout: None,
            rpc_url: None,
        }
    }

    /// The idle window in slots: `--min-idle-slots`, else
    /// `--min-idle-time` over the slot time, rounded up.
    pub fn min_idle_slots(&self, slot_time: Duration) -> u64 {
        self.min_idle_slots
            .unwrap_or_else(|| minutes_to_slots(self.min_idle_time, slot_time))
    }
}

impl Default for WaitForRestartWindowArgs {
    fn default() -> Self {
        Self::new()
    }
}

/// `minutes` as slots of `slot_time`, rounded up.
pub fn minutes_to_slots(minutes: f64, slot_time: Duration) -> u64 {
    let slot = slot_time.as_secs_f64();
    if slot <= 0.0 {
        return 0;
    }
    // A tiny tolerance so that 10 min / 0.4 s is 1500, not 1501.
    (minutes * 60.0 / slot - 1e-9).ceil().max(0.0) as u64
}

/// `--identity`: a pubkey, or a keypair file to take the pubkey from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Pubkey(Pubkey),
    KeypairFile(PathBuf),
}

impl FromStr for IdentitySource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<Pubkey>() {
            Ok(pubkey) => IdentitySource::Pubkey(pubkey),
            Err(_) => IdentitySource::KeypairFile(PathBuf::from(s)),
        })
    }
}

impl IdentitySource {
    /// The pubkey (reads the keypair file).
    pub fn pubkey(&self) -> anyhow::Result<Pubkey> {
        match self {
            IdentitySource::Pubkey(pubkey) => Ok(*pubkey),
            IdentitySource::KeypairFile(path) => solana_keypair::read_keypair_file(path)
                .map(|k| k.pubkey())
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| {
                    format!(
                        "--identity {}: neither a pubkey nor a readable keypair file",
                        path.display()
                    )
                }),
        }
    }
}

pub fn parse_minutes(s: &str) -> Result<f64, String> {
    let m: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if m.is_finite() && m >= 0.0 {
        Ok(m)
    } else {
        Err("must be a number of minutes, 0 or more".into())
    }
}

pub fn parse_percent(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|e| format!("{e}"))?;
    if (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err("must be a percentage between 0 and 100".into())
    }
}

/// `90s`, `5m`, `1h30m`, `1.5m`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, s);
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{s}`: a number needs a unit (ms, s, m, h)"))?;
        if number_len == 0 {
            return Err(format!("`{s}`: expected a number before `{rest}`"));
        }
        let value: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("`{s}`: bad number `{}`", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            unit => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    secs_to_duration(total, s)
}

fn secs_to_duration(secs: f64, s: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}`: not a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WaitForRestartWindowArgs,
    }

    fn parse(line: &[&str]) -> Result<WaitForRestartWindowArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("x").chain(line.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults_are_agaves() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.min_idle_time, 10.0);
        assert_eq!(args.max_delinquent_stake, 5.0);
        assert_eq!(args.min_idle_slots(DEFAULT_SLOT_TIME), 1500);
        assert!(args.identity.is_none() && args.timeout.is_none() && args.rpc_url.is_none());
    }

    #[test]
    fn min_idle_slots_wins_over_minutes_and_minutes_may_be_fractional() {
        let args = parse(&["--min-idle-time", "0.5", "--min-idle-slots", "7"]).unwrap();
        assert_eq!(args.min_idle_slots(DEFAULT_SLOT_TIME), 7);
        let args = parse(&["--min-idle-time", "0.5"]).unwrap();
        assert_eq!(args.min_idle_slots(DEFAULT_SLOT_TIME), 75);
        // Faster slots: more of them in the same time; rounded up.
        assert_eq!(args.min_idle_slots(Duration::from_millis(25)), 1200);
        assert_eq!(minutes_to_slots(0.01, Duration::from_millis(400)), 2);
        assert!(parse(&["--min-idle-time", "-1"]).is_err());
    }

    #[test]
    fn identity_is_a_pubkey_or_a_keypair_file() {
        let keypair = solana_keypair::Keypair::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator-keypair.json");
        solana_keypair::write_keypair_file(&keypair, &path).unwrap();

        let pubkey = keypair.pubkey().to_string();
        let args = parse(&["--identity", &pubkey]).unwrap();
        assert_eq!(
            args.identity,
            Some(IdentitySource::Pubkey(keypair.pubkey()))
        );
        let args = parse(&["--identity", path.to_str().unwrap()]).unwrap();
        assert_eq!(args.identity.unwrap().pubkey().unwrap(), keypair.pubkey());

        let missing = IdentitySource::from_str("no-such-file.json").unwrap();
        let err = format!("{:#}", missing.pubkey().unwrap_err());
        assert!(err.contains("no-such-file.json"), "{err}");
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("90s"), Duration::from_secs(90));
        assert_eq!(d("90"), Duration::from_secs(90));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5m"), Duration::from_secs(90));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        for bad in ["", "5x", "m", "-3s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let args = parse(&["--timeout", "2m"]).unwrap();
        assert_eq!(args.timeout, Some(Duration::from_secs(120)));
    }

    #[test]
    fn percent_is_bounded() {
        assert_eq!(
            parse(&["--max-delinquent-stake", "7.5"])
                .unwrap()
                .max_delinquent_stake,
            7.5
        );
        assert!(parse(&["--max-delinquent-stake", "101"]).is_err());
    }

    #[test]
    fn snapshot_flag_is_accepted_and_documented() {
        assert!(
            parse(&["--skip-new-snapshot-check", "--skip-health-check"])
                .unwrap()
                .skip_new_snapshot_check
        );
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("takes no snapshots"), "{help}");
    }

    #[test]
    fn rpc_url_override() {
        let args = parse(&["--rpc-url", "http://127.0.0.1:8899"]).unwrap();
        assert_eq!(args.rpc_url.as_deref(), Some("http://127.0.0.1:8899"));
    }
}
