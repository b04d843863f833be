//! Trust: the bundle container, its signed manifest, keys and signatures,
//! and the keyring. Everything here is a pure check of bytes against keys
//! (plus reading the keyring directory); nothing touches the kernel.

pub mod bundle;
pub mod keyring;
pub mod keys;
pub mod manifest;
