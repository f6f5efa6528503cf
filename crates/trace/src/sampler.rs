//! The sampler OpenTelemetry's `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` name.

use crate::TraceContext;

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// This share of trace ids (0.0–1.0), decided by the id alone so every
    /// process decides alike.
    Ratio(f64),
    /// The caller's decision when it sent one; this sampler otherwise.
    ParentBased(Root),
}

/// A parent-based sampler's choice for traces that start here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
}

impl Default for Sampler {
    /// OpenTelemetry's default: `parentbased_always_on`.
    fn default() -> Self {
        Sampler::ParentBased(Root::AlwaysOn)
    }
}

fn ratio(arg: Option<&str>) -> Result<f64, String> {
    match arg {
        None => Ok(1.0),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| format!("OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not `{text}`")),
    }
}

fn by_ratio(r: f64, trace_id: &[u8; 16]) -> bool {
    // The id's last 8 bytes as a number, against the ratio of the range.
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let n = u64::from_be_bytes(low) >> 1;
    (n as f64) < r * (u64::MAX >> 1) as f64
}

impl Sampler {
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Sampler, String> {
        Ok(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::Ratio(ratio(arg)?),
            "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
            "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
            "parentbased_traceidratio" => Sampler::ParentBased(Root::Ratio(ratio(arg)?)),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER `{other}` is not one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ));
            }
        })
    }

    /// Whether a trace with this parent (if any) and id is recorded.
    pub fn sample(&self, parent: Option<&TraceContext>, trace_id: &[u8; 16]) -> bool {
        match (self, parent) {
            (Sampler::AlwaysOn, _) => true,
            (Sampler::AlwaysOff, _) => false,
            (Sampler::Ratio(r), _) => by_ratio(*r, trace_id),
            (Sampler::ParentBased(_), Some(p)) => p.sampled,
            (Sampler::ParentBased(Root::AlwaysOn), None) => true,
            (Sampler::ParentBased(Root::AlwaysOff), None) => false,
            (Sampler::ParentBased(Root::Ratio(r)), None) => by_ratio(*r, trace_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_decides_under_a_parent_based_sampler() {
        let parent = TraceContext {
            trace_id: [7; 16],
            span_id: [1; 8],
            sampled: false,
        };
        let s = Sampler::default();
        assert!(!s.sample(Some(&parent), &parent.trace_id));
        assert!(s.sample(None, &parent.trace_id));
        assert!(Sampler::AlwaysOn.sample(Some(&parent), &parent.trace_id));
    }

    #[test]
    fn a_ratio_keeps_about_its_share() {
        let s = Sampler::parse("traceidratio", Some("0.25")).unwrap_or_else(|e| panic!("{e}"));
        let kept = (0u64..10_000)
            .filter(|i| {
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                s.sample(None, &id)
            })
            .count();
        assert!((2_000..3_000).contains(&kept), "{kept}");
        assert!(Sampler::parse("sometimes", None).is_err());
        assert!(Sampler::parse("traceidratio", Some("2")).is_err());
    }
}
