//! TPM 2.0 structures (big-endian), as defined in TPM 2.0 Library Part 2 ("Structures").

pub mod attest;
pub mod clock;
pub mod pcr;
pub mod public;
pub mod signature;
