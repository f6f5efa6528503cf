//! How the webhook bench reports: each figure on its own line next to its
//! target from issue 16 and the load average it was taken under (the bench
//! shares two cores with whatever else runs), then one table row per queue
//! setup, as README's table has them.

use crate::config::QueueBackend;

/// What one queue setup achieved; a phase that failed left its figure out.
pub struct Section {
    pub label: String,
    pub postgres: bool,
    pub backend: QueueBackend,
    pub ceiling: Option<f64>,
    pub end_to_end: Option<f64>,
    pub create_ratio: Option<f64>,
    /// To one endpoint, then across ten.
    pub drains: [Option<f64>; 2],
    pub paced: Option<(f64, f64)>,
    loads: Vec<f64>,
}

impl Section {
    pub fn new(label: String, postgres: bool, backend: QueueBackend) -> Self {
        Self {
            label,
            postgres,
            backend,
            ceiling: None,
            end_to_end: None,
            create_ratio: None,
            drains: [None, None],
            paced: None,
            loads: Vec::new(),
        }
    }

    /// Prints a figure with the load average now.
    pub fn note(&mut self, line: String) {
        let load = load_average();
        self.loads.extend(load);
        let load = load.map_or("?".to_owned(), |l| format!("{l:.2}"));
        println!("  {line}  [load {load}]");
    }
}

/// The targets for one setup.
pub struct Goals {
    pub end_to_end: f64,
    /// To one endpoint, then across ten; none when there is nothing to
    /// hold NATS to yet.
    pub drains: [Option<f64>; 2],
    pub p50_ms: f64,
    pub p99_ms: Option<f64>,
    /// NATS's drains are held to 0.7× the embedded queue's on the same
    /// database, measured earlier in the run.
    pub drains_relative: bool,
}

impl Goals {
    pub fn new(postgres: bool, backend: QueueBackend, done: &[Section]) -> Self {
        let (end_to_end, drains, p50_ms, p99_ms) = if postgres {
            (1000.0, [Some(2700.0), Some(4300.0)], 5.0, None)
        } else {
            (1500.0, [Some(5400.0), Some(6000.0)], 3.5, Some(10.0))
        };
        let drains_relative = backend == QueueBackend::Nats;
        let drains = if drains_relative {
            let embedded = done
                .iter()
                .find(|d| d.postgres == postgres && d.backend == QueueBackend::Embedded);
            let of = |i: usize| embedded.and_then(|d| d.drains[i]).map(|r| 0.7 * r);
            [of(0), of(1)]
        } else {
            drains
        };
        Self {
            end_to_end,
            drains,
            p50_ms,
            p99_ms,
            drains_relative,
        }
    }

    /// The drain's verdict, `i`: 0 for one endpoint, 1 for ten.
    pub fn drain(&self, i: usize, rate: f64) -> String {
        match self.drains[i] {
            None => "(no embedded figure to hold it to)".to_owned(),
            Some(goal) if self.drains_relative => {
                at_least_text(rate, goal, &format!("0.7× embedded = {}/s", thousands(goal)))
            }
            Some(goal) => at_least_rate(rate, goal),
        }
    }
}

/// The one-minute load average (Linux).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn at_least_rate(rate: f64, goal: f64) -> String {
    at_least_text(rate, goal, &format!("{}/s", thousands(goal)))
}

pub fn at_least_ratio(ratio: f64, goal: f64) -> String {
    at_least_text(ratio, goal, &format!("{goal:.2}×"))
}

fn at_least_text(value: f64, goal: f64, goal_text: &str) -> String {
    format!("(target ≥ {goal_text}: {})", met(value >= goal))
}

pub fn at_most_ms(value: f64, goal: f64) -> String {
    format!("(target ≤ {goal} ms: {})", met(value <= goal))
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}

/// `1234.4` as `1,234`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One row per setup, in the form of README's table.
pub fn summary(sections: &[Section]) {
    let rate = |r: Option<f64>| r.map_or("–".to_owned(), |r| format!("{}/s", thousands(r)));
    println!(
        "\n| queue | ceiling | end to end | create with `*` / none | drain, 1 endpoint | drain, 10 endpoints | paced p50 / p99 | load |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in sections {
        let low = s.loads.iter().copied().reduce(f64::min);
        let high = s.loads.iter().copied().reduce(f64::max);
        let loads = match (low, high) {
            (Some(low), Some(high)) => format!("{low:.1}–{high:.1}"),
            _ => "?".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {loads} |",
            s.label,
            rate(s.ceiling),
            rate(s.end_to_end),
            s.create_ratio.map_or("–".to_owned(), |r| format!("{r:.2}×")),
            rate(s.drains[0]),
            rate(s.drains[1]),
            s.paced
                .map_or("–".to_owned(), |(p50, p99)| format!("{p50:.1} / {p99:.1} ms")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234.4), "1,234");
        assert_eq!(thousands(100_000.0), "100,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn nats_drains_are_held_to_the_embedded_queue_on_the_same_database() {
        let mut embedded = Section::new("embedded on PostgreSQL".into(), true, QueueBackend::Embedded);
        embedded.drains = [Some(1000.0), None];
        let goals = Goals::new(true, QueueBackend::Nats, &[embedded]);
        assert_eq!(goals.drains, [Some(700.0), None]);
        assert_eq!(goals.drain(0, 700.0), "(target ≥ 0.7× embedded = 700/s: met)");
        assert_eq!(goals.drain(1, 700.0), "(no embedded figure to hold it to)");
        let sqlite = Goals::new(false, QueueBackend::Nats, &[]);
        assert_eq!(sqlite.drains, [None, None]);
    }

    #[test]
    fn embedded_targets_follow_the_database() {
        let sqlite = Goals::new(false, QueueBackend::Embedded, &[]);
        assert_eq!(sqlite.drain(0, 5400.0), "(target ≥ 5,400/s: met)");
        assert_eq!(sqlite.drain(1, 5999.0), "(target ≥ 6,000/s: not met)");
        let postgres = Goals::new(true, QueueBackend::Embedded, &[]);
        assert_eq!(postgres.end_to_end, 1000.0);
        assert_eq!(postgres.p99_ms, None);
    }
}
