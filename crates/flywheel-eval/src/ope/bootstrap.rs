//! Seeded percentile bootstrap over rows: each resample needs only four running sums.

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::{BootstrapOptions, Columns, EstimatorResult};

pub(crate) fn bootstrap(
    c: &Columns,
    estimators: &mut [EstimatorResult],
    options: BootstrapOptions,
    confidence: f64,
) {
    let n = c.w.len();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(options.resamples); estimators.len()];
    for _ in 0..options.resamples {
        let (mut wr, mut w, mut dm, mut wrq) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..n {
            let i = rng.gen_range(0..n);
            wr += c.w[i] * c.r[i];
            w += c.w[i];
            if let (Some(q), Some(d)) = (c.q, c.dm) {
                dm += d[i];
                wrq += c.w[i] * (c.r[i] - q[i]);
            }
        }
        let nf = n as f64;
        for (e, out) in estimators.iter().zip(draws.iter_mut()) {
            let value = match e.name {
                "ips" => wr / nf,
                "snips" => {
                    if w > 0.0 {
                        wr / w
                    } else {
                        0.0
                    }
                }
                "dm" => dm / nf,
                "dr" => (dm + wrq) / nf,
                _ => dm / nf + if w > 0.0 { wrq / w } else { 0.0 },
            };
            out.push(value);
        }
    }
    let alpha = 1.0 - confidence;
    for (e, mut values) in estimators.iter_mut().zip(draws) {
        values.sort_by(f64::total_cmp);
        e.bootstrap_ci = Some([
            crate::stats::percentile(&values, alpha / 2.0),
            crate::stats::percentile(&values, 1.0 - alpha / 2.0),
        ]);
    }
}
