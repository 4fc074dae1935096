//! `ipc://` on Windows: named pipes, named as NNG names them (`ipc://NAME` is the pipe
//! `\\.\pipe\NAME`). The driver's side is only names: an adapter creates the pipe instances
//! with its runtime's named-pipe support (sp-tokio) or answers
//! [`Unsupported::NamedPipes`](crate::Unsupported::NamedPipes).
//!
//! Compiled for Windows by `scripts/cross-check.sh`, never run in this project's CI.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::addr::Address;
use crate::error::Result;
use crate::rt::ConnInfo;

/// What every pipe name starts with: the local machine's pipe namespace.
const PIPE_PREFIX: &str = r"\\.\pipe\";

/// A named pipe's full name, `\\.\pipe\NAME`, that an `ipc://NAME` listener owns: what the
/// driver hands to [`Runtime::ipc_acceptor`](crate::rt::Runtime::ipc_acceptor) on Windows.
/// The adapter creates the pipe's instances; the first one fails if another process owns the
/// name, which it reports as `AddrInUse`.
#[derive(Debug)]
pub struct IpcListener {
    name: OsString,
}

impl IpcListener {
    /// The pipe's full name, `\\.\pipe\NAME`.
    pub fn pipe_name(&self) -> &OsStr {
        &self.name
    }
}

/// The named pipe that `ipc://path` names: `\\.\pipe\` followed by the path as written.
pub(crate) fn ipc_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(PIPE_PREFIX);
    name.push(path.as_os_str());
    PathBuf::from(name)
}

/// "Binds" `ipc://path`: names its pipe. Nothing is created until the adapter makes the first
/// instance, so an owned name is found then.
pub(crate) fn bind_ipc(path: &Path, _addr: &Address) -> Result<IpcListener> {
    Ok(IpcListener {
        name: ipc_path(path).into_os_string(),
    })
}

/// A named pipe leaves no file behind: nothing to remove when its listener closes.
pub(crate) enum SocketFile {}

impl SocketFile {
    pub(crate) fn of(_path: &Path) -> Option<Self> {
        None
    }

    pub(crate) fn remove_if_unchanged(self) {
        match self {}
    }
}

impl ConnInfo {
    /// Describes a named-pipe connection by the pipe's full name (`\\.\pipe\NAME`): the
    /// listener's end has it as its local address, the dialer's as its remote one, both as
    /// `ipc://NAME`. Named pipes carry no peer credentials here.
    pub fn named_pipe(pipe_name: &OsStr, listener_end: bool) -> Self {
        let name = pipe_name.to_string_lossy();
        let path = name.strip_prefix(PIPE_PREFIX).unwrap_or(&name);
        let addr = Some(Address::Ipc {
            path: PathBuf::from(path),
        });
        let (local, remote) = if listener_end {
            (addr, None)
        } else {
            (None, addr)
        };
        Self {
            local,
            remote,
            peer_credentials: None,
            direct: None,
            direct_read: None,
        }
    }
}
