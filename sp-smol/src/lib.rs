//! Scalability Protocols sockets on smol / async-io.
//!
//! Not implemented yet: the adapter will implement [`sp_transport::rt::Runtime`] for smol, as
//! `sp-tokio` does for tokio, and re-export the same typed sockets. Until then, use `sp-tokio`.

#![forbid(unsafe_code)]

pub use sp_transport::{Address, Error, Message, Result};
