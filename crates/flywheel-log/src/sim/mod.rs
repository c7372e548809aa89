//! The crash-test disk: a [`Storage`] in memory that forgets what was never fsynced.
//!
//! A killed process leaves the page cache intact, so on a real file system no test can
//! tell "fsync, then acknowledge" from "acknowledge without fsync". [`SimDisk`] can: like
//! SQLite's crash-test VFS and FoundationDB's simulated disks, it keeps two layers.
//!
//! - **Durable**: what survives a power cut. A file's contents become durable with
//!   `sync_data`/`sync_all` of that file; a directory entry (a created, renamed or removed
//!   file, a created directory) with [`Storage::sync_dir`] of its directory. A file is
//!   durable with its contents only once *both* happened.
//! - **Volatile**: every change since, which readers see as a real page cache would.
//!
//! [`SimDisk::power_cut`] throws the volatile layer away, keeping for each file at random
//! none of its unsynced changes, a prefix of them, or a prefix followed by a torn (partial)
//! append, and for each directory none or a prefix of its unsynced entry changes. A cut
//! file system is exactly what a new [`EventLog`](crate::EventLog) opened on the same disk
//! sees. [`SimDisk::kill`] models a killed process instead: nothing is lost.
//!
//! Either crash stops the world: from then on every operation fails, and handles opened
//! before it stay dead even after [`SimDisk::restart`]. [`SimDisk::crash_after`] arms a
//! crash at an exact operation, so a test can stop the log anywhere, including in the
//! middle of its own recovery.
//!
//! ```
//! use std::sync::Arc;
//! use flywheel_log::sim::{Crash, SimDisk};
//! use flywheel_log::{EventLog, LogConfig};
//! # fn main() -> flywheel_log::Result<()> {
//! let disk = SimDisk::new();
//! let config = LogConfig::new("/log");
//! let (log, _) = EventLog::open_with_storage(config.clone(), Arc::new(disk.clone()))?;
//! let acked = log.append(b"durable")?;
//! disk.crash_after(0, Crash::PowerCut, 7); // the next disk operation cuts the power
//! assert!(log.append(b"lost").is_err());
//! drop(log);
//! disk.restart();
//! let (log, _) = EventLog::open_with_storage(config, Arc::new(disk.clone()))?;
//! let records: Vec<_> = log.read_from(0)?.collect::<Result<_, _>>()?;
//! assert_eq!(records, vec![(acked, b"durable".to_vec())]);
//! # Ok(())
//! # }
//! ```
//!
//! # A full disk and failing operations
//!
//! [`SimDisk::set_capacity`] limits the bytes all files may hold together: an append that
//! does not fit writes what fits and fails with [`io::ErrorKind::StorageFull`] (`ENOSPC`),
//! as a real `write` on a full file system does, leaving a partial write behind.
//! [`SimDisk::fail_with`] makes every operation of one kind ([`FaultOp`]) fail with a
//! chosen error and without effect, e.g. an `fsync` failing with `ENOSPC` (delayed
//! allocation) or a truncation failing with `EIO`.
//!
//! Paths are absolute; `/` always exists. Renames stay within one directory.

mod state;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::{Rng, SeedableRng};

use crate::storage::{Storage, StorageFile};
use state::{Disk, Scheduled};

/// How a simulated crash treats the volatile layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// Power loss: unsynced changes are lost, kept in part or torn (see the module doc).
    PowerCut,
    /// A killed process: the page cache survives, so nothing is lost.
    ProcessKill,
}

/// A kind of file operation that [`SimDisk::fail_with`] can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// [`Storage::create_new`]: creating a file.
    Create,
    /// [`StorageFile::append`].
    Append,
    /// [`StorageFile::set_len`]: truncating or extending a file.
    SetLen,
    /// [`StorageFile::sync_data`] and [`StorageFile::sync_all`]: a failed sync leaves the
    /// changes volatile.
    Sync,
}

