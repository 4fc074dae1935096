//! Linux abstract-namespace Unix sockets (`abstract://name`), which std reaches only through
//! `SocketAddr::from_abstract_name`. On other Unix systems they fail with
//! [`Unsupported::AbstractSockets`](crate::Unsupported::AbstractSockets); Windows has no
//! Unix sockets, and the driver refuses `abstract://` there before it gets here.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};

/// Connects to the abstract socket `name` (blocking for at most the kernel's local connect,
/// which never waits on the network).
pub(crate) fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    let stream = UnixStream::connect_addr(&abstract_addr(name)?)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Binds a non-blocking listener to the abstract socket `name`; an empty name asks the
/// kernel to choose a unique one (autobind), as NNG does for `abstract://`.
pub(crate) fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    let listener = if name.is_empty() {
        autobind()?
    } else {
        UnixListener::bind_addr(&abstract_addr(name)?)?
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A listener on a kernel-chosen abstract name. std cannot express it: its empty abstract
/// name binds the name "" instead, so the unnamed address comes from rustix.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn autobind() -> io::Result<UnixListener> {
    use rustix::net::{bind, listen, socket, AddressFamily, SocketAddrUnix, SocketType};
    let fd = socket(AddressFamily::UNIX, SocketType::STREAM, None)?;
    bind(&fd, &SocketAddrUnix::new_unnamed())?;
    listen(&fd, 128)?;
    Ok(UnixListener::from(fd))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn autobind() -> io::Result<UnixListener> {
    abstract_addr("").map(|_| unreachable!("abstract sockets are Linux-only"))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &str) -> io::Result<std::os::unix::net::SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &str) -> io::Result<std::os::unix::net::SocketAddr> {
    Err(crate::Unsupported::AbstractSockets.into())
}
