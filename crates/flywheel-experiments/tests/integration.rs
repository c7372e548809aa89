//! Every value of `shared/reference` that concerns experiments, recomputed and compared
//! (read from the repository's copy, `tests/fixtures/reference`).
//! Sources: `murmur3_vectors.csv` (mmh3 5.3.1, reference MurmurHash3_x86_32) and
//! `ab_example/ab_expected.json` (scipy, statsmodels 0.14.4, gbstats 0.8.0 via
//! `ab_reference.py`).

use std::path::PathBuf;

use flywheel_experiments::gbstats::{gb_cuped_ttest, gb_sequential_ttest, gb_ttest};
use flywheel_experiments::hash::{bucket_mod_100, bucket_mod_10000, bucket_scaled_10000};
use flywheel_experiments::*;
use serde_json::Value;

const TOL: f64 = 1e-9;

/// The reference fixtures kept in the repository (`tests/fixtures/reference/README.md`).
fn reference_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/reference"
    ))
}

fn expected() -> Value {
    let path = reference_dir().join("ab_example/ab_expected.json");
    let text = std::fs::read_to_string(&path).expect("ab_expected.json is readable");
    serde_json::from_str(&text).expect("ab_expected.json is JSON")
}

fn users_csv() -> PathBuf {
    reference_dir().join("ab_example/ab_users.csv")
}

fn num(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, key| &v[key])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is a number in the reference"))
}

/// Relative-or-absolute closeness: |a − b| ≤ tol · max(1, |b|).
fn close(label: &str, actual: f64, expected: f64, tol: f64) {
    let err = (actual - expected).abs();
    assert!(
        err <= tol * expected.abs().max(1.0),
        "{label}: got {actual:.17e}, reference {expected:.17e} (diff {err:.3e})"
    );
}

fn close_ci(label: &str, c: &Comparison, v: &Value, key: &str) {
    close(
        &format!("{label} ci low"),
        c.ci_low,
        v[key][0].as_f64().expect("ci"),
        TOL,
    );
    close(
        &format!("{label} ci high"),
        c.ci_high,
        v[key][1].as_f64().expect("ci"),
        TOL,
    );
}

#[test]
fn murmur3_matches_every_mmh3_vector() {
    // murmur3_vectors.csv: made by mmh3.hash(key, seed, signed=False) (murmur3_vectors.py)
    let mut reader = csv::Reader::from_path(reference_dir().join("murmur3_vectors.csv"))
        .expect("murmur3_vectors.csv is readable");
    let mut rows = 0;
    for record in reader.records() {
        let r = record.expect("row");
        let hex = &r[2];
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(bytes, r[1].as_bytes(), "key_utf8_hex is the UTF-8 of key");
        let seed: u32 = r[3].parse().expect("seed");
        let h = murmur3_x86_32(&bytes, seed);
        assert_eq!(h, r[4].parse::<u32>().expect("u32"), "case {}", &r[0]);
        assert_eq!(
            h as i32,
            r[5].parse::<i32>().expect("i32"),
            "case {}",
            &r[0]
        );
        assert_eq!(format!("{h:08X}"), &r[6]);
        assert_eq!(bucket_mod_10000(h), r[7].parse::<u32>().expect("mod"));
        assert_eq!(bucket_scaled_10000(h), r[8].parse::<u32>().expect("scaled"));
        assert_eq!(bucket_mod_100(h), r[9].parse::<u32>().expect("mod100"));
        if !r[10].is_empty() {
            assert_eq!(format!("{h:08X}"), &r[10], "published value for {}", &r[0]);
        }
        rows += 1;
    }
    assert_eq!(rows, 36);
}

#[test]
fn default_assignment_reproduces_the_example_split() {
    // ab_reference.py generate(): control iff mmh3("flywheel-exp-001:<uid>") % 10000 < 5000
    let table = read_users(&users_csv(), "control", "treatment").expect("reference CSV");
    let split = VariantSplit::new(&[0.5, 0.5]).expect("weights");
    let mut reader = csv::Reader::from_path(users_csv()).expect("csv");
    for record in reader.records() {
        let r = record.expect("row");
        let want = if &r[1] == "control" { 0 } else { 1 };
        assert_eq!(
            split.assign(&r[0], "flywheel-exp-001"),
            want,
            "user {}",
            &r[0]
        );
    }
    assert_eq!(table.control.len(), 9988);
}

