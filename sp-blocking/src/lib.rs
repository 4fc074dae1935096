//! Scalability Protocols sockets with plain blocking calls.
//!
//! Not implemented yet: the adapter will drive the same sp-core state machines from threads
//! with blocking std sockets. Until then, use `sp-tokio`.

#![forbid(unsafe_code)]

pub use sp_transport::{Address, Error, Message, Result};
