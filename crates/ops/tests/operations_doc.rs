//! `docs/operations.md`: every command line of its `sh` blocks that runs
//! `towerlock` or `towerlock-validator` names a subcommand that exists, and
//! passes only flags that subcommand's `--help` lists (the real binaries are
//! asked). Command lines of `etcd`, `etcdctl` and `etcdutl` are checked the
//! same way against their own `--help` where they are installed; one that is
//! not is skipped, and the test says so.
//!
//! Command lines are found as a shell would split them: `\` continuations
//! joined, heredoc bodies and comments skipped, split at `&&`, `||`, `|`,
//! `;` and `&`, then leading variable assignments, `sudo` and its options,
//! and wrappers such as `systemd-run` dropped; a program is known by its
//! file name, so `/usr/local/bin/towerlock` is `towerlock`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md")
}

/// One command line of the guide: where it starts, and its words.
#[derive(Debug, Clone)]
struct CommandLine {
    line: usize,
    words: Vec<String>,
}

/// The bodies of the fenced `sh` blocks, each line with its line number.
fn sh_blocks(markdown: &str) -> Vec<Vec<(usize, String)>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<(usize, String)>> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        match current.as_mut() {
            None if trimmed.starts_with("```") => {
                let info = trimmed.trim_start_matches('`').trim();
                if matches!(info, "sh" | "bash" | "shell" | "console") {
                    current = Some(Vec::new());
                } else if !info.is_empty() {
                    // Another language: skip to its end without parsing.
                    current = None;
                }
            }
            Some(body) if trimmed.starts_with("```") => {
                blocks.push(std::mem::take(body));
                current = None;
            }
            Some(body) => body.push((index + 1, line.to_string())),
            None => {}
        }
    }
    assert!(current.is_none(), "an sh block of the guide is not closed");
    blocks
}

/// Logical lines: `\` continuations joined, heredoc bodies dropped.
fn logical_lines(block: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut heredoc: Option<String> = None;
    for (number, line) in block {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((*number, String::new()));
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                text.push_str(head);
                text.push(' ');
                pending = Some((start, text));
            }
            None => {
                text.push_str(line);
                heredoc = heredoc_end(&text);
                out.push((start, text));
            }
        }
    }
    assert!(
        pending.is_none(),
        "a command line ends with `\\` at the end of its block"
    );
    out
}

/// The terminator of a heredoc the line opens (`<<EOF`, `<<'EOF'`, `<<-EOF`).
fn heredoc_end(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("<<")?;
    let word: String = rest
        .trim_start_matches('-')
        .trim_start()
        .trim_matches(|c| c == '\'' || c == '"')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// A shell token: a word (quotes removed) or a control operator.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Operator,
}

/// Splits a logical line into words and operators, as sh would (quotes,
/// backslash escapes, `$( … )` kept within its word, `#` comments).
fn tokenize(line: &str) -> Vec<Token> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = Vec::new();
    let mut word: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => flush(&mut word, &mut tokens),
            '#' if word.is_none() => break,
            '&' | '|' | ';' => {
                flush(&mut word, &mut tokens);
                if tokens.last() != Some(&Token::Operator) {
                    tokens.push(Token::Operator);
                }
            }
            '\'' => i = quoted(&chars, i, '\'', word.get_or_insert_with(String::new)),
            '"' => i = quoted(&chars, i, '"', word.get_or_insert_with(String::new)),
            '\\' if i + 1 < chars.len() => {
                word.get_or_insert_with(String::new).push(chars[i + 1]);
                i += 1;
            }
            '>' | '<' => {
                // A redirection and its target are no arguments (`2>` drops its fd).
                if word
                    .as_deref()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                {
                    word = None;
                }
                flush(&mut word, &mut tokens);
                i = redirection_end(&chars, i);
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                i = substitution(&chars, i, word.get_or_insert_with(String::new));
            }
            _ => word.get_or_insert_with(String::new).push(c),
        }
        i += 1;
    }
    flush(&mut word, &mut tokens);
    tokens
}

/// The index of the last character of the redirection at `chars[start]`
/// (its operator, spaces, and the target word).
fn redirection_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while chars
        .get(i + 1)
        .is_some_and(|c| matches!(c, '>' | '<' | '&'))
    {
        i += 1;
    }
    while chars.get(i + 1) == Some(&' ') {
        i += 1;
    }
    while chars
        .get(i + 1)
        .is_some_and(|c| !matches!(c, ' ' | '\t' | ';' | '|' | '&'))
    {
        i += 1;
    }
    i
}