/// What a crash did to the unsynced changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashReport {
    /// The kind of crash.
    pub crash: Crash,
    /// Operations the disk had served when it crashed.
    pub at_op: u64,
    /// Unsynced file changes (appends, truncations) that were lost entirely.
    pub lost_changes: usize,
    /// Unsynced appends of which only a prefix survived.
    pub torn_appends: usize,
    /// Unsynced file changes that survived anyway.
    pub kept_changes: usize,
    /// Unsynced directory-entry changes that were lost.
    pub lost_dir_changes: usize,
    /// Unsynced directory-entry changes that survived anyway.
    pub kept_dir_changes: usize,
}

impl CrashReport {
    fn new(crash: Crash, at_op: u64) -> Self {
        CrashReport {
            crash,
            at_op,
            lost_changes: 0,
            torn_appends: 0,
            kept_changes: 0,
            lost_dir_changes: 0,
            kept_dir_changes: 0,
        }
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at operation {}: file changes {} lost, {} torn, {} kept; directory \
             changes {} lost, {} kept",
            self.crash,
            self.at_op,
            self.lost_changes,
            self.torn_appends,
            self.kept_changes,
            self.lost_dir_changes,
            self.kept_dir_changes
        )
    }
}

/// The crash-test disk (see the module doc). Clones share one disk.
#[derive(Debug, Clone)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
}

impl Default for SimDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl SimDisk {
    /// An empty, running disk holding only the root directory `/`.
    pub fn new() -> Self {
        SimDisk {
            disk: Arc::new(Mutex::new(Disk::new())),
        }
    }

    /// An independent copy of this disk's files (both layers), running, with no crash
    /// armed; handles opened on this disk do not reach the copy.
    pub fn fork(&self) -> SimDisk {
        SimDisk {
            disk: Arc::new(Mutex::new(self.lock().fork())),
        }
    }

    /// Cuts the power now: the volatile layer is discarded at random (see the module
    /// doc), and the disk is off until [`restart`](Self::restart).
    pub fn power_cut(&self, rng: &mut impl Rng) -> CrashReport {
        self.lock().crash(Crash::PowerCut, rng)
    }

    /// Kills the process now: everything written stays, but the disk is off until
    /// [`restart`](Self::restart) and every open handle dies.
    pub fn kill(&self) -> CrashReport {
        let mut unused = rand::rngs::StdRng::seed_from_u64(0);
        self.lock().crash(Crash::ProcessKill, &mut unused)
    }

    /// Arms a crash: after `ops` more operations succeed, the next one crashes the disk
    /// (and fails). A crash on an append lets a random prefix of it land first. `seed`
    /// drives the random choices. Replaces a crash armed before.
    pub fn crash_after(&self, ops: u64, crash: Crash, seed: u64) {
        let mut disk = self.lock();
        disk.scheduled = Some(Scheduled {
            at_op: disk.ops + ops + 1,
            crash,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        });
    }

    /// Disarms a crash armed by [`crash_after`](Self::crash_after) that has not happened.
    pub fn disarm(&self) {
        self.lock().scheduled = None;
    }

    /// Turns the disk back on after a crash, as a reboot would; handles opened before the
    /// crash keep failing.
    pub fn restart(&self) {
        self.lock().running = true;
    }

    /// Whether the disk serves operations (false between a crash and a restart).
    pub fn is_running(&self) -> bool {
        self.lock().running
    }

    /// Operations served so far; every storage and file call counts once.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Limits the bytes all files may hold together (their lengths; directories and
    /// metadata are free) to `bytes`, or lifts the limit (`None`). An append that does not
    /// fit writes what fits and fails with [`io::ErrorKind::StorageFull`]; extending a file
    /// past the limit fails without effect. Truncating frees space. Lowering the limit below
    /// what is used keeps the files. Forks inherit the limit.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Bytes the files hold now (visible lengths, what the capacity limits).
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// Makes every operation of kind `op` fail with an error of kind `error`, without
    /// effect, until called again with `None`. The operation still counts (and an armed
    /// crash still happens first). Forks inherit the faults.
    pub fn fail_with(&self, op: FaultOp, error: Option<io::ErrorKind>) {
        let mut disk = self.lock();
        match error {
            Some(kind) => disk.faults.insert(op, kind),
            None => disk.faults.remove(&op),
        };
    }

