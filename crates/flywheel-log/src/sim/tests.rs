//! Unit tests of the crash-test disk: what survives which crash.

use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const SEEDS: u64 = 200;

fn path(text: &str) -> &Path {
    Path::new(text)
}

/// A disk with `/d/f` holding `contents`, file and directory entries all synced.
fn disk_with_synced_file(contents: &[u8]) -> SimDisk {
    let disk = SimDisk::new();
    disk.create_dir(path("/d")).expect("mkdir");
    disk.sync_dir(path("/")).expect("sync /");
    let mut file = disk.create_new(path("/d/f")).expect("create");
    file.append(contents).expect("append");
    file.sync_data().expect("sync file");
    disk.sync_dir(path("/d")).expect("sync /d");
    disk
}

/// Runs `prepare` on a fork of `disk` for each seed, cuts the power and returns what
/// `/d/f` holds afterwards (`None`: the file is gone).
fn outcomes_after_cuts(disk: &SimDisk, prepare: impl Fn(&SimDisk)) -> Vec<Option<Vec<u8>>> {
    (0..SEEDS)
        .map(|seed| {
            let fork = disk.fork();
            prepare(&fork);
            fork.power_cut(&mut StdRng::seed_from_u64(seed));
            fork.restart();
            fork.file_contents(path("/d/f")).ok()
        })
        .collect()
}

fn append_unsynced(disk: &SimDisk, chunks: &[&[u8]]) {
    let mut file = disk.open_append(path("/d/f")).expect("open");
    for chunk in chunks {
        file.append(chunk).expect("append");
    }
}

#[test]
fn synced_contents_and_entries_survive_every_cut() {
    let disk = disk_with_synced_file(b"base");
    assert_eq!(disk.unsynced_changes(), 0);
    for outcome in outcomes_after_cuts(&disk, |_| {}) {
        assert_eq!(outcome.as_deref(), Some(&b"base"[..]));
    }
}

#[test]
fn unsynced_appends_are_lost_kept_as_a_prefix_or_torn() {
    let disk = disk_with_synced_file(b"base");
    let outcomes = outcomes_after_cuts(&disk, |fork| append_unsynced(fork, &[b"abc", b"defg"]));
    let full = b"baseabcdefg";
    for outcome in &outcomes {
        let bytes = outcome.as_deref().expect("the synced file stays");
        assert!(bytes.len() >= 4 && full.starts_with(bytes), "{bytes:?}");
    }
    let lengths: Vec<usize> = outcomes.iter().flatten().map(Vec::len).collect();
    assert!(
        lengths.contains(&4),
        "sometimes everything unsynced is lost"
    );
    assert!(lengths.contains(&11), "sometimes everything is kept");
    assert!(
        lengths.contains(&7),
        "sometimes a prefix of the writes is kept"
    );
    let torn = |len: &usize| ![4, 7, 11].contains(len);
    assert!(lengths.iter().any(torn), "sometimes a write is torn");
}

#[test]
fn a_synced_append_survives_and_a_later_one_may_not() {
    let disk = disk_with_synced_file(b"base");
    let outcomes = outcomes_after_cuts(&disk, |fork| {
        let mut file = fork.open_append(path("/d/f")).expect("open");
        file.append(b"+acked").expect("append");
        file.sync_data().expect("sync");
        file.append(b"+unacked").expect("append");
    });
    for outcome in outcomes {
        let bytes = outcome.expect("the file stays");
        assert!(bytes.starts_with(b"base+acked"), "{bytes:?}");
    }
}

#[test]
fn a_truncation_is_volatile_until_the_file_is_synced() {
    let disk = disk_with_synced_file(b"0123456789");
    let outcomes = outcomes_after_cuts(&disk, |fork| {
        let mut file = fork.open_append(path("/d/f")).expect("open");
        file.set_len(3).expect("truncate");
    });
    let lengths: Vec<usize> = outcomes.iter().flatten().map(Vec::len).collect();
    assert!(
        lengths.iter().all(|len| [3, 10].contains(len)),
        "{lengths:?}"
    );
    assert!(lengths.contains(&3) && lengths.contains(&10));
}

#[test]
fn a_new_file_is_durable_only_after_its_directory_is_synced() {
    let disk = disk_with_synced_file(b"base");
    let create = |fork: &SimDisk, sync_dir: bool| {
        let mut file = fork.create_new(path("/d/g")).expect("create");
        file.append(b"new").expect("append");
        file.sync_all().expect("sync");
        if sync_dir {
            fork.sync_dir(path("/d")).expect("sync dir");
        }
    };
    let survivors = |sync_dir: bool| {
        (0..SEEDS)
            .filter(|&seed| {
                let fork = disk.fork();
                create(&fork, sync_dir);
                fork.power_cut(&mut StdRng::seed_from_u64(seed));
                fork.file_contents(path("/d/g")).is_ok()
            })
            .count() as u64
    };
    let unsynced = survivors(false);
    assert!(unsynced > 0 && unsynced < SEEDS, "{unsynced} survived");
    assert_eq!(survivors(true), SEEDS);
}