#[test]
fn srm_matches_scipy_chisquare_and_gbstats() {
    let e = expected();
    let report = ab_from_file(&users_csv(), &AbOptions::default()).expect("report");
    close("srm chi2", report.srm.chi2, num(&e, "srm.chi2"), TOL);
    close(
        "srm p (scipy.stats.chisquare)",
        report.srm.p_value,
        num(&e, "srm.p_value"),
        TOL,
    );
    close(
        "srm p (gbstats check_srm)",
        report.srm.p_value,
        num(&e, "srm.gbstats_p_value"),
        TOL,
    );
    for (key, v) in e["srm_vectors"].as_object().expect("vectors") {
        let r = srm_test(
            num(v, "n_control") as u64,
            num(v, "n_treatment") as u64,
            0.5,
        )
        .expect("srm");
        close(&format!("srm {key} chi2"), r.chi2, num(v, "chi2"), TOL);
        close(&format!("srm {key} p"), r.p_value, num(v, "p_value"), TOL);
    }
}

#[test]
fn conversion_matches_statsmodels_two_proportion() {
    // statsmodels proportions_ztest (pooled) + confint_proportions_2indep(method="wald")
    let e = &expected()["conversion_two_proportion"];
    let report = ab_from_file(&users_csv(), &AbOptions::default()).expect("report");
    let c = report.conversion.expect("defined");
    close("p_control", c.control, num(e, "p_control"), TOL);
    close("p_treatment", c.treatment, num(e, "p_treatment"), TOL);
    close("diff", c.effect, num(e, "diff"), TOL);
    close("z pooled", c.statistic, num(e, "z_pooled"), TOL);
    close("p pooled", c.p_value, num(e, "p_value_pooled"), TOL);
    close("se unpooled", c.standard_error, num(e, "se_unpooled"), TOL);
    close_ci("wald", &c, e, "ci95_wald_unpooled");
}

fn check_welch(label: &str, c: &Comparison, e: &Value) {
    // scipy.stats.ttest_ind(equal_var=False) + statsmodels tconfint_diff(usevar="unequal")
    close(
        &format!("{label} mean c"),
        c.control,
        num(e, "mean_control"),
        TOL,
    );
    close(
        &format!("{label} mean t"),
        c.treatment,
        num(e, "mean_treatment"),
        TOL,
    );
    close(&format!("{label} diff"), c.effect, num(e, "diff"), TOL);
    close(&format!("{label} se"), c.standard_error, num(e, "se"), TOL);
    close(
        &format!("{label} df"),
        c.degrees_of_freedom.expect("df"),
        num(e, "df_welch"),
        TOL,
    );
    close(&format!("{label} t"), c.statistic, num(e, "t"), TOL);
    close(&format!("{label} p"), c.p_value, num(e, "p_value"), TOL);
    close_ci(label, c, e, "ci95");
}

#[test]
fn welch_matches_scipy_and_statsmodels() {
    let e = expected();
    let report = ab_from_file(&users_csv(), &AbOptions::default()).expect("report");
    check_welch(
        "revenue",
        &report.revenue_per_user.expect("defined"),
        &e["revenue_per_user_welch"],
    );
    check_welch(
        "clicks",
        &report.clicks_per_user.expect("defined"),
        &e["clicks_per_user_welch"],
    );
}

#[test]
fn ctr_delta_method_matches_reference() {
    // ab_reference.py delta_ratio (numpy moments, scipy normal); naive via statsmodels
    let e = &expected()["ctr_delta_method"];
    let report = ab_from_file(&users_csv(), &AbOptions::default()).expect("report");
    let r = report.ctr.expect("defined");
    close("ratio c", r.absolute.control, num(e, "ratio_control"), TOL);
    close(
        "ratio t",
        r.absolute.treatment,
        num(e, "ratio_treatment"),
        TOL,
    );
    close("abs diff", r.absolute.effect, num(e, "abs_diff"), TOL);
    close(
        "se delta",
        r.absolute.standard_error,
        num(e, "se_delta"),
        TOL,
    );
    close_ci("ctr abs", &r.absolute, e, "ci95_abs");
    close("z", r.absolute.statistic, num(e, "z"), TOL);
    close("p", r.absolute.p_value, num(e, "p_value"), TOL);
    close("rel", r.relative_lift, num(e, "rel_lift"), TOL);
    close("se rel", r.relative_standard_error, num(e, "se_rel"), TOL);
    close(
        "rel lo",
        r.relative_ci_low,
        e["ci95_rel"][0].as_f64().expect("ci"),
        TOL,
    );
    close(
        "rel hi",
        r.relative_ci_high,
        e["ci95_rel"][1].as_f64().expect("ci"),
        TOL,
    );
    let n = &r.naive_impression_level;
    close(
        "naive se",
        n.standard_error,
        num(e, "naive_impression_level.se"),
        TOL,
    );
    close(
        "naive z",
        n.z_pooled,
        num(e, "naive_impression_level.z_pooled"),
        TOL,
    );
    close(
        "naive p",
        n.p_value,
        num(e, "naive_impression_level.p_value"),
        TOL,
    );
    close(
        "se ratio",
        n.se_ratio_delta_over_naive,
        num(e, "naive_impression_level.se_ratio_delta_over_naive"),
        TOL,
    );
}

