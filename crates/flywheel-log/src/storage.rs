//! The storage seam: every file-system call the log makes goes through [`Storage`].
//!
//! [`FsStorage`] is the real file system and the default. [`SimDisk`](crate::sim::SimDisk)
//! is the crash-test disk, which forgets what was never fsynced when its power is cut.
//!
//! The seam is deliberately small and close to POSIX, so that a simulated disk can model
//! exactly what survives a crash: file contents become durable with `sync_data`/`sync_all`
//! of the file, directory entries (creation, rename, removal) with [`Storage::sync_dir`] of
//! the directory that holds them.

use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// The file-system operations the log uses. Implementations must be shareable between the
/// writer thread and readers.
pub trait Storage: Send + Sync + Debug {
    /// Creates one directory (its parent must exist); fails with
    /// [`io::ErrorKind::AlreadyExists`] if it exists and [`io::ErrorKind::NotFound`] if the
    /// parent is missing. The new entry is durable once the parent is synced.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir` (files and directories), in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// Creates a new, empty file for appending; fails if it exists. The directory entry is
    /// durable once the directory is synced.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for reading only.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for reading, appending and truncation.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Atomically renames a file, replacing `to` if it exists. Durable once the directory
    /// is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable once the directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (files created, renamed or removed in it) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file of a [`Storage`].
pub trait StorageFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at byte `offset`; returns how many were read (0 at
    /// the end of the file).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `bytes` at the end of the file. On failure a prefix of them may have
    /// been written (as with `write_all` on a full disk); the log cuts it off with
    /// [`set_len`](Self::set_len). A full storage should fail with
    /// [`io::ErrorKind::StorageFull`] (or the OS error `ENOSPC`/`EDQUOT`), which the log
    /// reports as [`LogError::StorageFull`](crate::LogError::StorageFull).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The current length of the file in bytes.
    fn size(&mut self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's contents and length durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes the file's contents and all its metadata durable (`fsync`).
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The real file system: the default storage of [`EventLog::open`](crate::EventLog::open).
#[derive(Debug, Clone, Copy, Default)]
pub struct FsStorage;

impl Storage for FsStorage {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect()
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(FsFile(file)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(FsFile(File::open(path)?)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        Ok(Box::new(FsFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// A real file.
#[derive(Debug)]
struct FsFile(File);

impl StorageFile for FsFile {
    /// One positioned read (`pread`): no seek, so a replay costs one call per read.
    #[cfg(unix)]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            match self.0.read_at(buf, offset) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }

    #[cfg(not(unix))]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Seek, SeekFrom};
        self.0.seek(SeekFrom::Start(offset))?;
        loop {
            match self.0.read(buf) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                result => return result,
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

/// Reads until `buf` is full or the file ends at `offset + filled`; returns the bytes read.
pub(crate) fn read_up_to_at(
    file: &mut dyn StorageFile,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(offset + filled as u64, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Fills `buf` from byte `offset`; fails with [`io::ErrorKind::UnexpectedEof`] if the file
/// ends first.
pub(crate) fn read_exact_at(
    file: &mut dyn StorageFile,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    if read_up_to_at(file, offset, buf)? < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ends before the requested bytes",
        ));
    }
    Ok(())
}

/// The whole contents of a file.
pub(crate) fn read_all(file: &mut dyn StorageFile) -> io::Result<Vec<u8>> {
    let size = usize::try_from(file.size()?).map_err(io::Error::other)?;
    let mut bytes = vec![0u8; size];
    let filled = read_up_to_at(file, 0, &mut bytes)?;
    bytes.truncate(filled);
    Ok(bytes)
}

/// A sequential [`Read`] over a [`StorageFile`], for `BufReader`.
pub(crate) struct SequentialReader<'a> {
    file: &'a mut dyn StorageFile,
    position: u64,
}

impl<'a> SequentialReader<'a> {
    /// Reads from the start of `file`.
    pub fn new(file: &'a mut dyn StorageFile) -> Self {
        SequentialReader { file, position: 0 }
    }
}

impl Read for SequentialReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(self.position, buf)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_files_append_read_truncate_and_rename() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = FsStorage;
        let path = dir.path().join("a.log");
        let mut file = storage.create_new(&path).expect("create");
        assert!(
            storage.create_new(&path).is_err(),
            "create_new refuses to overwrite"
        );
        file.append(b"hello ").expect("append");
        file.append(b"world").expect("append");
        file.sync_data().expect("sync");
        assert_eq!(file.size().expect("size"), 11);
        let mut reader = storage.open_read(&path).expect("open");
        let mut word = [0u8; 5];
        read_exact_at(reader.as_mut(), 6, &mut word).expect("read");
        assert_eq!(&word, b"world");
        assert!(
            read_exact_at(reader.as_mut(), 8, &mut word).is_err(),
            "past the end"
        );
        let mut writer = storage.open_append(&path).expect("open for append");
        writer.set_len(5).expect("truncate");
        writer.append(b"!").expect("append after truncation");
        assert_eq!(read_all(reader.as_mut()).expect("read all"), b"hello!");
        let renamed = dir.path().join("b.log");
        storage.rename(&path, &renamed).expect("rename");
        storage.sync_dir(dir.path()).expect("sync dir");
        assert_eq!(
            storage.list_dir(dir.path()).expect("list"),
            vec![OsString::from("b.log")]
        );
        storage.remove_file(&renamed).expect("remove");
        assert!(storage.list_dir(dir.path()).expect("list").is_empty());
    }

    #[test]
    fn create_dir_reports_existing_and_missing_parents() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = FsStorage;
        let nested = dir.path().join("a").join("b");
        let missing = storage.create_dir(&nested).expect_err("parent missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        storage.create_dir(&dir.path().join("a")).expect("create");
        storage.create_dir(&nested).expect("create nested");
        let again = storage.create_dir(&nested).expect_err("exists");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn the_parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_dir(Path::new("log")), Path::new("."));
        assert_eq!(parent_dir(Path::new("data/log")), Path::new("data"));
        assert_eq!(parent_dir(Path::new("/")), Path::new("."));
    }
}
