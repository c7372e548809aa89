//! Seed corpora, made by code with fixed seeds: a few valid and nearly valid inputs
//! per target, so that the fuzzer starts from the formats instead of from nothing.
//! `cargo run --release --example seeds` (from `fuzz/`, before `cargo +nightly fuzz run`) writes them to
//! `corpus/<target>/`.

use flywheel_log::EventLog;
use std::path::Path;

/// A small deterministic generator (SplitMix64), so seeds need no dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn with_mode(mode: u8, body: impl AsRef<[u8]>) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(body.as_ref());
    out
}

fn event_json(rng: &mut Rng) -> String {
    let actions = ["view", "click", "purchase", "rate", "add_to_cart"];
    let action = actions[rng.below(actions.len() as u64) as usize];
    format!(
        r#"{{"user_id":"u{}","item_id":"i{}","action":"{action}","value":{}.5,"timestamp":{},"request_id":"r{}","position":{},"context":{{"device":"ios"}}}}"#,
        rng.below(50),
        rng.below(200),
        rng.below(100),
        1_700_000_000 + rng.below(1_000_000),
        rng.below(9),
        rng.below(20)
    )
}

/// Seeds of `event_body`.
pub fn event_body() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(11);
    let events: Vec<String> = (0..6).map(|_| event_json(&mut rng)).collect();
    vec![
        with_mode(0, &events[0]),
        with_mode(0, format!("[{}]", events.join(","))),
        with_mode(1, events.join("\n")),
        with_mode(
            0,
            r#"[{"user_id":"u","item_id":"i","action":"view","action":"click"}]"#,
        ),
        with_mode(
            1,
            "{\"user_id\":\"u\",\"item_id\":7,\"action\":\"like\"}\n\n{}",
        ),
        with_mode(
            2,
            r#"{"category":"books/fiction","title":"A","tags":["a","b"],"price":3.5,"available":true,"embedding":[0.5,-1.0],"attributes":{"brand":"acme"},"created_at":"2026-01-01T00:00:00Z"}"#,
        ),
        with_mode(4, r#"{"attributes":{"age":"30"},"opted_out":false}"#),
    ]
}

/// Seeds of `import_files`.
pub fn import_files() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(12);
    let events: Vec<String> = (0..4).map(|_| event_json(&mut rng)).collect();
    vec![
        with_mode(0, "{\"id\":\"i1\",\"category\":\"books\",\"price\":2}\n{\"id\":\"i2\",\"tags\":[\"x\"]}\n"),
        with_mode(1, "id,category,tags,price,available,brand\ni1,books,a|b,3.5,yes,acme\ni2,toys,,1,0,\n"),
        with_mode(2, "{\"id\":\"u1\",\"attributes\":{\"age\":\"30\"}}\n"),
        with_mode(3, "id,opted_out,country\nu1,false,fr\n"),
        with_mode(4, events.join("\n")),
        with_mode(5, "user_id,item_id,action,timestamp,value,position,device\nu1,i1,click,1700000000,,3,ios\nu2,i2,purchase,2026-01-01T00:00:00Z,9.5,,web\n"),
        with_mode(6, b"1\t10\t4\t881250949\n2\t20\t3\t891717742\n\x0010|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"),
        with_mode(14, b"1\t10\t4\t881250949\n\x001|24|M|technician|85711\n"),
        with_mode(7, b"1::1193::5::978300760\n1::661::3::978302109\n\x001193::One Flew (1975)::Drama\n661::James (1996)::Animation|Children's|Musical\n"),
        with_mode(15, b"1::1193::5::978300760\n\x001::F::1::10::48067\n"),
    ]
}

/// Seeds of `eval_files`.
pub fn eval_files() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(13);
    let (mut qrels, mut run, mut preds, mut bandit) = (
        String::new(),
        String::new(),
        String::from("user_id,label,score,device\n"),
        String::from("reward,pscore,pi_e,q_hat,dm_term,position\n"),
    );
    for q in 0..4 {
        for d in 0..5 {
            qrels.push_str(&format!("q{q} 0 d{d} {}\n", rng.below(3)));
            run.push_str(&format!(
                "q{q} Q0 d{} {d} {}.25 tag\n",
                (d + q) % 7,
                rng.below(10)
            ));
        }
    }
    for _ in 0..12 {
        preds.push_str(&format!(
            "u{},{},0.{},{}\n",
            rng.below(4),
            rng.below(2),
            rng.below(100),
            ["ios", "web"][rng.below(2) as usize]
        ));
        bandit.push_str(&format!(
            "{},0.{},0.{},0.{},0.{},{}\n",
            rng.below(2),
            rng.below(9) + 1,
            rng.below(10),
            rng.below(10),
            rng.below(10),
            rng.below(3)
        ));
    }
    let quoted = "user_id,label,score\n\"u,1\",1,0.9\n\"u\n2\",0,0.1\n";
    vec![
        with_mode(0, format!("{qrels}\0{run}")),
        with_mode(4 | 8 | 16, format!("{qrels}\0{run}")),
        with_mode(1, &preds),
        with_mode(1, quoted),
        with_mode(2, &bandit),
    ]
}

/// Seeds of `log_recovery`: real segment files written by the log (raw mode), and
/// scripts for the structured mode.
pub fn log_recovery(scratch: &Path) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(14);
    let mut seeds = Vec::new();
    for round in 0..4u64 {
        let dir = scratch.join(format!("seed-log-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = crate::log_recovery::config(&dir);
        config.segment_max_bytes = 1 << 20;
        let (log, _) = EventLog::open(config).expect("a seed log opens");
        for _ in 0..=round {
            let batch: Vec<Vec<u8>> = (0..=rng.below(3))
                .map(|_| (0..rng.below(40)).map(|_| rng.below(256) as u8).collect())
                .collect();
            log.append_batch(&batch).expect("a seed batch appends");
        }
        log.close().expect("a seed log closes");
        let segment = std::fs::read(dir.join(format!("{:020}.log", 0))).expect("the seed segment");
        seeds.push(with_mode(0, &segment));
        let _ = std::fs::remove_dir_all(&dir);
    }
    for damage in 0..3u8 {
        let mut script = vec![1, 7];
        for _ in 0..8 {
            script.push(rng.below(4) as u8);
            script.push(rng.below(48) as u8);
            script.extend((0..48).map(|_| rng.below(256) as u8));
        }
        script.extend([damage, rng.below(256) as u8, rng.below(4) as u8, 1, 0x40]);
        script.extend(b"garbage after the last frame");
        seeds.push(script);
    }
    seeds
}

/// Writes every target's seeds under `corpus/<target>/seed-<n>`.
pub fn write_all(root: &Path) -> std::io::Result<usize> {
    let scratch = crate::scratch_dir();
    let sets = [
        ("event_body", event_body()),
        ("import_files", import_files()),
        ("eval_files", eval_files()),
        ("log_recovery", log_recovery(scratch)),
    ];
    let mut written = 0;
    for (target, seeds) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (n, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n}")), seed)?;
            written += 1;
        }
    }
    Ok(written)
}
