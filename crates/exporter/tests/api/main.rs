mod cpu;
mod exposition;
mod filesystem;
mod health;
mod helpers;
mod memory;
mod model_artifacts;
