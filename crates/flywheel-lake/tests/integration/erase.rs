use std::fs;
use std::path::Path;

use flywheel_lake::{erase_user, read_records, user_ids};

use crate::fixture::{is_users, records, with_offsets, DISTINCT_USER};
use crate::roundtrip::exported;

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn an_erased_user_is_in_no_byte_of_the_lake_and_everyone_else_stays() {
    let (_dir, lake) = exported(700);
    let needle = DISTINCT_USER.as_bytes();
    assert!(
        !files_containing(&lake, needle).is_empty(),
        "the fixture must hold the user"
    );
    let theirs = records()
        .iter()
        .filter(|r| is_users(r, DISTINCT_USER))
        .count();
    assert!(theirs > 3, "the user has only {theirs} records");
    assert!(user_ids(&lake).unwrap().contains(DISTINCT_USER));
    let counts = erase_user(&lake, DISTINCT_USER).unwrap();
    assert!(counts.total_rows() >= theirs as u64, "{counts:?}");
    assert!(counts.files_rewritten + counts.files_removed > 0);
    assert_eq!(files_containing(&lake, needle), Vec::<String>::new());
    let left = user_ids(&lake).unwrap();
    assert!(
        !left.contains(DISTINCT_USER) && !left.is_empty(),
        "{left:?}"
    );
    let expected: Vec<_> = with_offsets(records())
        .into_iter()
        .filter(|(_, r)| !is_users(r, DISTINCT_USER))
        .collect();
    assert!(
        read_records(&lake).unwrap() == expected,
        "other users' records changed"
    );
    let again = erase_user(&lake, DISTINCT_USER).unwrap();
    assert_eq!(again.total_rows(), 0);
}