    /// What the latest crash did.
    pub fn last_crash(&self) -> Option<CrashReport> {
        self.lock().last_crash.clone()
    }

    /// Changes (file contents and directory entries) that a power cut now could lose.
    pub fn unsynced_changes(&self) -> usize {
        self.lock().unsynced_changes()
    }

    /// The contents of a file as readers see them now. Not counted as an operation and
    /// served even while the disk is off, for test assertions.
    pub fn file_contents(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut disk = self.lock();
        let inode = disk.lookup_file(path)?;
        Ok(disk.inode_mut(inode)?.visible.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        lock(&self.disk)
    }

    fn admit(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let mut disk = self.lock();
        disk.admit(None, None)?;
        Ok(disk)
    }

    fn handle(&self, disk: &Disk, inode: u64, writable: bool) -> Box<dyn StorageFile> {
        Box::new(SimFile {
            disk: Arc::clone(&self.disk),
            inode,
            generation: disk.generation,
            writable,
        })
    }
}

/// A poisoned lock is taken over: every critical section leaves the disk consistent.
fn lock(disk: &Mutex<Disk>) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Storage for SimDisk {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        self.admit()?.create_dir(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        Ok(self.admit()?.dir(dir)?.visible.keys().cloned().collect())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let mut disk = self.admit()?;
        disk.check_fault(FaultOp::Create)?;
        let inode = disk.create_file(path)?;
        Ok(self.handle(&disk, inode, true))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let disk = self.admit()?;
        let inode = disk.lookup_file(path)?;
        Ok(self.handle(&disk, inode, false))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let disk = self.admit()?;
        let inode = disk.lookup_file(path)?;
        Ok(self.handle(&disk, inode, true))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.admit()?.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.admit()?.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.admit()?.dir_mut(dir)?.sync();
        Ok(())
    }
}

/// An open file of a [`SimDisk`]; dies with the disk's next crash.
#[derive(Debug)]
struct SimFile {
    disk: Arc<Mutex<Disk>>,
    inode: u64,
    generation: u64,
    writable: bool,
}

impl SimFile {
    fn admit(&self, in_flight: Option<&[u8]>) -> io::Result<MutexGuard<'_, Disk>> {
        let mut disk = lock(&self.disk);
        let in_flight = in_flight.map(|data| (self.inode, data));
        disk.admit(Some(self.generation), in_flight)?;
        Ok(disk)
    }

    fn check_writable(&self) -> io::Result<()> {
        match self.writable {
            true => Ok(()),
            false => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file was opened for reading only",
            )),
        }
    }
}

impl StorageFile for SimFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut disk = self.admit(None)?;
        let bytes = &disk.inode_mut(self.inode)?.visible;
        let start = usize::try_from(offset).map_or(bytes.len(), |at| at.min(bytes.len()));
        let read = buf.len().min(bytes.len() - start);
        buf[..read].copy_from_slice(&bytes[start..start + read]);
        Ok(read)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.check_writable()?;
        let mut disk = self.admit(Some(bytes))?;
        disk.check_fault(FaultOp::Append)?;
        let room = usize::try_from(disk.room()).unwrap_or(usize::MAX);
        if bytes.len() > room {
            disk.inode_mut(self.inode)?.append(&bytes[..room]);
            return Err(disk.storage_full());
        }
        disk.inode_mut(self.inode)?.append(bytes);
        Ok(())
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.admit(None)?.inode_mut(self.inode)?.visible.len() as u64)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut disk = self.admit(None)?;
        disk.check_fault(FaultOp::SetLen)?;
        let size = disk.inode_mut(self.inode)?.visible.len() as u64;
        if len.saturating_sub(size) > disk.room() {
            return Err(disk.storage_full());
        }
        disk.inode_mut(self.inode)?.set_len(len);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.admit(None)?;
        disk.check_fault(FaultOp::Sync)?;
        disk.inode_mut(self.inode)?.sync();
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

#[cfg(test)]
mod tests;
