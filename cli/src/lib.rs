//! The two binaries' code: [`deis`] (the user's client) and [`workflow`] (the server binary,
//! which runs the daemons). The `src/bin` files only call into here.

pub mod deis;
pub mod workflow;
