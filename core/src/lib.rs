//! teamform-core: the pure domain of teamform.
//!
//! The catalog of permissions and roles, the model of a team (`TeamState`),
//! the desired state read from `team.yaml` (`TeamSpec`), the changes that move
//! one to the other (`Change`) and the plan engine (`plan`). Nothing here does
//! I/O, spawns, reads a clock or knows about storage: callers pass `now`.

pub mod catalog;
pub mod change;
pub mod model;
mod object;
#[cfg(feature = "openapi")]
mod openapi;
pub mod plan;
pub mod spec;
pub mod yaml;

pub use catalog::{Catalog, Permission, RoleName};
pub use change::{Change, ChangeError, InvariantBroken};
pub use model::{
    Email, Invitation, Member, PendingTransfer, Settings, TeamId, TeamState, Timestamp,
};
pub use plan::{Plan, RemovalLimit, plan};
pub use spec::TeamSpec;
