//! Where EASE's and ALS's fit time goes on a MovieLens-100K-sized problem (seeded
//! synthetic data of the same shape, no dataset needed), in process CPU seconds:
//!
//! `cargo run --release -p flywheel-retrieval --example fit_profile` (set
//! `RAYON_NUM_THREADS=1` for one thread).

use flywheel_core::{ItemId, UserId};
use flywheel_retrieval::linalg::spd_inverse;
use flywheel_retrieval::{AlsModel, AlsParams, AlsSolver, EaseModel, Interactions};
use rand::{Rng, SeedableRng};

/// Sum of every live thread's scheduler runtime, in seconds.
fn cpu_seconds() -> f64 {
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").expect("Linux /proc") {
        let sched =
            std::fs::read_to_string(task.expect("task").path().join("sched")).expect("sched");
        let line = sched
            .lines()
            .find(|l| l.starts_with("se.sum_exec_runtime"))
            .expect("sum_exec_runtime");
        total += line
            .split(':')
            .nth(1)
            .expect(":")
            .trim()
            .parse::<f64>()
            .expect("ms");
    }
    total / 1e3
}

fn measure<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (cpu, wall) = (cpu_seconds(), std::time::Instant::now());
    let value = f();
    println!(
        "{what:<40} CPU {:.3} s, wall {:.3} s",
        cpu_seconds() - cpu,
        wall.elapsed().as_secs_f64()
    );
    value
}

fn main() {
    let (users, items) = (943usize, 1682usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Popularity-skewed items, about 75,000 pairs.
    let triples: Vec<(UserId, ItemId, f32)> = (0..75_000)
        .map(|_| {
            let u = rng.gen_range(0..users);
            let i = ((rng.gen::<f64>().powi(3)) * items as f64) as usize;
            (
                UserId::new_unchecked(format!("u{u}")),
                ItemId::new_unchecked(format!("i{i}")),
                1.0,
            )
        })
        .collect();
    let data = Interactions::from_triples(triples);
    let n = data.num_items();
    println!(
        "{} users, {n} items, {} pairs",
        data.num_users(),
        data.num_pairs()
    );
    let mut spd = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            spd[i * n + j] = ((i * 7 + j * 13) % 11) as f64 * 0.01;
        }
        spd[i * n + i] += n as f64;
    }
    measure(
        &format!("spd_inverse n={n} ({:.2} GFLOP)", (n as f64).powi(3) / 1e9),
        || spd_inverse(spd, n).expect("SPD"),
    );
    measure("EASE train (Gram + inverse + weights)", || {
        EaseModel::train(&data, 300.0).expect("EASE")
    });
    for factors in [48, 64] {
        let params = AlsParams {
            factors,
            ..AlsParams::default()
        };
        for steps in [1, 3] {
            measure(&format!("ALS {factors} f, 15 it, {steps} CG steps"), || {
                let solver = AlsSolver::ConjugateGradient { steps };
                AlsModel::train_with_solver(&data, &params, solver).expect("ALS")
            });
        }
    }
}