fn flush(word: &mut Option<String>, tokens: &mut Vec<Token>) {
    if let Some(word) = word.take() {
        tokens.push(Token::Word(word));
    }
}

/// Appends the quoted text starting at `chars[open]`; returns the index of
/// the closing quote.
fn quoted(chars: &[char], open: usize, quote: char, word: &mut String) -> usize {
    let mut i = open + 1;
    while i < chars.len() && chars[i] != quote {
        if quote == '"' && chars[i] == '\\' && i + 1 < chars.len() {
            i += 1;
        }
        word.push(chars[i]);
        i += 1;
    }
    assert!(
        i < chars.len(),
        "unclosed {quote} in: {}",
        chars.iter().collect::<String>()
    );
    i
}

/// Appends `$( … )` starting at `chars[dollar]`, nested parentheses
/// included; returns the index of its closing parenthesis.
fn substitution(chars: &[char], dollar: usize, word: &mut String) -> usize {
    let mut depth = 0;
    let mut i = dollar;
    while i < chars.len() {
        word.push(chars[i]);
        match chars[i] {
            '(' => depth += 1,
            ')' if depth == 1 => return i,
            ')' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    panic!("unclosed $( in: {}", chars.iter().collect::<String>());
}

/// The program a simple command runs and its arguments, with variable
/// assignments, shell keywords, `sudo` (and its options) and wrappers
/// dropped. `None` for an assignment alone or an empty command.
fn program_and_args(words: &[String]) -> Option<(String, Vec<String>)> {
    const KEYWORDS: [&str; 6] = ["do", "then", "else", "!", "time", "exec"];
    const WRAPPERS: [&str; 4] = ["sudo", "env", "nohup", "systemd-run"];
    // Options of those wrappers that take a separate value.
    const VALUED: [&str; 10] = [
        "-u",
        "-g",
        "-C",
        "-D",
        "-p",
        "-U",
        "--unit",
        "--uid",
        "--gid",
        "--property",
    ];
    let mut rest = words;
    loop {
        let first = rest.first()?;
        if is_assignment(first) || KEYWORDS.contains(&first.as_str()) {
            rest = &rest[1..];
        } else if WRAPPERS.contains(&first.as_str()) {
            rest = &rest[1..];
            while let Some(option) = rest.first().filter(|w| w.starts_with('-')) {
                let skip = if VALUED.contains(&option.as_str()) {
                    2
                } else {
                    1
                };
                rest = rest.get(skip..)?;
            }
        } else {
            let name = Path::new(first).file_name()?.to_string_lossy().into_owned();
            return Some((name, rest[1..].to_vec()));
        }
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// Every command line of the guide's `sh` blocks that runs one of
/// `programs`, by program.
fn command_lines(markdown: &str) -> BTreeMap<String, Vec<CommandLine>> {
    let mut found: BTreeMap<String, Vec<CommandLine>> = BTreeMap::new();
    for block in sh_blocks(markdown) {
        for (line, text) in logical_lines(&block) {
            let mut words = Vec::new();
            let mut tokens = tokenize(&text);
            tokens.push(Token::Operator);
            for token in tokens {
                match token {
                    Token::Word(word) => words.push(word),
                    Token::Operator => {
                        if let Some((program, args)) = program_and_args(&words) {
                            found
                                .entry(program)
                                .or_default()
                                .push(CommandLine { line, words: args });
                        }
                        words.clear();
                    }
                }
            }
        }
    }
    found
}

/// What a (sub)command's `--help` says it accepts.
#[derive(Debug, Default)]
struct Help {
    /// Long (`--name`) and short (`-n`) flags; true when they take a value.
    flags: HashMap<String, bool>,
    subcommands: BTreeSet<String>,
    /// It takes positional arguments.
    positionals: bool,
    /// A subcommand must be given.
    needs_subcommand: bool,
}

/// Parses clap's `--help`: option rows are indented by 2 (`-l, --ledger`)
/// or 6 (`--identity`) spaces; wrapped descriptions by more.
fn parse_clap_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
            continue;
        }
        if let Some(usage) = line.strip_prefix("Usage: ") {
            help.needs_subcommand = usage.contains("<COMMAND>");
        }
        let indent = line.len() - line.trim_start().len();
        let words: Vec<&str> = line.split_whitespace().collect();
        match section {
            "Commands" if indent == 2 => {
                help.subcommands.insert(words[0].to_string());
            }
            "Arguments" if indent == 2 => help.positionals = true,
            "Options" if (indent == 2 || indent == 6) && line.trim_start().starts_with('-') => {
                // `-o, --log <FILE>`: the value is shown once, after the last name.
                let names: Vec<&str> = words
                    .iter()
                    .map(|word| word.trim_end_matches(','))
                    .take_while(|flag| {
                        flag.starts_with("--") || (flag.len() == 2 && flag.starts_with('-'))
                    })
                    .collect();
                let valued = words
                    .get(names.len())
                    .is_some_and(|next| next.starts_with('<'));
                for name in names {
                    help.flags.insert(name.to_string(), valued);
                }
            }
            _ => {}
        }
    }
    help
}

/// Parses the `--help` of a cobra program (etcdctl, etcdutl): flags as
/// `--name=""` (a value) or `--name[=false]` (a switch); commands as
/// tab-separated rows under `COMMANDS:`, some of several words.
fn parse_cobra_help(text: &str) -> Help {
    let mut help = Help::default();
    let mut in_commands = false;
    for line in text.lines() {
        if !line.starts_with(['\t', ' ']) {
            in_commands = line.trim() == "COMMANDS:";
            continue;
        }
        if in_commands {
            if let Some(name) = line.split('\t').find(|field| !field.is_empty()) {
                help.subcommands.insert(name.trim().to_string());
            }
            continue;
        }
        for word in line.split_whitespace() {
            let word = word.trim_end_matches(',');
            if word.starts_with('-') && word.len() > 1 {
                let name = word.split(['=', '[']).next().unwrap_or(word);
                help.flags.insert(name.to_string(), !word.contains("[="));
            } else {
                break;
            }
        }
    }
    help.positionals = true;
    help
}

/// etcd's own `--help`: every `--name` at the start of a row.
fn parse_etcd_help(text: &str) -> Help {
    let mut help = Help {
        positionals: true,
        ..Help::default()
    };
    for line in text.lines() {
        if let Some(flag) = line.split_whitespace().next() {
            if flag.starts_with("--") {
                help.flags
                    .insert(flag.split('=').next().unwrap().to_string(), true);
            }
        }
    }
    help
}

/// Runs `program path… --help` (cached by the caller).
fn run_help(program: &Path, path: &[String]) -> Result<String, String> {
    let out = Command::new(program)
        .args(path)
        .arg("--help")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!(
            "`{} {} --help` failed: {}",
            program.display(),
            path.join(" "),
            text.trim()
        ));
    }
    Ok(text)
}