fn check_cuped(label: &str, r: &CupedResult, e: &Value) {
    close(&format!("{label} theta"), r.theta, num(e, "theta"), TOL);
    close(
        &format!("{label} corr"),
        r.corr_y_x,
        num(e, "corr_y_x"),
        TOL,
    );
    check_welch(&format!("{label} raw"), &r.unadjusted, &e["unadjusted"]);
    check_welch(&format!("{label} cuped"), &r.adjusted, &e["cuped"]);
    close(
        &format!("{label} var red"),
        r.variance_reduction,
        num(e, "variance_reduction"),
        TOL,
    );
    close(
        &format!("{label} se ratio"),
        r.se_ratio_cuped_over_raw,
        num(e, "se_ratio_cuped_over_raw"),
        TOL,
    );
    // statsmodels OLS(Y ~ T + (X - mean X)).fit(cov_type="HC1")
    let o = &r.ols_ancova_hc1;
    close(
        &format!("{label} ols effect"),
        o.effect,
        num(e, "ols_ancova_hc1.effect"),
        TOL,
    );
    close(
        &format!("{label} ols se"),
        o.standard_error,
        num(e, "ols_ancova_hc1.se"),
        TOL,
    );
    close(
        &format!("{label} ols p"),
        o.p_value,
        num(e, "ols_ancova_hc1.p_value"),
        TOL,
    );
}

#[test]
fn cuped_matches_reference_and_ols() {
    let e = expected();
    let report = ab_from_file(&users_csv(), &AbOptions::default()).expect("report");
    check_cuped(
        "clicks",
        &report.cuped_clicks.expect("defined"),
        &e["cuped_clicks"],
    );
    check_cuped(
        "revenue",
        &report.cuped_revenue.expect("defined"),
        &e["cuped_revenue"],
    );
}

fn check_gb(label: &str, c: &Comparison, e: &Value) {
    close(
        &format!("{label} estimate"),
        c.effect,
        num(e, "estimate"),
        TOL,
    );
    close_ci(label, c, e, "ci95");
    close(&format!("{label} p"), c.p_value, num(e, "p_value"), TOL);
}

#[test]
fn gbstats_engine_matches_gbstats() {
    // gbstats 0.8.0 TwoSidedTTest / SequentialTwoSidedTTest (N* = 5000), ab_reference.py
    let e = &expected()["gbstats"];
    let t = read_users(&users_csv(), "control", "treatment").expect("csv");
    let (c, tr) = (&t.control, &t.treatment);
    let seq = SequentialConfig::default();
    for (suffix, kind) in [
        ("absolute", DifferenceType::Absolute),
        ("relative", DifferenceType::Relative),
    ] {
        let key = |name: &str| format!("{name}_{suffix}");
        let rev = (
            GbArm::sample_mean(&c.revenue, "c").expect("a"),
            GbArm::sample_mean(&tr.revenue, "t").expect("b"),
        );
        let clk = (
            GbArm::sample_mean(&c.clicks, "c").expect("a"),
            GbArm::sample_mean(&tr.clicks, "t").expect("b"),
        );
        check_gb(
            &key("revenue_welch"),
            &gb_ttest(&rev.0, &rev.1, kind, 0.05).expect("t"),
            &e[key("revenue_welch")],
        );
        let conv_a = GbArm::proportion(c.converted_users(), c.len() as u64).expect("a");
        let conv_b = GbArm::proportion(tr.converted_users(), tr.len() as u64).expect("b");
        check_gb(
            &key("conversion_rate"),
            &gb_ttest(&conv_a, &conv_b, kind, 0.05).expect("t"),
            &e[key("conversion_rate")],
        );
        let ra = GbArm::ratio(
            &RatioArm {
                numerators: &c.clicks,
                denominators: &c.exposures,
            },
            "c",
        )
        .expect("a");
        let rb = GbArm::ratio(
            &RatioArm {
                numerators: &tr.clicks,
                denominators: &tr.exposures,
            },
            "t",
        )
        .expect("b");
        check_gb(
            &key("ctr_ratio"),
            &gb_ttest(&ra, &rb, kind, 0.05).expect("t"),
            &e[key("ctr_ratio")],
        );
        for (metric, yc, yt) in [
            ("clicks", &c.clicks, &tr.clicks),
            ("revenue", &c.revenue, &tr.revenue),
        ] {
            let arm_c = CupedArm {
                metric: yc,
                covariate: &c.pre_period_metric,
            };
            let arm_t = CupedArm {
                metric: yt,
                covariate: &tr.pre_period_metric,
            };
            let name = key(&format!("{metric}_cuped"));
            check_gb(
                &name,
                &gb_cuped_ttest(&arm_c, &arm_t, kind, 0.05).expect("t"),
                &e[&name],
            );
        }
        check_gb(
            &key("clicks_sequential"),
            &gb_sequential_ttest(&clk.0, &clk.1, kind, &seq).expect("s"),
            &e[key("clicks_sequential")],
        );
        check_gb(
            &key("revenue_sequential"),
            &gb_sequential_ttest(&rev.0, &rev.1, kind, &seq).expect("s"),
            &e[key("revenue_sequential")],
        );
    }
}

