//! Helpers for unit tests: a storage whose writes panic, to stop the writer thread.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sim::SimDisk;
use crate::storage::{Storage, StorageFile};

/// A [`SimDisk`] whose file appends panic once [`arm`](Self::arm)ed.
#[derive(Debug, Clone, Default)]
pub(crate) struct PanickyDisk {
    disk: SimDisk,
    armed: Arc<AtomicBool>,
}

impl PanickyDisk {
    /// From now on every append panics.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn wrap(&self, file: Box<dyn StorageFile>) -> Box<dyn StorageFile> {
        Box::new(PanickyFile {
            file,
            armed: Arc::clone(&self.armed),
        })
    }
}

impl Storage for PanickyDisk {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        self.disk.create_dir(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        self.disk.list_dir(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.disk.create_new(path).map(|file| self.wrap(file))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.disk.open_read(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.disk.open_append(path).map(|file| self.wrap(file))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.disk.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.disk.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.disk.sync_dir(dir)
    }
}

#[derive(Debug)]
struct PanickyFile {
    file: Box<dyn StorageFile>,
    armed: Arc<AtomicBool>,
}

impl StorageFile for PanickyFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(offset, buf)
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        assert!(!self.armed.load(Ordering::SeqCst), "armed: appends panic");
        self.file.append(bytes)
    }
    fn size(&mut self) -> io::Result<u64> {
        self.file.size()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
}
