//! `trustpool-scheduler`: the compute half of a trusted compute pool.

pub mod conf;
pub mod filters;
pub mod host_state;
pub mod request;
pub mod select;
pub mod service;
pub mod store;
pub mod trust;
pub mod weights;
