//! The state behind a `SimDisk`: a durable layer, a volatile layer and the crash logic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use rand::{Rng, RngCore};

use super::{Crash, CrashReport, FaultOp};

/// A file's contents: what survives a power cut, what readers see, and the difference.
#[derive(Debug, Clone, Default)]
pub(super) struct Inode {
    /// The contents as of the last `sync_data`/`sync_all`.
    durable: Vec<u8>,
    /// The contents readers see (durable + pending).
    pub visible: Vec<u8>,
    /// Changes since the last sync, oldest first.
    pending: Vec<FileChange>,
}

#[derive(Debug, Clone)]
enum FileChange {
    Append(Vec<u8>),
    SetLen(u64),
}

impl FileChange {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            FileChange::Append(data) => bytes.extend_from_slice(data),
            FileChange::SetLen(len) => bytes.resize(*len as usize, 0),
        }
    }
}

impl Inode {
    pub fn append(&mut self, data: &[u8]) {
        self.visible.extend_from_slice(data);
        self.pending.push(FileChange::Append(data.to_vec()));
    }

    pub fn set_len(&mut self, len: u64) {
        let change = FileChange::SetLen(len);
        change.apply(&mut self.visible);
        self.pending.push(change);
    }

    pub fn sync(&mut self) {
        self.durable.clone_from(&self.visible);
        self.pending.clear();
    }

    /// Keeps a random part of the unsynced changes: none, a prefix, or a prefix followed
    /// by a torn (partial) append.
    fn cut(&mut self, rng: &mut dyn RngCore, report: &mut CrashReport) {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        let (kept, torn) = match rng.gen_range(0..3) {
            0 => (0, None),
            1 => (rng.gen_range(0..=pending.len()), None),
            _ => {
                let at = rng.gen_range(0..pending.len());
                (at, torn_prefix(&pending[at], rng))
            }
        };
        for change in &pending[..kept] {
            change.apply(&mut self.durable);
        }
        if let Some(part) = &torn {
            self.durable.extend_from_slice(part);
            report.torn_appends += 1;
        }
        report.kept_changes += kept;
        report.lost_changes += pending.len() - kept - usize::from(torn.is_some());
        self.visible.clone_from(&self.durable);
    }
}

/// A strict prefix of an append (the part that reached the platter), or `None` for a
/// truncation, which is all or nothing.
fn torn_prefix(change: &FileChange, rng: &mut dyn RngCore) -> Option<Vec<u8>> {
    match change {
        FileChange::Append(data) if !data.is_empty() => {
            Some(data[..rng.gen_range(0..data.len())].to_vec())
        }
        _ => None,
    }
}

/// What a directory entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    File(u64),
    Dir,
}

#[derive(Debug, Clone)]
enum DirChange {
    Insert(OsString, Entry),
    Remove(OsString),
    Rename(OsString, OsString),
}

impl DirChange {
    fn apply(&self, entries: &mut BTreeMap<OsString, Entry>) {
        match self {
            DirChange::Insert(name, entry) => {
                entries.insert(name.clone(), *entry);
            }
            DirChange::Remove(name) => {
                entries.remove(name);
            }
            DirChange::Rename(from, to) => {
                if let Some(entry) = entries.remove(from) {
                    entries.insert(to.clone(), entry);
                }
            }
        }
    }
}

/// A directory's entries: durable (as of its last sync), visible, and the changes between.
#[derive(Debug, Clone, Default)]
pub(super) struct Directory {
    durable: BTreeMap<OsString, Entry>,
    pub visible: BTreeMap<OsString, Entry>,
    pending: Vec<DirChange>,
}

impl Directory {
    fn change(&mut self, change: DirChange) {
        change.apply(&mut self.visible);
        self.pending.push(change);
    }

    pub fn sync(&mut self) {
        self.durable.clone_from(&self.visible);
        self.pending.clear();
    }

    /// Keeps none or a random prefix of the unsynced entry changes (each one is atomic).
    fn cut(&mut self, rng: &mut dyn RngCore, report: &mut CrashReport) {
        let pending = std::mem::take(&mut self.pending);
        let kept = match rng.gen_bool(0.5) {
            true => 0,
            false => rng.gen_range(0..=pending.len()),
        };
        for change in &pending[..kept] {
            change.apply(&mut self.durable);
        }
        report.kept_dir_changes += kept;
        report.lost_dir_changes += pending.len() - kept;
        self.visible.clone_from(&self.durable);
    }
}

