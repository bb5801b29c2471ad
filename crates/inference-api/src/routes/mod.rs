//! One module per route.

mod feedback;
mod health;
mod info;
mod json;
pub(crate) mod predict;
mod serve;
pub(crate) mod v2;

pub(crate) use feedback::feedback;
pub(crate) use health::{health, ready};
pub(crate) use info::{model_manifest, not_found, service_info};
pub(crate) use predict::predict;
