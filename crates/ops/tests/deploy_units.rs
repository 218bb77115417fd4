//! `deploy/`: the systemd units pass only flags their programs know (each
//! program's `--help`, with the units' environment files expanded), and pass
//! `systemd-analyze verify` where it can run; the Grafana dashboard and the
//! Prometheus alert rules name only metrics the validator and the sentinel
//! export; every `--log` file of the units is rotated, and the rotation
//! signals units that exist.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy(path: &str) -> PathBuf {
    root().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The units in `deploy/systemd`, by file name.
fn units() -> Vec<(String, String)> {
    let mut units: Vec<(String, String)> = std::fs::read_dir(deploy("systemd"))
        .expect("deploy/systemd")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "service"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, read(&path))
        })
        .collect();
    units.sort();
    let names: Vec<&str> = units.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "etcd.service",
            "towerlock-sentinel.service",
            "towerlock-validator-primary.service",
            "towerlock-validator-secondary.service",
        ]
    );
    units
}

/// `(key, value)` of every setting, continuation lines joined, comments
/// skipped.
fn settings(unit: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in unit.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                if let Some((key, value)) = pending.split_once('=') {
                    out.push((key.trim().to_string(), value.trim().to_string()));
                }
                pending.clear();
            }
        }
    }
    out
}

fn exec_lines(unit: &str) -> Vec<(String, String)> {
    settings(unit)
        .into_iter()
        .filter(|(key, _)| key.starts_with("Exec"))
        .collect()
}

/// `KEY=VALUE` lines of an environment file.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {line}"));
            (key.to_string(), value.trim_matches('"').to_string())
        })
        .collect()
}

/// The shipped files standing for each `EnvironmentFile=` of the unit:
/// `/etc/default/NAME` is `deploy/default/NAME`; etcd's also each member of
/// the three-member example.
fn environments(unit: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut files = Vec::new();
    for (key, value) in settings(unit) {
        if key != "EnvironmentFile" {
            continue;
        }
        let path = value.trim_start_matches('-');
        let name = path
            .strip_prefix("/etc/default/")
            .unwrap_or_else(|| panic!("EnvironmentFile outside /etc/default: {path}"));
        files.push(format!("default/{name}"));
        if name == "towerlock-etcd" {
            files.extend((1..=3).map(|n| format!("etcd-3-members/member-{n}.env")));
        }
    }
    if files.is_empty() {
        return vec![("no environment file".into(), HashMap::new())];
    }
    files
        .into_iter()
        .map(|file| {
            let env = parse_env(&read(&deploy(&file)));
            (format!("deploy/{file}"), env)
        })
        .collect()
}

/// systemd's expansion: `${NAME}` inside a word, `$NAME` alone as its words.
fn expand(command: &str, env: &HashMap<String, String>) -> Result<Vec<String>, String> {
    let lookup = |name: &str| {
        env.get(name)
            .cloned()
            .ok_or_else(|| format!("${name} is set by no environment file"))
    };
    let mut words = Vec::new();
    for word in command.split_whitespace() {
        if let Some(name) = word.strip_prefix('$').filter(|n| !n.starts_with('{')) {
            words.extend(lookup(name)?.split_whitespace().map(String::from));
            continue;
        }
        let mut out = String::new();
        let mut rest = word;
        while let Some(start) = rest.find("${") {
            let end = rest[start..]
                .find('}')
                .ok_or(format!("unclosed in {word}"))?;
            out.push_str(&rest[..start]);
            out.push_str(&lookup(&rest[start + 2..start + end])?);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        words.push(out);
    }
    Ok(words)
}

/// The built binary (or installed etcd) standing for a unit's program.
fn program(path: &str) -> PathBuf {
    let towerlock = Path::new(env!("CARGO_BIN_EXE_towerlock"));
    let name = Path::new(path).file_name().unwrap().to_string_lossy();
    let found = match name.as_ref() {
        "towerlock" => towerlock.to_path_buf(),
        "towerlock-validator" => towerlock.with_file_name("towerlock-validator"),
        "etcd" => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("etcd"))
            .find(|path| path.is_file())
            .expect("etcd is not on PATH: install it (apt-get install etcd-server)"),
        other => panic!("a unit runs {other}, which this test does not know"),
    };
    assert!(
        found.is_file(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        found.display()
    );
    found
}

fn help(program: &Path, subcommand: Option<&str>) -> String {
    let mut command = Command::new(program);
    command.args(subcommand).arg("--help");
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?} failed: {text}");
    text
}