/// A program whose command lines are checked, and how.
struct Checker {
    program: PathBuf,
    kind: Kind,
    cache: HashMap<Vec<String>, Help>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Clap,
    Cobra,
    Etcd,
}

impl Checker {
    fn new(program: PathBuf, kind: Kind) -> Self {
        Self {
            program,
            kind,
            cache: HashMap::new(),
        }
    }

    fn help(&mut self, path: &[String]) -> Result<&Help, String> {
        if !self.cache.contains_key(path) {
            let text = run_help(&self.program, path)?;
            let help = match self.kind {
                Kind::Clap => parse_clap_help(&text),
                Kind::Cobra => parse_cobra_help(&text),
                Kind::Etcd => parse_etcd_help(&text),
            };
            self.cache.insert(path.to_vec(), help);
        }
        Ok(&self.cache[path])
    }

    /// The problems of one command line (empty when it is right).
    fn check(&mut self, args: &[String]) -> Result<Vec<String>, String> {
        match self.kind {
            Kind::Clap => self.check_clap(args),
            Kind::Cobra => self.check_cobra(args),
            Kind::Etcd => {
                let help = self.help(&[])?;
                Ok(unknown_flags(args, help, "etcd"))
            }
        }
    }

    /// Walks the words as clap would: a flag must be in the help of the
    /// subcommand reached so far (and takes its value with it), a word is
    /// a subcommand where the help lists commands.
    fn check_clap(&mut self, args: &[String]) -> Result<Vec<String>, String> {
        let mut path: Vec<String> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let word = &args[i];
            let help = self.help(&path)?;
            let at = if path.is_empty() {
                "the top level".to_string()
            } else {
                format!("`{}`", path.join(" "))
            };
            if word == "--" {
                break;
            }
            if word.starts_with('-') && word.len() > 1 {
                let name = word.split('=').next().unwrap();
                match help.flags.get(name) {
                    None => return Ok(vec![format!("{name} is not an option of {at}")]),
                    Some(true) if !word.contains('=') => i += 1,
                    Some(_) => {}
                }
            } else if help.subcommands.contains(word.as_str()) {
                path.push(word.clone());
            } else if !help.positionals {
                return Ok(vec![format!(
                    "{word:?} is not a subcommand or argument of {at}"
                )]);
            }
            i += 1;
        }
        let asks_for_help = args
            .iter()
            .any(|a| matches!(a.as_str(), "--help" | "-h" | "--version" | "-V"));
        if self.help(&path)?.needs_subcommand && !asks_for_help {
            return Ok(vec![format!("`{}` needs a subcommand", path.join(" "))]);
        }
        Ok(Vec::new())
    }

    /// etcdctl and etcdutl: the command is the longest run of the leading
    /// words (flag values skipped) that the top-level help lists; every
    /// flag must be in that command's help (which lists the global ones).
    fn check_cobra(&mut self, args: &[String]) -> Result<Vec<String>, String> {
        let top = self.help(&[])?;
        let mut words = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let word = &args[i];
            if word.starts_with('-') {
                let name = word.split('=').next().unwrap();
                if top.flags.get(name) == Some(&true) && !word.contains('=') {
                    i += 1;
                }
            } else {
                words.push(word.clone());
            }
            i += 1;
        }
        let command = (1..=words.len().min(3))
            .rev()
            .map(|n| words[..n].to_vec())
            .find(|candidate| top.subcommands.contains(&candidate.join(" ")));
        let Some(command) = command else {
            return Ok(vec![format!(
                "no command of {} in {words:?}",
                self.program.display()
            )]);
        };
        let help = self.help(&command)?;
        Ok(unknown_flags(args, help, &command.join(" ")))
    }
}

