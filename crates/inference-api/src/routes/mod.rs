//! One module per route.

mod health;
mod info;
mod predict;

pub use health::{health, ready};
pub use info::{model_manifest, not_found, service_info};
pub use predict::predict;
