//! One module per route.

mod feedback;
mod health;
mod info;
mod json;
mod predict;

pub use feedback::feedback;
pub use health::{health, ready};
pub use info::{model_manifest, not_found, service_info};
pub use predict::predict;
