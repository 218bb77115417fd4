//! `timeline.svg`, Jepsen-style: time across, one row per node showing its
//! role (active, hot spare, starting, frozen, down) and its landed votes;
//! fault windows shaded by kind; failovers marked. Drawn with plotters'
//! SVG backend (text as SVG `<text>` elements: no fonts needed).

use plotters::prelude::*;

use super::inject::FaultRecord;
use super::world::{Sample, Seen};

const WIDTH: u32 = 1400;
const ROW: i32 = 90;
const TOP: i32 = 40;
const LEFT: i32 = 150;
const RIGHT: i32 = 20;

/// What the timeline shows.
pub struct Timeline<'a> {
    pub start_ms: u64,
    pub end_ms: u64,
    pub nodes: Vec<&'a str>,
    pub samples: &'a [Sample],
    /// Landed votes: (ts, node) — `None` when the instance is unknown.
    pub votes: Vec<(u64, Option<usize>)>,
    pub faults: &'a [FaultRecord],
    pub failovers: &'a [u64],
}

fn role_color(seen: Seen) -> RGBColor {
    match seen {
        Seen::Active => RGBColor(44, 160, 44),
        Seen::HotSpare => RGBColor(31, 119, 180),
        Seen::Starting => RGBColor(255, 215, 0),
        Seen::Frozen => RGBColor(148, 103, 189),
        Seen::Down => RGBColor(60, 60, 60),
    }
}

fn parse_hex(color: &str) -> RGBColor {
    let channel =
        |at: usize| u8::from_str_radix(color.get(at..at + 2).unwrap_or("80"), 16).unwrap_or(128);
    RGBColor(channel(1), channel(3), channel(5))
}

impl Timeline<'_> {
    fn x(&self, ts_ms: u64) -> i32 {
        let span = self.end_ms.saturating_sub(self.start_ms).max(1) as f64;
        let at = ts_ms.clamp(self.start_ms, self.end_ms) - self.start_ms;
        LEFT + (at as f64 / span * f64::from(WIDTH as i32 - LEFT - RIGHT)) as i32
    }

    fn row_top(&self, node: usize) -> i32 {
        TOP + ROW * node as i32
    }

    /// The SVG text.
    pub fn render(&self) -> Result<String, String> {
        let height = (TOP + ROW * self.nodes.len() as i32 + 60) as u32;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            self.draw_faults(&root, height as i32)
                .map_err(|e| e.to_string())?;
            self.draw_rows(&root).map_err(|e| e.to_string())?;
            self.draw_marks(&root, height as i32)
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }

    fn draw_faults<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        height: i32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        for fault in self.faults {
            let (x0, x1) = (
                self.x(fault.start_ms),
                self.x(fault.end_ms).max(self.x(fault.start_ms) + 2),
            );
            let (y0, y1) = match self.nodes.iter().position(|n| *n == fault.target) {
                Some(node) => (self.row_top(node), self.row_top(node) + ROW - 10),
                None => (TOP - 10, height - 50),
            };
            let style = parse_hex(&fault.color).mix(0.35).filled();
            root.draw(&Rectangle::new([(x0, y0), (x1, y1)], style))?;
        }
        Ok(())
    }

    fn draw_rows<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let font = ("sans-serif", 14).into_font().color(&BLACK);
        for (index, name) in self.nodes.iter().enumerate() {
            let top = self.row_top(index);
            root.draw(&Text::new(
                format!("node: {name}"),
                (10, top + 30),
                font.clone(),
            ))?;
            let mut samples = self.samples.iter().filter(|s| s.node == index).peekable();
            while let Some(sample) = samples.next() {
                let end = samples.peek().map_or(self.end_ms, |s| s.ts_ms);
                let (x0, x1) = (self.x(sample.ts_ms), self.x(end));
                let bar = role_color(sample.seen).filled();
                root.draw(&Rectangle::new(
                    [(x0, top + 40), (x1.max(x0 + 1), top + 52)],
                    bar,
                ))?;
            }
            for (ts, _) in self.votes.iter().filter(|(_, n)| *n == Some(index)) {
                let x = self.x(*ts);
                root.draw(&PathElement::new(
                    vec![(x, top + 10), (x, top + 36)],
                    BLACK.stroke_width(1),
                ))?;
            }
        }
        Ok(())
    }

    fn draw_marks<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        height: i32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let font = ("sans-serif", 12).into_font().color(&BLACK);
        for ts in self.failovers {
            let x = self.x(*ts);
            root.draw(&PathElement::new(
                vec![(x, TOP - 15), (x, height - 50)],
                RED.stroke_width(2),
            ))?;
        }
        let legend = "roles: green active, blue hot spare, yellow starting, purple frozen, grey down; ticks: landed votes; red lines: failovers; shaded: faults";
        root.draw(&Text::new(
            legend.to_string(),
            (10, height - 30),
            font.clone(),
        ))?;
        let seconds = (self.end_ms.saturating_sub(self.start_ms)) / 1000;
        root.draw(&Text::new(format!("0 s … {seconds} s"), (LEFT, 15), font))?;
        Ok(())
    }
}