/// A crash armed to happen at a given operation.
#[derive(Debug)]
pub(super) struct Scheduled {
    pub at_op: u64,
    pub crash: Crash,
    pub rng: rand::rngs::StdRng,
}

/// Everything a `SimDisk` holds.
#[derive(Debug)]
pub(super) struct Disk {
    pub inodes: HashMap<u64, Inode>,
    next_inode: u64,
    pub dirs: BTreeMap<PathBuf, Directory>,
    /// Bumped by every crash: handles opened before it are dead.
    pub generation: u64,
    /// False between a crash and `restart`: every operation fails.
    pub running: bool,
    /// Operations served so far (every storage and file call counts).
    pub ops: u64,
    pub scheduled: Option<Scheduled>,
    pub last_crash: Option<CrashReport>,
    /// Most bytes all files may hold together; `None`: unlimited.
    pub capacity: Option<u64>,
    /// Operations that fail, and with which error kind.
    pub faults: HashMap<FaultOp, io::ErrorKind>,
}

/// The root directory, which always exists and is durable.
pub(super) fn root() -> PathBuf {
    PathBuf::from("/")
}

impl Disk {
    pub fn new() -> Self {
        Disk {
            inodes: HashMap::new(),
            next_inode: 0,
            dirs: BTreeMap::from([(root(), Directory::default())]),
            generation: 0,
            running: true,
            ops: 0,
            scheduled: None,
            last_crash: None,
            capacity: None,
            faults: HashMap::new(),
        }
    }

    /// A copy of the files and directories, running, with no crash scheduled.
    pub fn fork(&self) -> Self {
        Disk {
            inodes: self.inodes.clone(),
            next_inode: self.next_inode,
            dirs: self.dirs.clone(),
            generation: self.generation,
            running: true,
            ops: self.ops,
            scheduled: None,
            last_crash: None,
            capacity: self.capacity,
            faults: self.faults.clone(),
        }
    }

    /// Fails if a fault is injected into `op`.
    pub fn check_fault(&self, op: FaultOp) -> io::Result<()> {
        match self.faults.get(&op) {
            Some(&kind) => Err(io::Error::new(
                kind,
                format!("simulated fault: {op:?} fails with {kind:?}"),
            )),
            None => Ok(()),
        }
    }

    /// The inodes some directory names.
    fn named_inodes(&self) -> HashSet<u64> {
        self.dirs
            .values()
            .flat_map(|dir| dir.visible.values())
            .filter_map(|entry| match entry {
                Entry::File(inode) => Some(*inode),
                Entry::Dir => None,
            })
            .collect()
    }

    /// Bytes the files named by a directory hold (their visible lengths).
    pub fn used_bytes(&self) -> u64 {
        self.named_inodes()
            .iter()
            .filter_map(|inode| self.inodes.get(inode))
            .map(|inode| inode.visible.len() as u64)
            .sum()
    }

    /// Bytes that can still be written before the capacity is reached.
    pub fn room(&self) -> u64 {
        self.capacity.map_or(u64::MAX, |capacity| {
            capacity.saturating_sub(self.used_bytes())
        })
    }

