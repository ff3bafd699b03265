//! teamform, the reconciler: reads team.yaml, plans against the live team
//! through the service API (remote, or the same router in-process over the
//! embedded store), renders the plan, and applies it.

pub mod cli;
pub mod client;
pub mod export;
pub mod files;
pub mod markdown;
pub mod progress;
pub mod render;
pub mod run;
pub mod schema;
pub mod serve;
