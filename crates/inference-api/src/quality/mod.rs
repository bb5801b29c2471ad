//! Model quality from the serving path: data drift (PSI per feature over a sliding window),
//! data quality (out-of-range and missing values) and live accuracy from feedback labels.

pub(crate) mod drift;
pub(crate) mod feedback;
pub(crate) mod psi;