#[test]
fn a_synced_entry_of_an_unsynced_file_survives_empty_or_partial() {
    let disk = disk_with_synced_file(b"base");
    let contents: Vec<Option<Vec<u8>>> = (0..SEEDS)
        .map(|seed| {
            let fork = disk.fork();
            let mut file = fork.create_new(path("/d/g")).expect("create");
            fork.sync_dir(path("/d")).expect("sync dir");
            file.append(b"header").expect("append");
            fork.power_cut(&mut StdRng::seed_from_u64(seed));
            fork.file_contents(path("/d/g")).ok()
        })
        .collect();
    for bytes in &contents {
        let bytes = bytes.as_deref().expect("the entry was synced");
        assert!(b"header".starts_with(bytes), "{bytes:?}");
    }
    assert!(contents.iter().flatten().any(Vec::is_empty));
}

#[test]
fn a_rename_is_atomic_and_volatile_until_the_directory_is_synced() {
    let disk = disk_with_synced_file(b"base");
    let mut renamed = 0;
    for seed in 0..SEEDS {
        let fork = disk.fork();
        fork.rename(path("/d/f"), path("/d/h")).expect("rename");
        fork.power_cut(&mut StdRng::seed_from_u64(seed));
        let old = fork.file_contents(path("/d/f")).ok();
        let new = fork.file_contents(path("/d/h")).ok();
        assert!(
            old.is_some() != new.is_some(),
            "exactly one name, seed {seed}"
        );
        assert_eq!(old.or(new).as_deref(), Some(&b"base"[..]));
        renamed += u64::from(fork.file_contents(path("/d/h")).is_ok());
    }
    assert!(renamed > 0 && renamed < SEEDS);
}

#[test]
fn a_lost_directory_takes_its_files_with_it() {
    let disk = SimDisk::new();
    let mut lost = 0;
    for seed in 0..SEEDS {
        let fork = disk.fork();
        fork.create_dir(path("/d")).expect("mkdir"); // `/` is never synced
        let mut file = fork.create_new(path("/d/f")).expect("create");
        file.append(b"x").expect("append");
        file.sync_all().expect("sync");
        fork.sync_dir(path("/d")).expect("sync /d");
        fork.power_cut(&mut StdRng::seed_from_u64(seed));
        fork.restart();
        match fork.list_dir(path("/d")) {
            Ok(_) => assert_eq!(fork.file_contents(path("/d/f")).ok(), Some(b"x".to_vec())),
            Err(error) => {
                assert_eq!(error.kind(), io::ErrorKind::NotFound);
                assert!(fork.file_contents(path("/d/f")).is_err());
                lost += 1;
            }
        }
    }
    assert!(lost > 0);
}

#[test]
fn a_crash_stops_the_world_and_old_handles_stay_dead() {
    let disk = disk_with_synced_file(b"base");
    let mut file = disk.open_append(path("/d/f")).expect("open");
    file.append(b"+page cache").expect("append");
    let report = disk.kill();
    assert_eq!((report.crash, report.lost_changes), (Crash::ProcessKill, 0));
    assert!(!disk.is_running());
    assert!(disk.list_dir(path("/d")).is_err(), "the disk is off");
    disk.restart();
    assert!(
        file.append(b"zombie").is_err(),
        "a handle from before the crash"
    );
    assert!(file.sync_data().is_err());
    let mut reopened = disk.open_read(path("/d/f")).expect("open");
    let mut bytes = [0u8; 15];
    let read = reopened.read_at(0, &mut bytes).expect("read");
    assert_eq!(&bytes[..read], b"base+page cache", "a kill loses nothing");
    assert_eq!(disk.unsynced_changes(), 1, "still volatile");
}

#[test]
fn crash_after_fails_exactly_the_armed_operation() {
    let disk = disk_with_synced_file(b"base");
    let before = disk.ops();
    disk.crash_after(2, Crash::PowerCut, 1);
    let mut file = disk.open_append(path("/d/f")).expect("op 1");
    file.append(b"!").expect("op 2");
    assert!(file.sync_data().is_err(), "op 3 crashes");
    assert!(!disk.is_running());
    assert_eq!(disk.ops(), before + 3);
    let report = disk.last_crash().expect("a crash happened");
    assert_eq!(report.at_op, before + 3);
    assert!(
        report.to_string().starts_with("PowerCut at operation"),
        "{report}"
    );
}