    /// The error of a write that does not fit.
    pub fn storage_full(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "simulated disk full: {} of {} bytes used",
                self.used_bytes(),
                self.capacity.unwrap_or(u64::MAX)
            ),
        )
    }

    /// Admits one operation: fails while the disk is off or for a stale handle, and
    /// triggers a scheduled crash. `in_flight` is the append being admitted: a crash on it
    /// lets a random prefix of it land first, as a killed write or a failing disk can.
    pub fn admit(
        &mut self,
        handle_generation: Option<u64>,
        in_flight: Option<(u64, &[u8])>,
    ) -> io::Result<()> {
        if !self.running {
            return Err(io::Error::other("simulated crash: the disk is off"));
        }
        if handle_generation.is_some_and(|generation| generation != self.generation) {
            return Err(io::Error::other(
                "simulated crash: the file was opened before the crash",
            ));
        }
        self.ops += 1;
        let Some(mut scheduled) = self.scheduled.take_if(|s| s.at_op == self.ops) else {
            return Ok(());
        };
        if let Some((inode, data)) = in_flight {
            let landed = rng_prefix(data, &mut scheduled.rng);
            self.inode_mut(inode)?.append(landed);
        }
        self.crash(scheduled.crash, &mut scheduled.rng);
        Err(io::Error::other(format!(
            "simulated crash ({:?}) at operation {}",
            scheduled.crash, self.ops
        )))
    }

    /// Crashes now: a power cut discards volatile state, a process kill keeps it. Either
    /// way the disk goes dark until `restart` and every open handle dies.
    pub fn crash(&mut self, crash: Crash, rng: &mut dyn RngCore) -> CrashReport {
        let mut report = CrashReport::new(crash, self.ops);
        if crash == Crash::PowerCut {
            for inode in self.inodes.values_mut() {
                inode.cut(rng, &mut report);
            }
            for dir in self.dirs.values_mut() {
                dir.cut(rng, &mut report);
            }
            self.drop_unreachable();
        }
        self.running = false;
        self.generation += 1;
        self.last_crash = Some(report.clone());
        report
    }

    /// Forgets directories whose entry did not survive, and files no directory names.
    fn drop_unreachable(&mut self) {
        let reachable: Vec<PathBuf> = self
            .dirs
            .keys()
            .filter(|path| self.is_reachable(path))
            .cloned()
            .collect();
        self.dirs.retain(|path, _| reachable.contains(path));
        let named = self.named_inodes();
        self.inodes.retain(|inode, _| named.contains(inode));
    }

    fn is_reachable(&self, path: &Path) -> bool {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return true; // the root
        };
        let named = self
            .dirs
            .get(parent)
            .is_some_and(|dir| dir.visible.get(name) == Some(&Entry::Dir));
        named && self.is_reachable(parent)
    }

    /// Adds an entry to an existing directory; fails if the name is taken.
    pub fn insert(&mut self, path: &Path, entry: Entry) -> io::Result<()> {
        let (parent, name) = split(path)?;
        let dir = self.dir_mut(parent)?;
        if dir.visible.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("`{}` exists", path.display()),
            ));
        }
        dir.change(DirChange::Insert(name.to_os_string(), entry));
        Ok(())
    }

    /// Creates an empty file at `path` and returns its inode.
    pub fn create_file(&mut self, path: &Path) -> io::Result<u64> {
        let inode = self.next_inode;
        self.insert(path, Entry::File(inode))?;
        self.next_inode += 1;
        self.inodes.insert(inode, Inode::default());
        Ok(inode)
    }

    /// Creates a directory at `path`.
    pub fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        self.insert(path, Entry::Dir)?;
        self.dirs.insert(path.to_path_buf(), Directory::default());
        Ok(())
    }

    /// The inode of the file at `path`.
    pub fn lookup_file(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        match self.dir(parent)?.visible.get(name) {
            Some(Entry::File(inode)) => Ok(*inode),
            Some(Entry::Dir) => Err(io::Error::other(format!(
                "`{}` is a directory",
                path.display()
            ))),
            None => Err(not_found(path)),
        }
    }

    /// Renames a file within its directory.
    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.lookup_file(from)?;
        let ((from_dir, from_name), (to_dir, to_name)) = (split(from)?, split(to)?);
        if from_dir != to_dir {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the simulated disk renames within one directory only",
            ));
        }
        let change = DirChange::Rename(from_name.to_os_string(), to_name.to_os_string());
        self.dir_mut(from_dir)?.change(change);
        Ok(())
    }

    /// Removes the file at `path`.
    pub fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        self.lookup_file(path)?;
        let (parent, name) = split(path)?;
        self.dir_mut(parent)?
            .change(DirChange::Remove(name.to_os_string()));
        Ok(())
    }

    pub fn dir(&self, path: &Path) -> io::Result<&Directory> {
        self.dirs.get(path).ok_or_else(|| not_found(path))
    }

    pub fn dir_mut(&mut self, path: &Path) -> io::Result<&mut Directory> {
        self.dirs.get_mut(path).ok_or_else(|| not_found(path))
    }

    pub fn inode_mut(&mut self, inode: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&inode)
            .ok_or_else(|| io::Error::other("simulated disk: the file no longer exists"))
    }

    /// Unsynced changes, file contents and directory entries together.
    pub fn unsynced_changes(&self) -> usize {
        let files: usize = self.inodes.values().map(|inode| inode.pending.len()).sum();
        let dirs: usize = self.dirs.values().map(|dir| dir.pending.len()).sum();
        files + dirs
    }
}

/// A random prefix (possibly empty or whole) of `data`.
fn rng_prefix<'a>(data: &'a [u8], rng: &mut dyn RngCore) -> &'a [u8] {
    &data[..rng.gen_range(0..=data.len())]
}

/// The parent directory and the name of an absolute path.
fn split(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    match (path.is_absolute(), path.parent(), path.file_name()) {
        (true, Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the simulated disk needs absolute paths below `/`, got `{}`",
                path.display()
            ),
        )),
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("`{}` does not exist", path.display()),
    )
}
