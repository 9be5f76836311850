//! Network pieces shared by the crates that talk to the outside (probes, channels): rustls
//! client configurations built one way everywhere (ring provider, webpki roots plus the CA
//! certificates a user trusts), loading those certificates from a PEM file, and a task handle
//! that aborts its task when dropped, and the Tencent Cloud API 3.0 request signature
//! ([`tc3`]). A leaf crate: it depends on no other watchpost crate.

mod task;
pub mod tc3;
mod tls;

pub use task::AbortOnDrop;
pub use tls::{
    AcceptAnyCertificate, CaError, InspectCertificate, insecure_config, load_ca_file, provider,
    root_store, verified_config,
};