#[test]
fn a_crash_on_an_append_may_land_part_of_it() {
    let disk = disk_with_synced_file(b"base");
    let mut lengths = Vec::new();
    for seed in 0..SEEDS {
        let fork = disk.fork();
        let mut file = fork.open_append(path("/d/f")).expect("open");
        fork.crash_after(0, Crash::ProcessKill, seed);
        assert!(file.append(b"0123456789").is_err());
        lengths.push(fork.file_contents(path("/d/f")).expect("file").len());
    }
    assert!(lengths.iter().all(|len| (4..=14).contains(len)));
    assert!(
        lengths.iter().any(|&len| len > 4 && len < 14),
        "partial writes happen"
    );
}

#[test]
fn forks_are_independent_and_disarm_cancels_a_crash() {
    let disk = disk_with_synced_file(b"base");
    let fork = disk.fork();
    append_unsynced(&fork, &[b"fork only"]);
    assert_eq!(disk.file_contents(path("/d/f")).expect("file"), b"base");
    disk.crash_after(0, Crash::PowerCut, 3);
    disk.disarm();
    assert!(disk.list_dir(path("/d")).is_ok());
}

#[test]
fn relative_paths_and_missing_parents_are_rejected() {
    let disk = SimDisk::new();
    let relative = disk.create_new(path("log/f")).expect_err("relative");
    assert_eq!(relative.kind(), io::ErrorKind::InvalidInput);
    let missing = disk.create_dir(path("/a/b")).expect_err("no /a");
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    disk.create_dir(path("/a")).expect("mkdir");
    let exists = disk.create_dir(path("/a")).expect_err("exists");
    assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
    let read_only = disk
        .create_new(path("/a/f"))
        .and_then(|_| disk.open_read(path("/a/f")));
    let error = read_only
        .expect("open")
        .append(b"x")
        .expect_err("read only");
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
}

#[test]
fn a_full_disk_writes_what_fits_and_fails_with_storage_full() {
    let disk = disk_with_synced_file(b"base");
    assert_eq!(disk.used_bytes(), 4);
    disk.set_capacity(Some(10));
    let mut file = disk.open_append(path("/d/f")).expect("open");
    file.append(b"ab").expect("fits");
    let error = file.append(b"cdefgh").expect_err("does not fit");
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert!(error.to_string().contains("10 of 10 bytes used"), "{error}");
    assert_eq!(
        disk.file_contents(path("/d/f")).expect("file"),
        b"baseabcdef",
        "a partial write lands, as on a real file system"
    );
    assert_eq!(
        file.set_len(11).expect_err("growing needs room").kind(),
        io::ErrorKind::StorageFull
    );
    file.set_len(6).expect("truncating frees space");
    file.append(b"WXYZ").expect("fits again");
    assert!(file.append(b"!").is_err());
    let fork = disk.fork();
    let mut forked = fork.open_append(path("/d/f")).expect("open on the fork");
    let error = forked.append(b"!").expect_err("forks inherit the capacity");
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    disk.set_capacity(None);
    file.append(b"!").expect("space returned");
    assert_eq!(
        disk.file_contents(path("/d/f")).expect("file"),
        b"baseabWXYZ!"
    );
}

#[test]
fn injected_faults_fail_their_operations_without_effect_until_lifted() {
    let disk = disk_with_synced_file(b"base");
    let mut file = disk.open_append(path("/d/f")).expect("open");
    disk.fail_with(FaultOp::Sync, Some(io::ErrorKind::StorageFull));
    disk.fail_with(FaultOp::SetLen, Some(io::ErrorKind::Other));
    disk.fail_with(FaultOp::Create, Some(io::ErrorKind::StorageFull));
    file.append(b"+more").expect("appends still work");
    let before = disk.ops();
    let error = file.sync_data().expect_err("sync fails");
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert!(
        error.to_string().contains("simulated fault: Sync"),
        "{error}"
    );
    assert_eq!(disk.ops(), before + 1, "a failed operation still counts");
    assert_eq!(
        disk.unsynced_changes(),
        1,
        "a failed sync leaves the data volatile"
    );
    assert!(file.set_len(0).is_err());
    assert!(disk.create_new(path("/d/g")).is_err());
    assert_eq!(
        disk.file_contents(path("/d/f")).expect("file"),
        b"base+more"
    );
    assert!(
        disk.file_contents(path("/d/g")).is_err(),
        "nothing was created"
    );
    disk.fail_with(FaultOp::Append, Some(io::ErrorKind::StorageFull));
    assert!(file.append(b"!").is_err());
    for op in [
        FaultOp::Sync,
        FaultOp::SetLen,
        FaultOp::Create,
        FaultOp::Append,
    ] {
        disk.fail_with(op, None);
    }
    file.sync_data().expect("sync works again");
    assert_eq!(disk.unsynced_changes(), 0);
}
