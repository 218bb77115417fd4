//! The live status line: an indicatif spinner on a terminal, plain lines
//! otherwise (when the reason changes, and every [`PLAIN_REPEAT`]).

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::decision::{fmt_percent, WaitKind, WaitReason};

/// Without a terminal, an unchanged reason is repeated this often.
pub const PLAIN_REPEAT: Duration = Duration::from_secs(10);

/// One poll, as shown to the operator.
#[derive(Debug, Clone, Copy)]
pub struct PollStatus<'a> {
    /// Since the wait began.
    pub elapsed: Duration,
    /// The node's processed slot.
    pub slot: u64,
    pub delinquent_stake_percent: Option<f64>,
    pub reason: &'a WaitReason,
}

/// Where the wait reports its progress.
pub trait StatusSink: Send {
    /// The poll decided to wait.
    fn waiting(&mut self, now: Instant, status: &PollStatus<'_>);
    /// Something else worth showing (a failed poll, a schedule fetch).
    fn note(&mut self, now: Instant, text: &str);
    /// The wait is over; remove any live line.
    fn finish(&mut self);
}

/// `00:01:05 | Processed Slot: 1234 | 2.5 % delinquent stake | <reason>`,
/// like agave's line (without its snapshot columns).
pub fn status_text(status: &PollStatus<'_>) -> String {
    let secs = status.elapsed.as_secs();
    let delinquent = status
        .delinquent_stake_percent
        .map(|p| format!(" | {} % delinquent stake", fmt_percent(p)))
        .unwrap_or_default();
    format!(
        "{:02}:{:02}:{:02} | Processed Slot: {}{} | {}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        status.slot,
        delinquent,
        status.reason
    )
}

/// The spinner or the plain lines, depending on whether stderr is a
/// terminal.
pub fn for_stderr() -> Box<dyn StatusSink> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        Box::new(Spinner::new())
    } else {
        Box::new(PlainLines::new(Box::new(std::io::stderr())))
    }
}

/// An indicatif spinner on stderr.
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    pub fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner:.green} {wide_msg}").expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Self { bar }
    }
}

impl Default for Spinner {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusSink for Spinner {
    fn waiting(&mut self, _now: Instant, status: &PollStatus<'_>) {
        self.bar.set_message(status_text(status));
    }
    fn note(&mut self, _now: Instant, text: &str) {
        self.bar.set_message(text.to_string());
    }
    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Plain lines for logs: a line when the kind of reason changes, and every
/// [`PLAIN_REPEAT`] while it does not.
pub struct PlainLines {
    out: Box<dyn Write + Send>,
    last: Option<(WaitKind, Instant)>,
}

impl PlainLines {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out, last: None }
    }

    /// Whether a line for `kind` is due at `now`; records it when so.
    fn due(&mut self, now: Instant, kind: WaitKind) -> bool {
        let due = match self.last {
            Some((last, at)) => last != kind || now.saturating_duration_since(at) >= PLAIN_REPEAT,
            None => true,
        };
        if due {
            self.last = Some((kind, now));
        }
        due
    }
}

impl StatusSink for PlainLines {
    fn waiting(&mut self, now: Instant, status: &PollStatus<'_>) {
        if self.due(now, status.reason.kind()) {
            let _ = writeln!(self.out, "{}", status_text(status));
        }
    }
    fn note(&mut self, _now: Instant, text: &str) {
        // A note interrupts the reason: the next wait is shown again.
        self.last = None;
        let _ = writeln!(self.out, "{text}");
    }
    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restart_window::decision::Health;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    fn delinquent(percent: f64) -> WaitReason {
        WaitReason::DelinquencyTooHigh {
            percent,
            max_percent: 5.0,
        }
    }

    #[test]
    fn plain_lines_on_change_and_every_ten_seconds() {
        let buf = Shared::default();
        let mut sink = PlainLines::new(Box::new(buf.clone()));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let show = |sink: &mut PlainLines, s: u64, reason: &WaitReason| {
            sink.waiting(
                at(s),
                &PollStatus {
                    elapsed: Duration::from_secs(s),
                    slot: 100 + s,
                    delinquent_stake_percent: Some(7.2),
                    reason,
                },
            )
        };
        show(&mut sink, 0, &delinquent(7.2));
        // Same kind, other figures: not repeated within ten seconds.
        show(&mut sink, 1, &delinquent(7.3));
        show(&mut sink, 9, &delinquent(7.4));
        show(&mut sink, 10, &delinquent(7.5));
        // Another kind: shown at once.
        let unhealthy = WaitReason::Unhealthy {
            health: Health::Behind { slots: 40 },
        };
        show(&mut sink, 11, &unhealthy);
        show(&mut sink, 12, &delinquent(7.5));
        sink.finish();
        assert_eq!(
            buf.lines(),
            vec![
                "00:00:00 | Processed Slot: 100 | 7.2 % delinquent stake | Delinquency too high: delinquent stake 7.2 % ≥ 5 %",
                "00:00:10 | Processed Slot: 110 | 7.2 % delinquent stake | Delinquency too high: delinquent stake 7.5 % ≥ 5 %",
                "00:00:11 | Processed Slot: 111 | 7.2 % delinquent stake | Node is unhealthy: node behind by 40 slots",
                "00:00:12 | Processed Slot: 112 | 7.2 % delinquent stake | Delinquency too high: delinquent stake 7.5 % ≥ 5 %",
            ]
        );
    }

    #[test]
    fn status_text_counts_hours() {
        let reason = delinquent(6.0);
        let text = status_text(&PollStatus {
            elapsed: Duration::from_secs(3 * 3600 + 2 * 60 + 1),
            slot: 5,
            delinquent_stake_percent: None,
            reason: &reason,
        });
        assert!(
            text.starts_with("03:02:01 | Processed Slot: 5 | Delinquency"),
            "{text}"
        );
    }
}