#[test]
fn report_serialises_and_renders() {
    let report = ab_from_file(&users_csv(), &AbOptions::default()).expect("report");
    let json = serde_json::to_value(&report).expect("serialise");
    assert_eq!(json["n_users"], 20000);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let text = report.render_text();
    assert!(text.contains("CTR (delta method)"), "{text}");
    assert!(text.contains("9988 control"), "{text}");
}

fn write_temp(contents: &str) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(contents.as_bytes()).expect("write");
    f
}

fn error_of(contents: &str) -> String {
    let f = write_temp(contents);
    ab_from_file(f.path(), &AbOptions::default())
        .expect_err("malformed input must be an error")
        .to_string()
}

const HEADER: &str = "user_id,variant,exposures,clicks,conversions,revenue,pre_period_metric\n";

#[test]
fn malformed_inputs_name_line_and_column() {
    let e = error_of("");
    assert!(e.contains("empty"), "{e}");
    let e = error_of("user_id,variant,exposures,clicks,conversions,revenue\nu1,control,1,0,0,0\n");
    assert!(
        e.contains("line 1") && e.contains("pre_period_metric"),
        "{e}"
    );
    let e = error_of(&format!(
        "{HEADER}u1,control,3,1,0,0.0,1\nu2,treatment,x,1,0,0.0,1\n"
    ));
    assert!(
        e.contains("line 3") && e.contains("`exposures`") && e.contains("not a number"),
        "{e}"
    );
    let e = error_of(&format!(
        "{HEADER}u1,control,3,1,0,0.0,1\nu2,variant_c,3,1,0,0.0,1\n"
    ));
    assert!(
        e.contains("line 3") && e.contains("`variant`") && e.contains("variant_c"),
        "{e}"
    );
    let e = error_of(&format!("{HEADER}u1,control,3,1,0,NaN,1\n"));
    assert!(
        e.contains("line 2") && e.contains("`revenue`") && e.contains("finite"),
        "{e}"
    );
    let e = error_of(&format!("{HEADER}u1,control,3,-1,0,0,1\n"));
    assert!(
        e.contains("line 2") && e.contains("`clicks`") && e.contains("negative"),
        "{e}"
    );
    let e = error_of(&format!("{HEADER}u1,control,3,1\n"));
    assert!(e.contains("line 2"), "{e}");
    let e = error_of(HEADER);
    assert!(e.contains("no users"), "{e}");
}

#[test]
fn empty_arm_is_reported_not_panicked() {
    let f = write_temp(&format!(
        "{HEADER}u1,control,3,1,0,0.0,1\nu2,control,4,0,0,0.0,2\n"
    ));
    let report = ab_from_file(f.path(), &AbOptions::default()).expect("SRM still computable");
    assert_eq!(report.srm.n_treatment, 0);
    assert!(report.clicks_per_user.is_none());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("treatment arm has 0 users")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn zero_variance_metrics_become_warnings() {
    // nobody converts and revenue is 0 everywhere: conversion and revenue are undefined
    let rows: String = (0..6)
        .map(|i| {
            format!(
                "u{i},{},{},{},0,0.0,{}\n",
                if i % 2 == 0 { "control" } else { "treatment" },
                3 + i,
                i % 3,
                i
            )
        })
        .collect();
    let f = write_temp(&format!("{HEADER}{rows}"));
    let report = ab_from_file(f.path(), &AbOptions::default()).expect("report");
    assert!(report.conversion.is_none() && report.revenue_per_user.is_none());
    assert!(report.clicks_per_user.is_some());
    let json = serde_json::to_string(&report).expect("serialise");
    assert!(!json.contains("NaN"));
}