fn unknown_flags(args: &[String], help: &Help, at: &str) -> Vec<String> {
    args.iter()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.split('=').next().unwrap())
        .filter(|name| !help.flags.contains_key(*name))
        .map(|name| format!("{name} is not an option of `{at}`"))
        .collect()
}

fn towerlock() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_towerlock"))
}

fn validator() -> PathBuf {
    towerlock_testsupport::validator_beside(&towerlock())
}

/// An installed program on PATH.
fn installed(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn checker_for(program: &str) -> Option<Checker> {
    match program {
        "towerlock" => Some(Checker::new(towerlock(), Kind::Clap)),
        "towerlock-validator" => Some(Checker::new(validator(), Kind::Clap)),
        "etcd" => installed("etcd").map(|p| Checker::new(p, Kind::Etcd)),
        "etcdctl" | "etcdutl" => installed(program).map(|p| Checker::new(p, Kind::Cobra)),
        _ => None,
    }
}

/// Checks every line of `program`; returns the problems, each with its line.
fn check_all(checker: &mut Checker, program: &str, lines: &[CommandLine]) -> Vec<String> {
    let mut problems = Vec::new();
    for line in lines {
        let result = checker.check(&line.words);
        let found = result.unwrap_or_else(|e| vec![e]);
        problems.extend(found.into_iter().map(|problem| {
            format!(
                "docs/operations.md:{}: `{program} {}`: {problem}",
                line.line,
                line.words.join(" ")
            )
        }));
    }
    problems
}

#[test]
fn every_command_of_the_guide_uses_subcommands_and_flags_that_exist() {
    let markdown = std::fs::read_to_string(doc_path()).expect("docs/operations.md");
    let lines = command_lines(&markdown);
    let mut problems = Vec::new();
    for program in [
        "towerlock",
        "towerlock-validator",
        "etcd",
        "etcdctl",
        "etcdutl",
    ] {
        let Some(found) = lines.get(program) else {
            continue;
        };
        match checker_for(program) {
            Some(mut checker) => {
                problems.extend(check_all(&mut checker, program, found));
                println!("checked {} command line(s) of {program}", found.len());
            }
            // Straight to stderr, past the harness's capture: a skip is
            // shown in every run, not only when the test fails.
            None => {
                let note = format!(
                    "operations_doc: skipped: {program} is not installed here; its {} command line(s) in docs/operations.md were not checked\n",
                    found.len()
                );
                std::io::Write::write_all(&mut std::io::stderr(), note.as_bytes()).unwrap();
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the guide uses what does not exist:\n{}",
        problems.join("\n")
    );
}

/// The subcommand paths the guide's towerlock lines name.
fn paths_named(lines: &[CommandLine], checker: &mut Checker) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in lines {
        let help = checker.help(&[]).unwrap();
        let mut path = Vec::new();
        let mut known = help.subcommands.clone();
        for word in &line.words {
            if word.starts_with('-') {
                continue;
            }
            if !known.contains(word) {
                continue;
            }
            path.push(word.clone());
            known = checker.help(&path).unwrap().subcommands.clone();
            named.insert(path.join(" "));
        }
    }
    named
}

#[test]
fn the_guide_runs_every_command_an_operator_needs() {
    let markdown = std::fs::read_to_string(doc_path()).expect("docs/operations.md");
    let lines = command_lines(&markdown);
    let mut tool = Checker::new(towerlock(), Kind::Clap);
    let mut node = Checker::new(validator(), Kind::Clap);
    let mut named = paths_named(&lines["towerlock"], &mut tool);
    named.extend(
        paths_named(&lines["towerlock-validator"], &mut node)
            .into_iter()
            .map(|path| format!("validator {path}")),
    );
    let needed = [
        "certs init",
        "certs add",
        "certs renew",
        "etcd check",
        "etcd setup-access",
        "fence status",
        "status",
        "tower show",
        "tower import",
        "tower export",
        "sentinel",
        "drill",
        "cluster run",
        "validator set-identity",
        "validator wait-for-restart-window",
        "validator exit",
        "validator monitor",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| !named.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "no sh block of the guide runs: {missing:?}"
    );
}

#[test]
fn extraction_handles_continuations_operators_sudo_and_install_paths() {
    let markdown = "text\n```sh\n\
        sudo -u towerlock /usr/local/bin/towerlock-validator --ledger L wait-for-restart-window \\\n\
        \x20   --identity k.json \\\n\
        \x20 && sudo -u towerlock towerlock-validator --ledger L set-identity k.json\n\
        IDENTITY=$(solana-keygen pubkey v.json) RUST_LOG=info towerlock fence status --identity $IDENTITY # a comment\n\
        cat > f <<'EOF'\n\
        towerlock not --a-command\n\
        EOF\n\
        for h in a b; do towerlock etcd check --etcd-endpoint \"$h:2379\"; done\n\
        systemd-run --unit x /usr/local/bin/towerlock cluster run --dir d > out.log 2>&1\n\
        ```\n```text\ntowerlock ignored --here\n```\n";
    let lines = command_lines(markdown);
    let words = |program: &str| -> Vec<String> {
        lines[program].iter().map(|l| l.words.join(" ")).collect()
    };
    assert_eq!(
        words("towerlock-validator"),
        [
            "--ledger L wait-for-restart-window --identity k.json",
            "--ledger L set-identity k.json"
        ]
    );
    assert_eq!(
        words("towerlock"),
        [
            "fence status --identity $IDENTITY",
            "etcd check --etcd-endpoint $h:2379",
            "cluster run --dir d"
        ]
    );
    assert_eq!(
        lines["towerlock-validator"][1].line, 3,
        "a continued line keeps its first line"
    );
}

#[test]
fn the_check_refuses_a_misspelled_subcommand_or_flag() {
    let mut tool = Checker::new(towerlock(), Kind::Clap);
    let mut node = Checker::new(validator(), Kind::Clap);
    let args = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for good in [
        "fence status --identity X --etcd-endpoint a:1 --json",
        "certs renew --dir c --all",
    ] {
        assert_eq!(
            tool.check(&args(good)).unwrap(),
            Vec::<String>::new(),
            "{good}"
        );
    }
    let good = "--ledger L wait-for-restart-window --identity k.json --min-idle-time 5";
    assert_eq!(node.check(&args(good)).unwrap(), Vec::<String>::new());
    for bad in [
        "fence stauts --identity X",
        "etcd check --etcd-endpiont a:1",
        "certs",
        "tower import f --etcd-endpoint a:1 --forse",
    ] {
        assert!(
            !tool.check(&args(bad)).unwrap().is_empty(),
            "accepted: towerlock {bad}"
        );
    }
    for bad in [
        "--ledger L set-identiy k.json",
        "--ledger L exit --froce",
        "--legder L monitor",
    ] {
        assert!(
            !node.check(&args(bad)).unwrap().is_empty(),
            "accepted: towerlock-validator {bad}"
        );
    }
}