/// The subcommands a clap `--help` lists under `Commands:`.
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next().map(String::from))
        .collect()
}

/// Whether `help` lists `flag` as an option (not merely as part of a longer
/// one).
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let before = help[..at].chars().next_back();
        let after = help[at + flag.len()..].chars().next();
        matches!(before, None | Some(' ' | '\t' | '\n' | '[' | ','))
            && !matches!(after, Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// `--name` of `--name=value`, `-l` of `-l`; None for values.
fn flag_of(word: &str) -> Option<&str> {
    if let Some(long) = word.strip_prefix("--") {
        let name = long.split('=').next().unwrap();
        return (!name.is_empty()).then(|| &word[..name.len() + 2]);
    }
    let short = word.strip_prefix('-')?;
    (short.len() == 1 && short.chars().all(|c| c.is_ascii_alphabetic())).then_some(word)
}

/// One expanded command line checked against its program's help: flags
/// before a subcommand against the program's, after it against the
/// subcommand's. Returns each unknown flag with the help it is missing from,
/// and how many flags were checked.
fn check_command(words: &[String], helps: &mut HashMap<String, String>) -> (Vec<String>, usize) {
    let path = words[0].trim_start_matches(['-', '@', ':', '+', '!']);
    let program = program(path);
    let name = Path::new(path).file_name().unwrap().to_string_lossy();
    let mut asked = format!("{name} --help");
    let mut help_of = |sub: Option<&str>| {
        let key = format!("{} {}", program.display(), sub.unwrap_or(""));
        helps
            .entry(key)
            .or_insert_with(|| help(&program, sub))
            .clone()
    };
    let top = help_of(None);
    let commands = subcommands(&top);
    let mut current = top;
    let (mut unknown, mut checked) = (Vec::new(), 0);
    for word in &words[1..] {
        if commands.contains(word.as_str()) {
            current = help_of(Some(word));
            asked = format!("{name} {word} --help");
            continue;
        }
        if let Some(flag) = flag_of(word) {
            checked += 1;
            if !lists_flag(&current, flag) {
                unknown.push(format!("{flag} is not in `{asked}`"));
            }
        }
    }
    (unknown, checked)
}

#[test]
fn every_flag_the_units_pass_is_in_the_programs_help() {
    let mut helps = HashMap::new();
    let mut problems = Vec::new();
    for (name, text) in units() {
        let lines = exec_lines(&text);
        assert!(
            lines.iter().any(|(key, _)| key == "ExecStart"),
            "{name}: no ExecStart"
        );
        for (env_name, env) in environments(&text) {
            for (key, command) in &lines {
                let words = match expand(command, &env) {
                    Ok(words) => words,
                    Err(e) => {
                        problems.push(format!("{name} {key} with {env_name}: {e}"));
                        continue;
                    }
                };
                let (unknown, checked) = check_command(&words, &mut helps);
                assert!(checked > 0, "{name} {key}: no flag found in {command}");
                for flag in unknown {
                    problems.push(format!("{name} {key} with {env_name}: {flag}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The unit with each `Exec*=` program replaced by the built binary's path.
fn with_built_programs(unit: &str) -> String {
    let mut out = String::new();
    for line in unit.lines() {
        match line.split_once('=') {
            Some((key, value)) if key.starts_with("Exec") => {
                let prefix_len =
                    value.len() - value.trim_start_matches(['-', '@', ':', '+', '!']).len();
                let (prefix, rest) = value.split_at(prefix_len);
                let (path, args) = rest.split_once(' ').unwrap_or((rest, ""));
                let built = program(path);
                out.push_str(&format!("{key}={prefix}{} {args}\n", built.display()));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn systemd_analyze_verify(files: &[PathBuf]) -> std::io::Result<(bool, String)> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(files)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[test]
fn the_units_pass_systemd_analyze_verify_where_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // A unit that must pass: if even this fails, systemd-analyze cannot
    // verify anything in this environment.
    let probe = dir.path().join("towerlock-probe.service");
    let towerlock = env!("CARGO_BIN_EXE_towerlock");
    std::fs::write(
        &probe,
        format!("[Service]\nExecStart={towerlock} --version\n"),
    )
    .unwrap();
    match systemd_analyze_verify(std::slice::from_ref(&probe)) {
        Ok((true, _)) => {}
        Ok((false, text)) => {
            println!("systemd-analyze verify cannot run here (a trivial unit fails: {text}); only the flags are checked");
            return;
        }
        Err(e) => {
            println!("systemd-analyze is not available ({e}); only the flags are checked");
            return;
        }
    }
    std::fs::remove_file(&probe).unwrap();
    let units = units();
    let files: Vec<PathBuf> = units
        .iter()
        .map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, with_built_programs(text)).unwrap();
            path
        })
        .collect();
    let (ok, text) = systemd_analyze_verify(&files).expect("systemd-analyze ran a moment ago");
    // It warns about an unknown key or a bad value and still exits 0.
    let about_ours: Vec<&str> = text
        .lines()
        .filter(|line| units.iter().any(|(name, _)| line.contains(name.as_str())))
        .collect();
    assert!(
        ok && about_ours.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

/// Every `towerlock_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.match_indices("towerlock_")
        .filter(|(at, _)| {
            let before = text[..*at].chars().next_back();
            !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// The non-test source of the validator and the sentinel crates.
fn metrics_sources() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs")
                && path.file_name().is_some_and(|name| name != "tests.rs")
            {
                let text = read(&path);
                let code = text.split("#[cfg(test)]").next().unwrap().to_string();
                out.push(code);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("crates/validator/src"), &mut out);
    walk(&root().join("crates/sentinel/src"), &mut out);
    out
}

/// Whether the code exports `name`: the full name appears in it, or it is a
/// `"short"` name in a file that renders `towerlock_{name}`. A histogram's
/// `_bucket`, `_sum` and `_count` series count as its name's.
fn exported(name: &str, sources: &[String]) -> bool {
    let mut candidates = vec![name];
    for suffix in ["_bucket", "_sum", "_count"] {
        candidates.extend(name.strip_suffix(suffix));
    }
    candidates.iter().any(|candidate| {
        let short = format!("\"{}\"", candidate.trim_start_matches("towerlock_"));
        sources.iter().any(|source| {
            metric_names(source).contains(*candidate)
                || (source.contains("towerlock_{name}") && source.contains(&short))
        })
    })
}

fn assert_all_exported(what: &str, names: &BTreeSet<String>) {
    let sources = metrics_sources();
    assert!(
        exported("towerlock_role", &sources) && !exported("towerlock_no_such_metric", &sources),
        "the source no longer looks as this test expects"
    );
    let missing: Vec<&String> = names.iter().filter(|n| !exported(n, &sources)).collect();
    assert!(
        missing.is_empty(),
        "{what} uses metrics the validator and the sentinel do not export: {missing:?}"
    );
}

/// Every string under a key named `expr`, or a template variable's query.
fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", serde_json::Value::String(query)) => {
                        out.push(query.clone());
                    }
                    _ => queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| queries(item, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_parses_and_uses_only_exported_metrics() {
    let text = read(&deploy("grafana/towerlock.json"));
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let variables: BTreeMap<&str, &str> = dashboard["templating"]["list"]
        .as_array()
        .expect("template variables")
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["type"].as_str().unwrap()))
        .collect();
    assert_eq!(variables.get("datasource"), Some(&"datasource"));
    assert_eq!(variables.get("instance"), Some(&"query"));
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = &panel["title"];
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            assert!(expr.contains("$instance"), "{title}: {expr}");
        }
    }
    let mut all = Vec::new();
    queries(&dashboard, &mut all);
    let names: BTreeSet<String> = all.iter().flat_map(|q| metric_names(q)).collect();
    for expected in [
        "towerlock_role",
        "towerlock_last_vote_slot",
        "towerlock_last_vote_timestamp_seconds",
        "towerlock_store_seconds_bucket",
        "towerlock_store_failures_total",
        "towerlock_fence_token",
        "towerlock_etcd_cert_expiry_timestamp_seconds",
        "towerlock_sentinel_state",
        "towerlock_sentinel_checks_total",
        "towerlock_sentinel_promotions_total",
        "towerlock_sentinel_last_failover_phase_seconds",
    ] {
        assert!(
            names.contains(expected),
            "the dashboard shows no {expected}"
        );
    }
    assert_all_exported("the dashboard", &names);
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

#[test]
fn the_alert_rules_are_complete_and_use_only_exported_metrics() {
    let text = read(&deploy("prometheus/towerlock-alerts.yml"));
    let file: RuleFile =
        serde_norway::from_str(&text).expect("alert rules: alert, expr, for, labels, annotations");
    let rules: Vec<&AlertRule> = file.groups.iter().flat_map(|g| &g.rules).collect();
    assert!(file.groups.iter().all(|g| !g.name.is_empty()));
    let mut seen = BTreeSet::new();
    for rule in &rules {
        assert!(seen.insert(&rule.alert), "{} twice", rule.alert);
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("info" | "warning" | "critical")),
            "{}: severity {severity:?}",
            rule.alert
        );
        for key in ["summary", "description"] {
            assert!(
                rule.annotations.contains_key(key),
                "{}: no {key}",
                rule.alert
            );
        }
        let digits = rule.for_.trim_end_matches(['s', 'm', 'h']);
        assert!(
            digits.parse::<u32>().is_ok(),
            "{}: for {}",
            rule.alert,
            rule.for_
        );
    }
    let exprs: Vec<&str> = rules.iter().map(|r| r.expr.as_str()).collect();
    for watched in [
        "towerlock_last_vote_timestamp_seconds",
        "towerlock_store_failures_total",
        "changes(towerlock_fence_token",
        "towerlock_role",
        "towerlock_etcd_cert_expiry_timestamp_seconds",
        "towerlock_sentinel_promotions_total",
        "up{job=\"towerlock-sentinel\"}",
        "absent(up{job=\"towerlock-sentinel\"})",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(watched)),
            "no rule on {watched}"
        );
    }
    let names = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert_all_exported("the alert rules", &names);
}

#[test]
fn every_log_file_of_the_units_is_rotated_and_the_rotation_signals_shipped_units() {
    let rotate = read(&deploy("logrotate/towerlock"));
    let units = units();
    for (name, text) in &units {
        for (_, command) in exec_lines(text) {
            let words: Vec<&str> = command.split_whitespace().collect();
            for pair in words.windows(2) {
                if matches!(pair[0], "--log" | "-o" | "--timeline") {
                    assert!(
                        rotate.contains(pair[1]),
                        "{name} writes {}, which deploy/logrotate/towerlock does not rotate",
                        pair[1]
                    );
                }
            }
        }
    }
    let signalled: Vec<&str> = rotate
        .split_whitespace()
        .filter(|word| word.ends_with(".service"))
        .collect();
    assert!(rotate.contains("USR1") && !signalled.is_empty());
    for unit in signalled {
        assert!(
            units.iter().any(|(name, _)| name == unit),
            "logrotate signals {unit}, which deploy/systemd does not ship"
        );
    }
}
