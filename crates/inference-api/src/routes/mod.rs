//! One module per route.

mod fast_json;
pub(crate) mod feedback;
pub(crate) mod health;
pub(crate) mod info;
mod json;
pub(crate) mod models;
pub(crate) mod predict;
mod serve;
pub(crate) mod v2;

pub(crate) use feedback::feedback;
pub(crate) use health::{health, ready};
pub(crate) use info::{model_manifest, not_found, service_info};
pub(crate) use models::models;
pub(crate) use predict::{model_predict, predict, version_predict};
